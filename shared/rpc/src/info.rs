use std::time::{SystemTime, UNIX_EPOCH};

use crimson_api::daemon::v1::{
    DaemonInfo, GetInfoRequest, GetMetricsRequest, Metrics, daemon_server::Daemon as DaemonApi,
};
use crimson_config::Daemon;

/// Counts of what a daemon's database holds, by kind ("pods", "layers"), read on each ask.
pub type StateCounts = std::sync::Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// `crimson.daemon.v1.Daemon` for the process it runs in: its identity, what it holds, its
/// metrics.
pub(crate) struct InfoService {
    info: DaemonInfo,
    counts: StateCounts,
}

impl InfoService {
    pub(crate) fn new(daemon: Daemon, counts: StateCounts) -> Self {
        Self {
            counts,
            info: DaemonInfo {
                name: daemon.binary_name().to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                started_at_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
                state_counts: Default::default(),
            },
        }
    }
}

#[tonic::async_trait]
impl DaemonApi for InfoService {
    async fn get_info(
        &self,
        _: tonic::Request<GetInfoRequest>,
    ) -> Result<tonic::Response<DaemonInfo>, tonic::Status> {
        let mut info = self.info.clone();
        info.state_counts = (self.counts)()
            .into_iter()
            .map(|(kind, count)| (kind.to_string(), count))
            .collect();
        Ok(tonic::Response::new(info))
    }

    async fn get_metrics(
        &self,
        _: tonic::Request<GetMetricsRequest>,
    ) -> Result<tonic::Response<Metrics>, tonic::Status> {
        let text = crimson_metrics::get()
            .map(|metrics| {
                metrics.set_objects(&(self.counts)());
                metrics.render()
            })
            .unwrap_or_default();
        Ok(tonic::Response::new(Metrics { text }))
    }
}
