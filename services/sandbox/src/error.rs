use tonic::Status;

/// Everything crimson-sandbox can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
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
    /// No such pod.
    #[error("pod sandbox {0} not found")]
    PodNotFound(String),
    /// No such container.
    #[error("container {0} not found")]
    ContainerNotFound(String),
    /// The same name is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The object is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A neighbour daemon refused or could not be reached.
    #[error("{daemon}: {}", .status.message())]
    Peer {
        /// Which daemon.
        daemon: &'static str,
        /// What it answered.
        status: Status,
    },
    /// The OCI runtime or conmon failed.
    #[error("{action}: {message}")]
    Runtime {
        /// What was being done.
        action: &'static str,
        /// What the runtime said.
        message: String,
    },
    /// An external step (runtime, monitor, system call) took longer than it may; what it
    /// made is undone by its caller.
    #[error("{action}: no answer within {after:?}")]
    TimedOut {
        /// What was being done.
        action: &'static str,
        /// The limit.
        after: std::time::Duration,
    },
    /// Another creation of the same kubelet name is still running.
    #[error("{0}: an earlier request for this name is still being worked on; retry")]
    Busy(String),
    /// A filesystem or system call failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Shorthand for [`SandboxError::Io`].
    pub fn io(
        action: &'static str,
        path: impl AsRef<std::path::Path>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().display().to_string();
        move |source| SandboxError::Io {
            action,
            path,
            source,
        }
    }

    /// Shorthand for [`SandboxError::Runtime`].
    pub fn runtime(action: &'static str, message: impl std::fmt::Display) -> Self {
        SandboxError::Runtime {
            action,
            message: message.to_string(),
        }
    }
}

impl From<crimson_sys::BlockingError> for SandboxError {
    fn from(error: crimson_sys::BlockingError) -> Self {
        match error {
            crimson_sys::BlockingError::TimedOut { what, after } => SandboxError::TimedOut {
                action: what,
                after,
            },
            crimson_sys::BlockingError::Panicked { what } => {
                SandboxError::runtime(what, "the blocking task panicked")
            }
        }
    }
}

/// Result with [`SandboxError`].
pub type Result<T> = std::result::Result<T, SandboxError>;

impl From<SandboxError> for Status {
    fn from(error: SandboxError) -> Self {
        let message = error.to_string();
        match error {
            SandboxError::InvalidArgument(_) => Status::invalid_argument(message),
            SandboxError::PodNotFound(_) | SandboxError::ContainerNotFound(_) => {
                Status::not_found(message)
            }
            SandboxError::AlreadyExists(_) => Status::already_exists(message),
            SandboxError::FailedPrecondition(_) => Status::failed_precondition(message),
            SandboxError::Peer { status, .. } => Status::new(status.code(), message),
            SandboxError::TimedOut { .. } => Status::deadline_exceeded(message),
            SandboxError::Busy(_) => Status::unavailable(message),
            _ => Status::internal(message),
        }
    }
}
