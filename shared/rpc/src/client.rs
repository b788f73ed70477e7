use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use crimson_config::Daemon;
use crimson_telemetry::TracePropagation;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::connect_unix;

/// A channel to a peer daemon that sends the caller's `traceparent` with every request.
pub type PeerChannel = InterceptedService<Channel, TracePropagation>;

/// Client side of one peer daemon: a lazily (re)connecting channel plus the policy for a peer
/// that is down: retry with backoff until shortly before the deadline of the call being served
/// (or for `wait` without one), then UNAVAILABLE naming the daemon.
#[derive(Debug, Clone)]
pub struct Peer {
    daemon: Daemon,
    socket: PathBuf,
    channel: Channel,
    wait: Duration,
}

impl Peer {
    /// A peer for `daemon` listening on `socket`. Nothing connects until the first call.
    pub fn new(daemon: Daemon, socket: impl Into<PathBuf>, wait: Duration) -> Self {
        let socket = socket.into();
        Self {
            daemon,
            channel: connect_unix(&socket),
            socket,
            wait,
        }
    }

    /// Which daemon this is.
    pub fn daemon(&self) -> Daemon {
        self.daemon
    }

    /// A channel for one-off use (streams, calls that must not be repeated).
    pub fn channel(&self) -> PeerChannel {
        InterceptedService::new(self.channel.clone(), TracePropagation)
    }

    /// Runs `call` with a fresh channel, repeating it while the peer cannot be reached or the
    /// connection breaks mid-call (every internal operation is idempotent by id or kubelet
    /// name), until [`ANSWER_MARGIN`] before the caller's deadline ([`crate::caller_deadline`]),
    /// or for `wait` when the caller set none. Statuses the peer itself answered are returned
    /// unchanged.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut(PeerChannel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_response(call)
            .await
            .map(tonic::Response::into_inner)
    }

    /// [`Peer::call`], answering the whole response (its metadata too).
    pub async fn call_response<T, F, Fut>(&self, mut call: F) -> Result<tonic::Response<T>, Status>
    where
        F: FnMut(PeerChannel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = match crate::caller_deadline() {
            Some(caller) => caller.checked_sub(ANSWER_MARGIN).unwrap_or(caller),
            None => Instant::now() + self.wait,
        };
        let mut delay = Duration::from_millis(20);
        loop {
            match call(self.channel()).await {
                Ok(response) => return Ok(response),
                Err(status) if is_unreachable(&status) => {
                    let metrics = crimson_metrics::get();
                    if Instant::now() + delay > deadline {
                        metrics.inspect(|m| m.record_peer_unavailable(self.daemon));
                        return Err(self.unavailable(&status));
                    }
                    metrics.inspect(|m| m.record_peer_retry(self.daemon));
                    tracing::debug!(peer = %self.daemon, %status, "peer unreachable, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(400));
                }
                Err(status) => return Err(status),
            }
        }
    }

    /// The UNAVAILABLE status that names this peer, for a failure `status` of reaching it.
    pub fn unavailable(&self, status: &Status) -> Status {
        Status::unavailable(format!(
            "{} is unavailable (socket {}): {}",
            self.daemon,
            self.socket.display(),
            status.message()
        ))
    }
}

/// How long before the caller's deadline retries stop, so that UNAVAILABLE naming the daemon
/// reaches the caller instead of its own DEADLINE_EXCEEDED.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// True for failures made locally by the transport: the peer could not be reached, or the
/// connection broke while the call was in flight (the peer died). A status the peer answered
/// itself carries no source error and is never taken for one.
pub fn is_unreachable(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
        && matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_peer_turns_into_unavailable_naming_it_after_the_wait() {
        let dir = std::env::temp_dir().join(format!("crimson-rpc-test-{}", std::process::id()));
        let peer = Peer::new(
            Daemon::Image,
            dir.join("absent.sock"),
            Duration::from_millis(200),
        );
        let err = peer
            .call(|channel| async move {
                crimson_api::daemon::v1::daemon_client::DaemonClient::new(channel)
                    .get_info(crimson_api::daemon::v1::GetInfoRequest {})
                    .await
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(err.message().contains("crimson-image"), "{err}");
    }
}
