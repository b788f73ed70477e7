//! The four daemons behind the front door.

use std::{sync::Arc, time::Duration};

use crate::{change_feed, read_cache::ReadCache};
use crimson_api::{
    image::v1::images_client::ImagesClient, sandbox::v1::sandbox_client::SandboxClient,
};
use crimson_config::{Config, Daemon};
use crimson_rpc::{ChangeStamp, Peer, PeerChannel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long a status probe of one daemon may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Clients of the backend daemons, with the answers of crimson-image and crimson-sandbox to
/// the reads kubelet polls cached (see [`ReadCache`]).
pub struct Backends {
    /// crimson-image.
    pub image: Peer,
    /// crimson-storage.
    pub storage: Peer,
    /// crimson-sandbox.
    pub sandbox: Peer,
    /// crimson-network.
    pub network: Peer,
    image_answers: Arc<ReadCache>,
    sandbox_answers: Arc<ReadCache>,
}

impl Backends {
    /// Peers at the sockets `config` names. Their caches stay empty until
    /// [`Backends::follow_changes`].
    pub fn new(config: &Config) -> Self {
        let wait = Duration::from_millis(config.cri.backend_wait_ms);
        let peer = |daemon| Peer::new(daemon, config.socket(daemon), wait);
        Self {
            image: peer(Daemon::Image),
            storage: peer(Daemon::Storage),
            sandbox: peer(Daemon::Sandbox),
            network: peer(Daemon::Network),
            image_answers: Arc::default(),
            sandbox_answers: Arc::default(),
        }
    }

    /// Starts following crimson-image's and crimson-sandbox's changes, which lets their
    /// cached answers be used (needs a tokio runtime).
    pub fn follow_changes(&self) {
        change_feed::follow(self.image.clone(), self.image_answers.clone());
        change_feed::follow(self.sandbox.clone(), self.sandbox_answers.clone());
    }

    /// A call to crimson-sandbox that may change it, retried while it cannot be reached
    /// (bounded); the cached answers read before it go when it returns.
    pub async fn sandbox<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(SandboxClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        Ok(self.sandbox_stamped(call).await?.0)
    }

    /// [`Backends::sandbox`], with the daemon's stamp on its answer.
    pub async fn sandbox_stamped<T, F, Fut>(
        &self,
        mut call: F,
    ) -> Result<(T, Option<ChangeStamp>), tonic::Status>
    where
        F: FnMut(SandboxClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let answer = self
            .sandbox
            .call_response(|channel| call(sandbox_client(channel)));
        wrote(&self.sandbox_answers, answer.await)
    }

    /// Keeps `answer` as crimson-sandbox's answer to the read `method` with `request`, which
    /// a write (answered with `stamp`) gave as read at the daemon's write count `read_at`.
    pub fn sandbox_keep<Req, T>(
        &self,
        method: &'static str,
        request: &Req,
        answer: T,
        stamp: ChangeStamp,
        read_at: u64,
    ) where
        Req: prost::Message,
        T: Send + Sync + 'static,
    {
        self.sandbox_answers
            .keep(method, request, answer, stamp.run, read_at);
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

    /// crimson-sandbox's answer to the read `method` with `request`, cached until it changes.
    pub async fn sandbox_cached<Req, T, F, Fut>(
        &self,
        method: &'static str,
        request: Req,
        call: F,
    ) -> Result<Arc<T>, tonic::Status>
    where
        Req: prost::Message + Clone,
        T: Send + Sync + 'static,
        F: Fn(SandboxClient<PeerChannel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let (peer, answers) = (&self.sandbox, &*self.sandbox_answers);
        cached_read(peer, answers, sandbox_client, method, request, call).await
    }

    /// A call to crimson-image that may change it (pull, removal), retried while it cannot be
    /// reached (bounded); the cached answers read before it go when it returns.
    pub async fn image_write<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(ImagesClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let answer = self
            .image
            .call_response(|channel| call(ImagesClient::new(channel)));
        Ok(wrote(&self.image_answers, answer.await)?.0)
    }

    /// crimson-image's answer to the read `method` with `request`, cached until it changes.
    pub async fn image_cached<Req, T, F, Fut>(
        &self,
        method: &'static str,
        request: Req,
        call: F,
    ) -> Result<Arc<T>, tonic::Status>
    where
        Req: prost::Message + Clone,
        T: Send + Sync + 'static,
        F: Fn(ImagesClient<PeerChannel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let (peer, answers) = (&self.image, &*self.image_answers);
        cached_read(peer, answers, ImagesClient::new, method, request, call).await
    }

    /// Starts [`Backends::image_cached`] in the background, after a write, for the read
    /// kubelet sends next.
    pub fn image_prefetch<Req, T, F, Fut>(&self, method: &'static str, request: Req, call: F)
    where
        Req: prost::Message + Clone + 'static,
        T: Send + Sync + 'static,
        F: Fn(ImagesClient<PeerChannel>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send,
    {
        let (peer, answers) = (self.image.clone(), self.image_answers.clone());
        tokio::spawn(async move {
            let client = ImagesClient::new;
            let _ = cached_read(&peer, &answers, client, method, request, call).await;
        });
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

/// `peer`'s answer to the read `method` with `request`, from `answers` when they have it;
/// `client` makes the client `call` is made with.
async fn cached_read<C, Req, T, F, Fut>(
    peer: &Peer,
    answers: &ReadCache,
    client: fn(PeerChannel) -> C,
    method: &'static str,
    request: Req,
    call: F,
) -> Result<Arc<T>, tonic::Status>
where
    Req: prost::Message + Clone,
    T: Send + Sync + 'static,
    F: Fn(C, Req) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    answers
        .read(method, &request, || {
            peer.call_response(|channel| call(client(channel), request.clone()))
        })
        .await
}

/// Tells `answers` that a write answered (with the daemon's write count, when it gave one,
/// failures included), and passes its answer on with that stamp.
fn wrote<T>(
    answers: &ReadCache,
    answer: Result<tonic::Response<T>, tonic::Status>,
) -> Result<(T, Option<ChangeStamp>), tonic::Status> {
    let metadata = match &answer {
        Ok(response) => response.metadata(),
        Err(status) => status.metadata(),
    };
    let stamp = ChangeStamp::from_metadata(metadata);
    answers.wrote(stamp);
    answer.map(|response| (response.into_inner(), stamp))
}

/// A crimson-sandbox client that takes answers as large as a node's lists get.
fn sandbox_client(channel: PeerChannel) -> SandboxClient<PeerChannel> {
    SandboxClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
}
