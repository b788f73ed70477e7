//! One pull's conversation with one registry: manifests, small blobs and layer streams,
//! behind [`Registries`] and [`RegistryConnection`] (oci-client in the daemon, a recording
//! fake in unit tests). A session is never shared between requests; anonymous ones share
//! their client ([`RegistryClients`]), so tokens obtained with one request's credentials
//! never serve another.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, future::BoxFuture, stream::BoxStream};
use oci_client::{
    Client, Reference as OciReference,
    errors::{OciDistributionError, OciErrorCode},
    secrets::RegistryAuth,
};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::{
    auth::Credential,
    manifest::ACCEPTED_MANIFEST_TYPES,
    reference::Reference,
    registries_conf::PullSource,
    registry_clients::{ClientKind, RegistryClients},
};

/// Largest config or manifest accepted (they are held in memory).
const MAX_SMALL_BLOB: usize = 16 * 1024 * 1024;

/// How a registry request failed, classified for the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryFailure {
    /// The registry has no such manifest or blob.
    #[error("not found: {0}")]
    NotFound(String),
    /// Credentials are missing or refused.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The registry could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Content does not match its digest or is too large.
    #[error("bad content: {0}")]
    BadContent(String),
    /// Anything else the registry said.
    #[error("{0}")]
    Other(String),
}

impl RegistryFailure {
    /// The failure's name in the pull metrics' `outcome` label.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            RegistryFailure::NotFound(_) => "not_found",
            RegistryFailure::Unauthorized(_) => "unauthorized",
            RegistryFailure::Unreachable(_) => "unreachable",
            RegistryFailure::BadContent(_) => "bad_content",
            RegistryFailure::Other(_) => "registry_error",
        }
    }

    /// gRPC code for a pull that ended with this failure.
    pub fn code(&self) -> Code {
        match self {
            RegistryFailure::NotFound(_) => Code::NotFound,
            RegistryFailure::Unauthorized(_) => Code::PermissionDenied,
            RegistryFailure::Unreachable(_) => Code::Unavailable,
            RegistryFailure::BadContent(_) => Code::DataLoss,
            RegistryFailure::Other(_) => Code::Unknown,
        }
    }

    fn from_oci(error: OciDistributionError) -> Self {
        let message = error.to_string();
        match &error {
            OciDistributionError::ImageManifestNotFoundError(_) => {
                RegistryFailure::NotFound(message)
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => {
                RegistryFailure::Unauthorized(message)
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    RegistryFailure::Unauthorized(message)
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    RegistryFailure::NotFound(message)
                } else {
                    RegistryFailure::Other(message)
                }
            }
            OciDistributionError::ServerError { code, .. } => match code {
                404 => RegistryFailure::NotFound(message),
                401 | 403 => RegistryFailure::Unauthorized(message),
                _ => RegistryFailure::Other(message),
            },
            OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => {
                RegistryFailure::Unreachable(message)
            }
            OciDistributionError::DigestError(_) => RegistryFailure::BadContent(message),
            _ => RegistryFailure::Other(message),
        }
    }
}

/// How long a registry may take to accept a connection, and to send the next bytes.
#[derive(Debug, Clone, Copy)]
pub struct RegistryTimeouts {
    /// Connection set-up.
    pub connect: Duration,
    /// A stall in the middle of a transfer.
    pub read: Duration,
}

/// A layer blob's bytes as they arrive.
pub type BlobStream = BoxStream<'static, Result<Bytes, RegistryFailure>>;

/// A source opened for one pull, with the manifest its reference names.
pub struct Opened {
    /// The connection the rest of the pull reads through.
    pub connection: Arc<dyn RegistryConnection>,
    /// The manifest (or index) as the registry sent it.
    pub manifest: Bytes,
    /// Its digest.
    pub digest: String,
}

/// Opens pull sources.
pub trait Registries: Send + Sync {
    /// Opens `source` with `credential` and fetches the manifest its reference names.
    fn open<'a>(
        &'a self,
        source: &'a PullSource,
        credential: Option<&'a Credential>,
    ) -> BoxFuture<'a, Result<Opened, RegistryFailure>>;
}

/// What a pull reads from a source once it is open.
pub trait RegistryConnection: Send + Sync {
    /// The manifest with `digest` in the source repository, verified; and its digest.
    fn manifest_by_digest<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<(Bytes, String), RegistryFailure>>;
    /// A small blob (the image config) in memory, verified against `digest`.
    fn small_blob<'a>(
        &'a self,
        digest: &'a str,
        size: i64,
    ) -> BoxFuture<'a, Result<Vec<u8>, RegistryFailure>>;
    /// The bytes of a layer blob as they arrive. Digest checks happen where they are stored.
    fn blob_stream<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<BlobStream, RegistryFailure>>;
    /// Where this connection pulls from, for messages.
    fn source(&self) -> &Reference;
}

/// Registries over HTTP(S), through oci-client.
pub struct OciRegistries {
    /// How long a registry may take.
    pub timeouts: RegistryTimeouts,
    /// The clients kept from one pull to the next.
    pub clients: RegistryClients,
}

impl Registries for OciRegistries {
    fn open<'a>(
        &'a self,
        source: &'a PullSource,
        credential: Option<&'a Credential>,
    ) -> BoxFuture<'a, Result<Opened, RegistryFailure>> {
        Box::pin(async move {
            let (session, manifest, digest) =
                RegistrySession::open(source, credential, self).await?;
            Ok(Opened {
                connection: Arc::new(session),
                manifest,
                digest,
            })
        })
    }
}

