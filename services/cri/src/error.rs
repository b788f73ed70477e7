/// Start-up failures of crimson-cri (request failures are gRPC statuses from the backends).
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// Configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crimson_config::ConfigError),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] crimson_telemetry::TelemetryError),
    /// The socket could not be served.
    #[error(transparent)]
    Rpc(#[from] crimson_rpc::RpcError),
    /// The streaming server could not start.
    #[error("streaming server: {0}")]
    Streaming(String),
    /// The metrics endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
}

/// Result with [`CriError`].
pub type Result<T> = std::result::Result<T, CriError>;

/// The answer for an RPC whose capability is not built yet.
pub(crate) fn not_implemented(rpc: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!("{rpc} is not implemented by crimson yet"))
}

/// InvalidArgument for a missing or empty field.
pub(crate) fn missing(field: &str) -> tonic::Status {
    tonic::Status::invalid_argument(format!("{field} must be set"))
}
