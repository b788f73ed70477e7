//! Single-use, short-lived tokens for streaming URLs: the CRI call that asks for a stream
//! stores its request under a fresh random token; the HTTP request that presents the token
//! takes the request out (a second use, or a use after the TTL, finds nothing).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::Engine;
use tonic::Status;

/// Most requests waiting for their stream at once.
const MAX_PENDING: usize = 1000;

/// What a stream was granted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// A command in a container.
    Exec(ProcessStreams),
    /// A container's main process.
    Attach(ProcessStreams),
    /// Ports of a pod.
    PortForward(PortForwardTarget),
}

/// Which streams of a process the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStreams {
    /// The container.
    pub container_id: String,
    /// The command (exec only).
    pub cmd: Vec<String>,
    /// A terminal was asked for.
    pub tty: bool,
    /// The client sends stdin.
    pub stdin: bool,
    /// The client wants stdout.
    pub stdout: bool,
    /// The client wants stderr (none with a terminal).
    pub stderr: bool,
}

/// Where port-forwarded connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardTarget {
    /// The pod whose network namespace the ports are in.
    pub pod_id: String,
    /// The ports the request named (a client may name others per stream).
    pub ports: Vec<u16>,
    /// The pod is on the host network.
    pub host_network: bool,
}

/// The pending requests.
pub struct Tokens {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, StreamRequest)>>,
}

impl Tokens {
    /// Tokens valid for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `request` under a new token; RESOURCE_EXHAUSTED when too many are pending.
    pub fn issue(&self, request: StreamRequest) -> Result<String, Status> {
        let token = new_token()?;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        pending.retain(|_, (expiry, _)| *expiry > now);
        if pending.len() >= MAX_PENDING {
            return Err(Status::resource_exhausted(
                "too many streams are waiting to be opened",
            ));
        }
        pending.insert(token.clone(), (now + self.ttl, request));
        Ok(token)
    }

    /// Takes the request of `token` if it is pending and not expired.
    pub fn take(&self, token: &str) -> Option<StreamRequest> {
        let (expiry, request) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)?;
        (expiry > Instant::now()).then_some(request)
    }
}

/// 144 random bits; a token nobody can guess, or none at all.
fn new_token() -> Result<String, Status> {
    let bytes = crimson_sys::random_bytes::<18>()
        .map_err(|e| Status::unavailable(format!("no random bytes for a stream token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> StreamRequest {
        StreamRequest::PortForward(PortForwardTarget {
            pod_id: "p".into(),
            ports: vec![80],
            host_network: false,
        })
    }

    #[test]
    fn tokens_are_single_use_and_expire() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let token = tokens.issue(request()).unwrap();
        assert_eq!(tokens.take(&token), Some(request()));
        assert_eq!(tokens.take(&token), None, "single use");
        assert_eq!(tokens.take("made-up"), None);
        let expired = Tokens::new(Duration::ZERO);
        let token = expired.issue(request()).unwrap();
        assert_eq!(expired.take(&token), None, "expired");
        assert_ne!(
            tokens.issue(request()).unwrap(),
            tokens.issue(request()).unwrap()
        );
    }
}
