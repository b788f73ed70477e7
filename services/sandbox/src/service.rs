//! The gRPC face of crimson-sandbox.

use std::{path::PathBuf, sync::Arc};

use crimson_api::sandbox::v1::{
    GetStatusRequest, RuntimeStatus,
    sandbox_server::{Sandbox, SandboxServer},
};
use crimson_config::{Config, Daemon};
use crimson_store::Store;
use tonic::{Request, Response, Status, service::Routes};

use crate::{Result, binaries::find_executable};

/// Database schema version this build writes.
const SCHEMA_VERSION: u32 = 1;

/// crimson-sandbox's service.
#[derive(Clone)]
pub struct SandboxService {
    inner: Arc<Inner>,
}

struct Inner {
    runtime_path: PathBuf,
    conmon_path: PathBuf,
    /// The daemon's database (pod and container records live here once pods exist).
    _store: Store,
}

impl SandboxService {
    /// Opens the database under the configured state dir.
    pub fn open(config: &Config) -> Result<Self> {
        let store = Store::open(
            &config.state_dir(Daemon::Sandbox).join("db"),
            SCHEMA_VERSION,
            &[],
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                runtime_path: config.sandbox.runtime_path.clone(),
                conmon_path: config.sandbox.conmon_path.clone(),
                _store: store,
            }),
        })
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(SandboxServer::new(self))
    }
}

#[tonic::async_trait]
impl Sandbox for SandboxService {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> std::result::Result<Response<RuntimeStatus>, Status> {
        let missing: Vec<String> = [&self.inner.runtime_path, &self.inner.conmon_path]
            .into_iter()
            .filter(|binary| find_executable(binary).is_none())
            .map(|binary| binary.display().to_string())
            .collect();
        let status = if missing.is_empty() {
            RuntimeStatus {
                ready: true,
                ..Default::default()
            }
        } else {
            RuntimeStatus {
                ready: false,
                reason: "RuntimeBinaryMissing".into(),
                message: format!("not found or not executable: {}", missing.join(", ")),
            }
        };
        Ok(Response::new(status))
    }
}
