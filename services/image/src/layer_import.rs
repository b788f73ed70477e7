//! Moving layer blobs from a registry into crimson-storage, each at most once at a time:
//! concurrent pulls that need the same layer wait for the one download already running.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crimson_api::storage::v1::{PutLayerChunk, PutLayerHeader, put_layer_chunk::Part};
use futures::{
    FutureExt, StreamExt,
    future::{BoxFuture, Shared},
};
use tracing::Instrument;

use crate::{
    ImageError, Result,
    layer_store::LayerStore,
    manifest::Descriptor,
    registry::{RegistryConnection, RegistryFailure},
};

type SharedImport = Shared<BoxFuture<'static, std::result::Result<(), Arc<ImageError>>>>;

/// Layer downloads under way, by chain id.
#[derive(Default)]
pub struct LayerImports {
    running: Mutex<HashMap<String, SharedImport>>,
}

/// One layer to bring into storage.
pub struct LayerImport {
    /// Owner the layer is registered for.
    pub owner: String,
    pub chain_id: String,
    pub parent_chain_id: String,
    pub diff_id: String,
    pub blob: Descriptor,
}

impl LayerImports {
    /// Imports `layer` from `session`, or waits for the import of the same chain id that is
    /// already running. The import runs to its end even if this caller goes away, so a
    /// retried pull finds it finished or still running.
    pub async fn import(
        &self,
        session: &Arc<dyn RegistryConnection>,
        storage: &Arc<dyn LayerStore>,
        layer: LayerImport,
    ) -> Result<()> {
        let chain_id = layer.chain_id.clone();
        let shared = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.get(&chain_id) {
                Some(shared) => shared.clone(),
                None => {
                    let task = tokio::spawn(
                        stream_layer(session.clone(), storage.clone(), layer)
                            .instrument(tracing::Span::current()),
                    );
                    let shared = async move {
                        match task.await {
                            Ok(result) => result.map_err(Arc::new),
                            Err(e) => Err(Arc::new(ImageError::Storage(tonic::Status::internal(
                                format!("layer import task failed: {e}"),
                            )))),
                        }
                    }
                    .boxed()
                    .shared();
                    running.insert(chain_id.clone(), shared.clone());
                    shared
                }
            }
        };
        let result = shared.clone().await;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .get(&chain_id)
            .is_some_and(|current| current.ptr_eq(&shared))
        {
            running.remove(&chain_id);
        }
        result.map_err(ImageError::Shared)
    }
}

/// Streams the blob from the registry into crimson-storage's PutLayer.
async fn stream_layer(
    session: Arc<dyn RegistryConnection>,
    storage: Arc<dyn LayerStore>,
    layer: LayerImport,
) -> Result<()> {
    let source = session.source().to_string();
    let pull_failed = |failure: RegistryFailure| ImageError::PullFailed {
        reference: source.clone(),
        failures: vec![(source.clone(), failure)],
    };
    let blob = session
        .blob_stream(&layer.blob.digest)
        .await
        .map_err(pull_failed)?;
    let registry_failure = Arc::new(Mutex::new(None));
    let failure_slot = registry_failure.clone();
    let header = PutLayerChunk {
        part: Some(Part::Header(PutLayerHeader {
            owner: layer.owner,
            parent_chain_id: layer.parent_chain_id,
            diff_id: layer.diff_id,
            blob_digest: layer.blob.digest.clone(),
            media_type: layer.blob.media_type.clone(),
        })),
    };
    // The stream ends at the first registry error; the error is reported instead of storage's.
    let data = blob.scan((), move |(), chunk| {
        futures::future::ready(match chunk {
            Ok(bytes) => Some(PutLayerChunk {
                part: Some(Part::Data(bytes)),
            }),
            Err(failure) => {
                *failure_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
                None
            }
        })
    });
    let outbound = futures::stream::once(async move { header }).chain(data);
    tracing::info!(blob = %layer.blob.digest, chain_id = %layer.chain_id, size = layer.blob.size, "importing layer");
    let stored = storage.put_layer(outbound.boxed()).await;
    if let Some(failure) = registry_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(pull_failed(failure));
    }
    if stored.is_ok()
        && let Some(metrics) = crimson_metrics::get()
    {
        metrics.record_pulled_bytes(layer.blob.size.max(0) as u64);
    }
    stored
}
