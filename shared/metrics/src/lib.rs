//! Prometheus metrics of a Crimson daemon.
//!
//! Each process calls [`init`] once with the daemon it is; instrumented code reaches the
//! families through [`get`] (nothing is recorded before `init`, as in unit tests). Every
//! sample carries `daemon="<short name>"`, so the front door can serve one scrape for the node
//! by [`merge`]-ing its own [`Metrics::render`] with each backend's.

#![warn(missing_docs)]

mod families;
mod merge;

use std::sync::OnceLock;

use crimson_config::Daemon;

pub use families::{Metrics, ObjectCount, RpcOutcome};
pub use merge::merge;
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics of this process, made on the first call (later calls get the same ones).
pub fn init(daemon: Daemon) -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(daemon))
}

/// The metrics of this process, once [`init`] ran.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Records that start-up reconciliation applied `action` to `count` objects of `kind`
/// (see [`Metrics::record_reconciled`]), when metrics are on.
pub fn reconciled(kind: &'static str, action: &'static str, count: u64) {
    if let Some(metrics) = get() {
        metrics.record_reconciled(kind, action, count);
    }
}

/// Runs `work`, recording it as one host `operation` (its latency, and whether it succeeded)
/// when metrics are on.
pub async fn timed<T, E>(
    operation: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = work.await;
    if let Some(metrics) = get() {
        metrics.record_operation(operation, result.is_ok(), started.elapsed());
    }
    result
}
