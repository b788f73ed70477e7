use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A lazily connecting channel to the gRPC server on `path`. It reconnects by itself when the
/// server restarts; calls made while nothing listens fail fast with UNAVAILABLE, and HTTP/2
/// pings end calls to a server that stopped answering (a hung or stopped process) within
/// about [`KEEPALIVE_INTERVAL`] + [`KEEPALIVE_TIMEOUT`].
pub fn connect_unix(path: impl Into<PathBuf>) -> Channel {
    let path = path.into();
    Endpoint::from_static("http://localhost")
        .connect_timeout(std::time::Duration::from_secs(2))
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(&path).await.map(TokioIo::new) }
        }))
}

/// How often an HTTP/2 ping checks that the server still answers.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an unanswered ping may wait before the connection is declared dead.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Prepares `path` for binding: creates its directory and removes a stale socket, but refuses
/// when a live process still answers on it.
pub(crate) async fn prepare_socket_path(path: &Path) -> Result<(), crate::RpcError> {
    let bind_err = |source| crate::RpcError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(bind_err)?;
    }
    if tokio::fs::symlink_metadata(path).await.is_ok() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(crate::RpcError::InUse {
                path: path.to_path_buf(),
            });
        }
        tokio::fs::remove_file(path).await.map_err(bind_err)?;
    }
    Ok(())
}
