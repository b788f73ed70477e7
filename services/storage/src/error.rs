use std::path::PathBuf;

use tonic::Status;

use crate::unpack::UnpackError;

/// Everything crimson-storage can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crimson_config::ConfigError),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] crimson_telemetry::TelemetryError),
    /// The socket could not be served.
    #[error(transparent)]
    Rpc(#[from] crimson_rpc::RpcError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crimson_store::StoreError),
    /// `--driver` names no known driver.
    #[error("unknown storage driver {0:?} (known: overlay, vfs)")]
    UnknownDriver(String),
    /// A request field is missing or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A layer the request relies on is not stored.
    #[error("layer {0} is not stored")]
    LayerNotFound(String),
    /// The parent of a layer being added is not stored yet.
    #[error("parent layer {0} must be stored before its child")]
    ParentMissing(String),
    /// A layer tar was rejected or could not be unpacked.
    #[error("layer {blob}: {source}")]
    Unpack {
        /// Blob digest of the layer.
        blob: String,
        /// What went wrong.
        source: UnpackError,
    },
    /// The layer stream ended early or broke.
    #[error("layer upload interrupted: {0}")]
    Interrupted(String),
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Path it was done to.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A filesystem step (mount, copy, walk) took longer than it may.
    #[error("{action}: no answer within {after:?}")]
    TimedOut {
        /// What was being done.
        action: &'static str,
        /// The limit.
        after: std::time::Duration,
    },
    /// Mounting or unmounting failed.
    #[error("{action} {path}: {source}")]
    Mount {
        /// What was being done.
        action: &'static str,
        /// Mount point.
        path: PathBuf,
        /// errno.
        source: nix::Error,
    },
}

impl StorageError {
    /// Shorthand for [`StorageError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    }
}

impl From<crimson_sys::BlockingError> for StorageError {
    fn from(error: crimson_sys::BlockingError) -> Self {
        match error {
            crimson_sys::BlockingError::TimedOut { what, after } => StorageError::TimedOut {
                action: what,
                after,
            },
            crimson_sys::BlockingError::Panicked { what } => {
                StorageError::Interrupted(format!("{what}: the blocking task panicked"))
            }
        }
    }
}

/// Result with [`StorageError`].
pub type Result<T> = std::result::Result<T, StorageError>;

impl From<StorageError> for Status {
    fn from(error: StorageError) -> Self {
        let message = error.to_string();
        match error {
            StorageError::InvalidArgument(_) => Status::invalid_argument(message),
            StorageError::LayerNotFound(_) => Status::not_found(message),
            StorageError::ParentMissing(_) => Status::failed_precondition(message),
            StorageError::Unpack { ref source, .. } if source.is_bad_content() => {
                Status::invalid_argument(message)
            }
            StorageError::Interrupted(_) => Status::aborted(message),
            StorageError::TimedOut { .. } => Status::deadline_exceeded(message),
            _ => Status::internal(message),
        }
    }
}
