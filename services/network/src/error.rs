use tonic::Status;

/// Everything crimson-network can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
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
    /// A request field is missing or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No usable CNI network configuration.
    #[error("network plugin not ready: {0}")]
    NotReady(String),
    /// The pod has no network attachment.
    #[error("pod {0} has no network attachment")]
    NotFound(String),
    /// A CNI plugin failed.
    #[error("CNI {command} with plugin {plugin}: {message}")]
    Plugin {
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// Plugin type.
        plugin: String,
        /// What the plugin said.
        message: String,
    },
    /// Creating or removing a network namespace failed.
    #[error("network namespace {path}: {message}")]
    Netns {
        /// Its path.
        path: String,
        /// What failed.
        message: String,
    },
    /// A host step (namespace pinning, a CNI plugin) took longer than it may.
    #[error("{action}: no answer within {after:?}")]
    TimedOut {
        /// What was being done.
        action: &'static str,
        /// The limit.
        after: std::time::Duration,
    },
}

impl From<crimson_sys::BlockingError> for NetworkError {
    fn from(error: crimson_sys::BlockingError) -> Self {
        match error {
            crimson_sys::BlockingError::TimedOut { what, after } => NetworkError::TimedOut {
                action: what,
                after,
            },
            crimson_sys::BlockingError::Panicked { what } => NetworkError::Netns {
                path: String::new(),
                message: format!("{what}: the blocking task panicked"),
            },
        }
    }
}

/// Result with [`NetworkError`].
pub type Result<T> = std::result::Result<T, NetworkError>;

impl From<NetworkError> for Status {
    fn from(error: NetworkError) -> Self {
        let message = error.to_string();
        match error {
            NetworkError::InvalidArgument(_) => Status::invalid_argument(message),
            NetworkError::NotReady(_) => Status::failed_precondition(message),
            NetworkError::NotFound(_) => Status::not_found(message),
            NetworkError::TimedOut { .. } => Status::deadline_exceeded(message),
            _ => Status::internal(message),
        }
    }
}
