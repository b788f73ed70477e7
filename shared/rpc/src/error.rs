use std::path::PathBuf;

/// Failures of serving a socket.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The socket could not be prepared or bound.
    #[error("binding {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// I/O failure.
        source: std::io::Error,
    },
    /// Another process already answers on the socket.
    #[error("{path} is in use by a running process")]
    InUse {
        /// Socket path.
        path: PathBuf,
    },
    /// SIGTERM or SIGINT could not be caught.
    #[error("installing the SIGTERM and SIGINT handlers: {0}")]
    Signals(std::io::Error),
    /// The gRPC server stopped with an error.
    #[error("serving {path}: {source}")]
    Serve {
        /// Socket path.
        path: PathBuf,
        /// tonic's failure.
        source: tonic::transport::Error,
    },
}
