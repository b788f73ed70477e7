//! The four daemons behind the front door.

use std::time::Duration;

use crate::cached_peer::CachedPeer;
use crimson_api::{
    image::v1::images_client::ImagesClient, sandbox::v1::sandbox_client::SandboxClient,
};
use crimson_config::{Config, Daemon};
use crimson_rpc::{Peer, PeerChannel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long a status probe of one daemon may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Clients of the backend daemons, with the answers of crimson-image and crimson-sandbox to
/// the reads kubelet polls kept ([`CachedPeer`]).
pub struct Backends {
    /// crimson-image.
    pub image: Peer,
    /// crimson-storage.
    pub storage: Peer,
    /// crimson-sandbox.
    pub sandbox: Peer,
    /// crimson-network.
    pub network: Peer,
    /// crimson-image, its writes and the reads whose answers are kept.
    pub image_cache: CachedPeer<ImagesClient<PeerChannel>>,
    /// crimson-sandbox, its writes and the reads whose answers are kept.
    pub sandbox_cache: CachedPeer<SandboxClient<PeerChannel>>,
}

impl Backends {
    /// Peers at the sockets `config` names. Their caches stay empty until
    /// [`Backends::follow_changes`].
    pub fn new(config: &Config) -> Self {
        let wait = Duration::from_millis(config.cri.backend_wait_ms);
        let peer = |daemon| Peer::new(daemon, config.socket(daemon), wait);
        let (image, sandbox) = (peer(Daemon::Image), peer(Daemon::Sandbox));
        Self {
            image_cache: CachedPeer::new(image.clone(), ImagesClient::new),
            sandbox_cache: CachedPeer::new(sandbox.clone(), sandbox_client),
            image,
            storage: peer(Daemon::Storage),
            sandbox,
            network: peer(Daemon::Network),
        }
    }

    /// Starts following crimson-image's and crimson-sandbox's changes, which lets their
    /// cached answers be used (needs a tokio runtime).
    pub fn follow_changes(&self) {
        self.image_cache.follow_changes();
        self.sandbox_cache.follow_changes();
    }

    /// A call to crimson-sandbox that may change it, retried while it cannot be reached
    /// (bounded); the cached answers read before it go when it returns.
    pub async fn sandbox<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(SandboxClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.sandbox_cache.write(call).await
    }

    /// A call to crimson-sandbox that changes nothing there (stats, exec, streams), retried
    /// like [`Backends::sandbox`] and never cached.
    pub async fn sandbox_read<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(SandboxClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.sandbox
            .call(|channel| call(sandbox_client(channel)))
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

/// A crimson-sandbox client that takes answers as large as a node's lists get.
fn sandbox_client(channel: PeerChannel) -> SandboxClient<PeerChannel> {
    SandboxClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
}
