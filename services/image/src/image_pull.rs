//! PullImage: resolve the name, try each source, fetch manifest and config, bring the missing
//! layers into storage, record the image.

use std::sync::Arc;

use crimson_api::image::v1::Credentials;

use crate::{
    ImageError, Result,
    auth::{self, AuthFile, Credential},
    layer_import::LayerImport,
    manifest::{self, Document, ImageConfig, ImageManifest},
    records::{ImageRecord, PulledImage},
    reference::{self, Reference},
    registries_conf::PullSource,
    registry::{Opened, RegistryConnection, RegistryFailure},
    state::State,
};

/// A finished pull: the record and the name it was pulled by.
#[derive(Debug)]
pub struct Pulled {
    pub record: ImageRecord,
    pub name: String,
}

/// Pulls `reference` with the request's `credentials` (or the global auth file's).
pub async fn pull_image(
    state: &State,
    reference: &str,
    credentials: Option<&Credentials>,
) -> Result<Pulled> {
    let parsed = reference::parse(reference)?;
    let conf = state.registries.get(&state.registries_conf)?;
    let request_credential = auth::from_request(credentials)?;
    let auth_file = match &state.global_auth_file {
        Some(path) if request_credential.is_none() => Some(AuthFile::load(path)?),
        _ => None,
    };
    let mut failures = Vec::new();
    for candidate in conf.candidates(&parsed) {
        for source in conf.sources(&candidate)? {
            let credential = match (&request_credential, &auth_file) {
                (Some(credential), _) => Some(credential.clone()),
                (None, Some(file)) => file.lookup(&source.reference)?,
                (None, None) => None,
            };
            tracing::debug!(source = %source.reference, mirror = source.mirror, authenticated = credential.is_some(), "trying source");
            match pull_from(state, &candidate, &source, credential.as_ref()).await {
                Ok(record) => {
                    let name = candidate.to_string();
                    tracing::info!(image = %name, id = %record.id, source = %source.reference, "image pulled");
                    return Ok(Pulled { record, name });
                }
                Err(Attempt::NextSource(failure)) => {
                    tracing::info!(source = %source.reference, %failure, "source failed");
                    failures.push((source.reference.to_string(), failure));
                }
                Err(Attempt::Fatal(error)) => return Err(error),
            }
        }
    }
    Err(ImageError::PullFailed {
        reference: reference.to_string(),
        failures,
    })
}

/// How one source attempt failed.
enum Attempt {
    /// The source could not provide the image; try the next one.
    NextSource(RegistryFailure),
    /// Stop: trying elsewhere would not help.
    Fatal(ImageError),
}

impl From<RegistryFailure> for Attempt {
    fn from(failure: RegistryFailure) -> Self {
        Attempt::NextSource(failure)
    }
}

async fn pull_from(
    state: &State,
    name: &Reference,
    source: &PullSource,
    credential: Option<&Credential>,
) -> std::result::Result<ImageRecord, Attempt> {
    let Opened {
        connection: session,
        manifest: raw,
        digest: top_digest,
    } = state.pull_sources.open(source, credential).await?;
    let manifest_error = |source| {
        Attempt::Fatal(ImageError::Manifest {
            reference: name.to_string(),
            source,
        })
    };
    let (manifest, manifest_digest) =
        match manifest::parse_document(&raw).map_err(manifest_error)? {
            Document::Manifest(manifest) => (manifest, top_digest.clone()),
            Document::Index(entries) => {
                let entry = manifest::choose_platform(&entries, manifest::node_platform())
                    .map_err(manifest_error)?;
                let (raw, digest) = session.manifest_by_digest(&entry.digest).await?;
                match manifest::parse_document(&raw).map_err(manifest_error)? {
                    Document::Manifest(manifest) => (manifest, digest),
                    Document::Index(_) => {
                        return Err(manifest_error(manifest::ManifestError::Malformed(
                            "an index entry points at another index".into(),
                        )));
                    }
                }
            }
        };
    let config_json = session
        .small_blob(&manifest.config.digest, manifest.config.size)
        .await?;
    let config: ImageConfig = serde_json::from_slice(&config_json).map_err(|e| {
        manifest_error(manifest::ManifestError::Malformed(format!(
            "image config: {e}"
        )))
    })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(manifest_error(manifest::ManifestError::Malformed(format!(
            "manifest has {} layers but the config lists {} diff ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        ))));
    }
    let image_id = manifest.config.digest.clone();
    let _in_flight = state.pull_in_flight(&image_id);
    let chain_ids = chain_ids(&config.rootfs.diff_ids);
    store_layers(state, &session, &image_id, &manifest, &config, &chain_ids).await?;

    let pulled = PulledImage {
        size: manifest.config.size.max(0) as u64
            + manifest
                .layers
                .iter()
                .map(|l| l.size.max(0) as u64)
                .sum::<u64>(),
        config_json: String::from_utf8_lossy(&config_json).into_owned(),
        manifest_digest,
        chain_ids,
        tag_name: if name.digest.is_some() {
            None
        } else {
            name.tagged_name()
        },
        digest_name: name.digested_name(name.digest.as_deref().unwrap_or(&top_digest)),
        id: image_id,
    };
    state
        .records
        .commit_pull(pulled)
        .await
        .map_err(Attempt::Fatal)
}

/// Claims the layers storage has, imports the others in order, then checks all are held.
async fn store_layers(
    state: &State,
    session: &Arc<dyn RegistryConnection>,
    image_id: &str,
    manifest: &ImageManifest,
    config: &ImageConfig,
    chain_ids: &[String],
) -> std::result::Result<(), Attempt> {
    let missing = state
        .storage
        .claim_layers(image_id, chain_ids)
        .await
        .map_err(Attempt::Fatal)?;
    if missing.is_empty() {
        return Ok(());
    }
    for (index, chain_id) in chain_ids.iter().enumerate() {
        if !missing.contains(chain_id) {
            continue;
        }
        let layer = LayerImport {
            owner: image_id.to_string(),
            chain_id: chain_id.clone(),
            parent_chain_id: if index == 0 {
                String::new()
            } else {
                chain_ids[index - 1].clone()
            },
            diff_id: config.rootfs.diff_ids[index].clone(),
            blob: manifest.layers[index].clone(),
        };
        if let Err(error) = state.imports.import(session, &state.storage, layer).await {
            return Err(match error {
                ImageError::Shared(inner) => match &*inner {
                    ImageError::PullFailed { failures, .. } if failures.len() == 1 => {
                        Attempt::NextSource(failures[0].1.clone())
                    }
                    _ => Attempt::Fatal(ImageError::Shared(inner)),
                },
                other => Attempt::Fatal(other),
            });
        }
    }
    // Layers imported by a concurrent pull were registered for its owner: claim them too.
    let still_missing = state
        .storage
        .claim_layers(image_id, chain_ids)
        .await
        .map_err(Attempt::Fatal)?;
    if still_missing.is_empty() {
        Ok(())
    } else {
        Err(Attempt::Fatal(ImageError::Storage(tonic::Status::aborted(
            format!("layers {still_missing:?} disappeared during the pull; retry"),
        ))))
    }
}

/// OCI chain ids of a layer stack, base first.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => crate::registry::sha256(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}
