//! The four daemons behind the front door.

use std::time::Duration;

use crimson_api::sandbox::v1::sandbox_client::SandboxClient;
use crimson_config::{Config, Daemon};
use crimson_rpc::{Peer, PeerChannel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long a status probe of one daemon may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Clients of the backend daemons.
pub struct Backends {
    /// crimson-image.
    pub image: Peer,
    /// crimson-storage.
    pub storage: Peer,
    /// crimson-sandbox.
    pub sandbox: Peer,
    /// crimson-network.
    pub network: Peer,
}

impl Backends {
    /// Peers at the sockets `config` names.
    pub fn new(config: &Config) -> Self {
        let wait = Duration::from_millis(config.cri.backend_wait_ms);
        let peer = |daemon| Peer::new(daemon, config.socket(daemon), wait);
        Self {
            image: peer(Daemon::Image),
            storage: peer(Daemon::Storage),
            sandbox: peer(Daemon::Sandbox),
            network: peer(Daemon::Network),
        }
    }

    /// A call to crimson-sandbox, retried while it cannot be reached (bounded).
    pub async fn sandbox<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(SandboxClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.sandbox
            .call(|channel| {
                call(SandboxClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
            })
            .await
    }

    /// One quick call to `peer` (no retries), bounded by [`PROBE_TIMEOUT`]; a daemon that is
    /// down or hangs gives UNAVAILABLE naming it.
    pub async fn probe<T, F, Fut>(peer: &Peer, call: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(crimson_rpc::PeerChannel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(PROBE_TIMEOUT, call(peer.channel())).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) if crimson_rpc::is_unreachable(&status) => {
                Err(peer.unavailable(&status))
            }
            Ok(Err(status)) => Err(status),
            Err(_) => Err(peer.unavailable(&tonic::Status::deadline_exceeded(format!(
                "no answer within {PROBE_TIMEOUT:?}"
            )))),
        }
    }

    /// Whether `peer` answers the gRPC health check with SERVING.
    pub async fn healthy(peer: &Peer) -> Result<(), tonic::Status> {
        let response = Self::probe(peer, |channel| async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        })
        .await?;
        if response.status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(tonic::Status::unavailable(format!(
                "{} reports it is not serving",
                peer.daemon()
            )))
        }
    }
}
