use std::sync::Arc;

use tonic::{Code, Status};

use crate::{
    auth::AuthError, manifest::ManifestError, reference::ReferenceError,
    registries_conf::RegistriesConfError, registry::RegistryFailure,
};

/// Everything crimson-image can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// registries.conf is unusable or refuses the pull.
    #[error(transparent)]
    RegistriesConf(#[from] RegistriesConfError),
    /// Credentials are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A manifest or config is unusable.
    #[error("{reference}: {source}")]
    Manifest {
        /// The source being pulled.
        reference: String,
        /// What is wrong.
        source: ManifestError,
    },
    /// Every source failed; each failure is listed.
    #[error("pulling {reference} failed: {}", describe(.failures))]
    PullFailed {
        /// The reference as requested.
        reference: String,
        /// (source, failure) in the order tried.
        failures: Vec<(String, RegistryFailure)>,
    },
    /// crimson-storage refused or could not be reached.
    #[error("crimson-storage: {}", .0.message())]
    Storage(Status),
    /// No such image.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// The same failure, shared by every pull that waited on one download.
    #[error("{0}")]
    Shared(Arc<ImageError>),
}

fn describe(failures: &[(String, RegistryFailure)]) -> String {
    failures
        .iter()
        .map(|(source, failure)| format!("{source}: {failure}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result with [`ImageError`].
pub type Result<T> = std::result::Result<T, ImageError>;

impl ImageError {
    /// Why a pull failed, as the pull metrics' `outcome` label names it.
    pub fn pull_failure_reason(&self) -> &'static str {
        match self {
            ImageError::Reference(_) => "invalid_reference",
            ImageError::RegistriesConf(RegistriesConfError::Blocked { .. }) => "blocked",
            ImageError::RegistriesConf(_) => "registries_conf",
            ImageError::Auth(_) => "credentials",
            ImageError::Manifest { .. } => "bad_manifest",
            ImageError::PullFailed { failures, .. } => failures
                .last()
                .map_or("no_source", |(_, failure)| failure.metric_reason()),
            ImageError::Storage(_) => "storage",
            ImageError::Shared(inner) => inner.pull_failure_reason(),
            _ => "internal",
        }
    }

    fn code(&self) -> Code {
        match self {
            ImageError::Reference(_) => Code::InvalidArgument,
            ImageError::RegistriesConf(RegistriesConfError::Blocked { .. }) => {
                Code::PermissionDenied
            }
            ImageError::RegistriesConf(_) => Code::FailedPrecondition,
            ImageError::Auth(AuthError::IdentityToken) => Code::Unimplemented,
            ImageError::Auth(AuthError::MalformedAuth) => Code::InvalidArgument,
            ImageError::Auth(AuthError::File { .. }) => Code::FailedPrecondition,
            ImageError::Manifest {
                source: ManifestError::NoMatchingPlatform(_),
                ..
            } => Code::NotFound,
            ImageError::Manifest { .. } => Code::FailedPrecondition,
            ImageError::PullFailed { failures, .. } => failures
                .last()
                .map_or(Code::Unknown, |(_, failure)| failure.code()),
            ImageError::Storage(status) => status.code(),
            ImageError::NotFound(_) => Code::NotFound,
            ImageError::Shared(inner) => inner.code(),
            _ => Code::Internal,
        }
    }
}

impl From<ImageError> for Status {
    fn from(error: ImageError) -> Self {
        Status::new(error.code(), error.to_string())
    }
}
