//! Host work of this daemon (mounts, namespace pinning, cgroups, pod and bundle files) runs on
//! tokio's blocking pool, so no async worker waits on a syscall, and each step gets
//! [`HOST_TIMEOUT`].

use std::time::Duration;

use crate::Result;

/// How long one host step may take before its RPC fails (and undoes what it made).
pub const HOST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `work` off the async workers; a time-out answers DEADLINE_EXCEEDED. What it reads of
/// the database counts as read by the call that asked for it.
pub async fn host<T, F>(what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let reads = crimson_store::ReadRecorder::current();
    crimson_sys::blocking(what, HOST_TIMEOUT, move || match reads {
        Some(reads) => reads.enter(work),
        None => work(),
    })
    .await
}
