/// Everything crimson-sandbox can fail with.
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
}

/// Result with [`SandboxError`].
pub type Result<T> = std::result::Result<T, SandboxError>;
