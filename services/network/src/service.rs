//! The gRPC face of crimson-network.

use std::{path::PathBuf, sync::Arc};

use crimson_api::network::v1::{
    GetStatusRequest, NetworkStatus,
    network_server::{Network, NetworkServer},
};
use crimson_config::{Config, Daemon};
use crimson_store::Store;
use tonic::{Request, Response, Status, service::Routes};

use crate::{Result, cni_config::find_network};

/// Database schema version this build writes.
const SCHEMA_VERSION: u32 = 1;

/// crimson-network's service.
#[derive(Clone)]
pub struct NetworkService {
    inner: Arc<Inner>,
}

struct Inner {
    cni_conf_dir: PathBuf,
    cni_bin_dirs: Vec<PathBuf>,
    /// The daemon's database (pod attachments are recorded here once pods exist).
    _store: Store,
}

impl NetworkService {
    /// Opens the database under the configured state dir.
    pub fn open(config: &Config) -> Result<Self> {
        let store = Store::open(
            &config.state_dir(Daemon::Network).join("db"),
            SCHEMA_VERSION,
            &[],
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                cni_conf_dir: config.network.cni_conf_dir.clone(),
                cni_bin_dirs: config.network.cni_bin_dirs.clone(),
                _store: store,
            }),
        })
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(NetworkServer::new(self))
    }
}

#[tonic::async_trait]
impl Network for NetworkService {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> std::result::Result<Response<NetworkStatus>, Status> {
        let status = match find_network(&self.inner.cni_conf_dir, &self.inner.cni_bin_dirs) {
            Ok(network) => NetworkStatus {
                ready: true,
                network_name: network.name,
                ..Default::default()
            },
            Err(message) => NetworkStatus {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: {message}"),
                ..Default::default()
            },
        };
        Ok(Response::new(status))
    }
}
