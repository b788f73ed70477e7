//! Test harness for Crimson's end-to-end tests: a private docker-registry on loopback, images
//! built from busybox-static and pushed to it, and the five daemons started from the workspace's
//! build output with a private state root, run root and configuration.
//!
//! The daemons must be built first (`cargo build --workspace`; `just test` does it).

pub mod containerd;
pub mod grpcio;
pub mod host_leftovers;
pub mod image_builder;
pub mod otlp;
pub mod pods;
pub mod processes;
pub mod registry;
pub mod stack;
pub mod stream_sessions;
pub mod streams;
pub mod token_auth;

/// Fails the calling test at once, saying why, when not running as root: an end-to-end test
/// that cannot run must not report "ok".
#[macro_export]
macro_rules! require_root {
    () => {
        assert!(
            nix::unistd::geteuid().is_root(),
            "end-to-end tests need root (mounts, namespaces, device nodes, chown); \
             run them as root, or run only the unit tests: cargo test --workspace --exclude crimson-integration"
        );
    };
}

/// Polls `check` every 50 ms until it answers `Some`, for at most `seconds`; panics with
/// `what` otherwise. For waiting on other processes, never for timing assertions.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {seconds}s waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("finding a free port")
}
