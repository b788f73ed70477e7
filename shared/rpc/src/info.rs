use std::time::{SystemTime, UNIX_EPOCH};

use crimson_api::daemon::v1::{DaemonInfo, GetInfoRequest, daemon_server::Daemon as DaemonApi};
use crimson_config::Daemon;

/// `crimson.daemon.v1.Daemon` for the process it runs in.
pub(crate) struct InfoService {
    info: DaemonInfo,
}

impl InfoService {
    pub(crate) fn new(daemon: Daemon) -> Self {
        Self {
            info: DaemonInfo {
                name: daemon.binary_name().to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                started_at_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
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
        Ok(tonic::Response::new(self.info.clone()))
    }
}
