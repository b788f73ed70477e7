use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use crimson_api::daemon::v1::{
    Changes, DaemonInfo, GetInfoRequest, GetMetricsRequest, Metrics,
    ObjectCount as ObjectCountInfo, WatchChangesRequest, daemon_server::Daemon as DaemonApi,
};
use crimson_config::Daemon;

use crate::change_stamp::DaemonChanges;
use crimson_metrics::ObjectCount;
use tokio_stream::{StreamExt, wrappers::WatchStream};

/// Counts of what a daemon's database holds, by kind ("pods", "layers") and state, read on
/// each ask.
pub type StateCounts = std::sync::Arc<dyn Fn() -> Vec<ObjectCount> + Send + Sync>;

/// Adds this start to the count kept in `state_dir/starts` and returns it (1 on a fresh
/// state directory); a count that cannot be kept is logged and taken as 1.
pub(crate) fn count_start(state_dir: &Path) -> u64 {
    let path = state_dir.join("starts");
    let before: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    let starts = before + 1;
    let temporary = state_dir.join("starts.tmp");
    let written = std::fs::create_dir_all(state_dir)
        .and_then(|()| std::fs::write(&temporary, format!("{starts}\n")))
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "could not keep the start count");
    }
    starts
}

/// `crimson.daemon.v1.Daemon` for the process it runs in: its identity, what it holds, its
/// metrics, the count of its writes.
pub(crate) struct InfoService {
    info: DaemonInfo,
    counts: StateCounts,
    changes: Option<DaemonChanges>,
}

impl InfoService {
    pub(crate) fn new(
        daemon: Daemon,
        starts: u64,
        counts: StateCounts,
        changes: Option<DaemonChanges>,
    ) -> Self {
        Self {
            counts,
            changes,
            info: DaemonInfo {
                name: daemon.binary_name().to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                started_at_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
                state_counts: Default::default(),
                starts,
                objects: Vec::new(),
            },
        }
    }
}

/// The stream of [`DaemonApi::watch_changes`].
type ChangeStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<Changes, tonic::Status>> + Send + 'static>,
>;

#[tonic::async_trait]
impl DaemonApi for InfoService {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        _: tonic::Request<WatchChangesRequest>,
    ) -> Result<tonic::Response<ChangeStream>, tonic::Status> {
        let changes = self.changes.clone().ok_or_else(|| {
            tonic::Status::unimplemented(format!("{} keeps no database", self.info.name))
        })?;
        let run = changes.run;
        let log = changes.changes.clone();
        let mut from = None;
        let stream = WatchStream::new(log.subscribe()).map(move |count| {
            let previous = from.replace(count);
            let writes = match previous {
                None => String::new(),
                Some(from) => {
                    serde_json::to_string(&log.written_between(from, count)).unwrap_or_default()
                }
            };
            Ok(Changes {
                count,
                run,
                from: previous.unwrap_or(count),
                writes,
            })
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn get_info(
        &self,
        _: tonic::Request<GetInfoRequest>,
    ) -> Result<tonic::Response<DaemonInfo>, tonic::Status> {
        let mut info = self.info.clone();
        for count in (self.counts)() {
            *info.state_counts.entry(count.kind.to_string()).or_default() += count.count;
            info.objects.push(ObjectCountInfo {
                kind: count.kind.to_string(),
                state: count.state.unwrap_or_default().to_string(),
                count: count.count,
                bytes: count.bytes,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_counted_across_processes_in_the_state_directory() {
        let dir = std::env::temp_dir().join(format!("crimson-starts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(count_start(&dir), 1);
        assert_eq!(count_start(&dir), 2);
        assert_eq!(std::fs::read_to_string(dir.join("starts")).unwrap(), "2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