/// A connection to one pull source through oci-client, with its credentials.
#[derive(Clone)]
pub struct RegistrySession {
    client: Arc<Client>,
    auth: RegistryAuth,
    source: Reference,
}

impl RegistrySession {
    /// Opens a session to `source` and fetches its manifest. An insecure source is tried over
    /// HTTPS without certificate checks first, then over plain HTTP (plain HTTP first for a
    /// registry that answered in it last time).
    async fn open(
        source: &PullSource,
        credential: Option<&Credential>,
        registries: &OciRegistries,
    ) -> Result<(Self, Bytes, String), RegistryFailure> {
        let registry = &source.reference.registry;
        let clients = &registries.clients;
        let kinds = clients.in_order(registry, ClientKind::for_source(source.insecure));
        let remembered = kinds.first().is_some_and(|kind| kind.plain_http);
        let target = match &source.reference.digest {
            Some(digest) => oci_ref_digest(&source.reference, digest),
            None => oci_ref_tag(&source.reference),
        };
        let mut last: Option<RegistryFailure> = None;
        for (index, kind) in kinds.into_iter().enumerate() {
            let session = Self {
                client: clients.client(kind, registries.timeouts, credential.is_none()),
                auth: Credential::to_registry_auth(credential),
                source: source.reference.clone(),
            };
            match session.fetch_manifest(&target).await {
                Ok((raw, digest)) => {
                    clients.answered(registry, kind);
                    return Ok((session, raw, digest));
                }
                Err(failure) => {
                    // Plain HTTP tried first from memory: the registry may have moved to HTTPS.
                    let try_next = matches!(failure, RegistryFailure::Unreachable(_))
                        || (index == 0 && remembered);
                    if !try_next {
                        return Err(failure);
                    }
                    if last
                        .as_ref()
                        .is_none_or(|last| matches!(last, RegistryFailure::Unreachable(_)))
                    {
                        last = Some(failure);
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| RegistryFailure::Other("no protocol to try".into())))
    }

    async fn fetch_manifest_owned(
        &self,
        target: OciReference,
    ) -> Result<(Bytes, String), RegistryFailure> {
        self.fetch_manifest(&target).await
    }

    async fn fetch_manifest(
        &self,
        target: &OciReference,
    ) -> Result<(Bytes, String), RegistryFailure> {
        let (raw, _) = self
            .client
            .pull_manifest_raw(target, &self.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(RegistryFailure::from_oci)?;
        if raw.len() > MAX_SMALL_BLOB {
            return Err(RegistryFailure::BadContent(format!(
                "manifest of {} bytes is too large",
                raw.len()
            )));
        }
        let digest = sha256(&raw);
        if let Some(expected) = target.digest()
            && expected != digest
        {
            return Err(RegistryFailure::BadContent(format!(
                "manifest digest is {digest}, expected {expected}"
            )));
        }
        Ok((raw, digest))
    }

    async fn small_blob(&self, digest: &str, size: i64) -> Result<Vec<u8>, RegistryFailure> {
        if size < 0 || size as usize > MAX_SMALL_BLOB {
            return Err(RegistryFailure::BadContent(format!(
                "blob {digest} claims {size} bytes"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.client
            .pull_blob(&oci_ref_tag(&self.source), digest, &mut data)
            .await
            .map_err(RegistryFailure::from_oci)?;
        if sha256(&data) != digest {
            return Err(RegistryFailure::BadContent(format!(
                "blob {digest} does not match its digest"
            )));
        }
        Ok(data)
    }

    async fn blob_stream(&self, digest: &str) -> Result<BlobStream, RegistryFailure> {
        let digest = digest.to_string();
        let sized = self
            .client
            .pull_blob_stream(&oci_ref_tag(&self.source), digest.as_str())
            .await
            .map_err(RegistryFailure::from_oci)?;
        Ok(sized
            .map(move |chunk| {
                chunk.map_err(|e| {
                    let message = format!("reading blob {digest}: {e}");
                    if e.get_ref()
                        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
                    {
                        RegistryFailure::BadContent(message)
                    } else {
                        RegistryFailure::Unreachable(message)
                    }
                })
            })
            .boxed())
    }
}

impl RegistryConnection for RegistrySession {
    fn manifest_by_digest<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<(Bytes, String), RegistryFailure>> {
        Box::pin(self.fetch_manifest_owned(oci_ref_digest(&self.source, digest)))
    }

    fn small_blob<'a>(
        &'a self,
        digest: &'a str,
        size: i64,
    ) -> BoxFuture<'a, Result<Vec<u8>, RegistryFailure>> {
        Box::pin(RegistrySession::small_blob(self, digest, size))
    }

    fn blob_stream<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<BlobStream, RegistryFailure>> {
        Box::pin(RegistrySession::blob_stream(self, digest))
    }

    fn source(&self) -> &Reference {
        &self.source
    }
}

fn oci_ref_tag(reference: &Reference) -> OciReference {
    OciReference::with_tag(
        reference.registry.clone(),
        reference.repository.clone(),
        reference.tag.clone().unwrap_or_else(|| "latest".into()),
    )
}

fn oci_ref_digest(reference: &Reference, digest: &str) -> OciReference {
    OciReference::with_digest(
        reference.registry.clone(),
        reference.repository.clone(),
        digest.to_string(),
    )
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
