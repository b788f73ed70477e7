/// Everything crimson-network can fail with.
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
}

/// Result with [`NetworkError`].
pub type Result<T> = std::result::Result<T, NetworkError>;
