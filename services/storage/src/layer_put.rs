//! PutLayer: receive one layer blob as a stream, unpack it once, verify, register it.

use std::{
    io::Read,
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use crimson_api::storage::v1::{Layer, PutLayerChunk, PutLayerHeader, put_layer_chunk::Part};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{
    Result, StorageError,
    digest::chain_id,
    driver,
    layer_claim::{validate_digest, validate_owner},
    records::LayerRecord,
    state::State,
    unpack::{UnpackError, unpack_layer},
};

static IMPORT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What PutLayer receives: the header, then the blob's bytes (a client's stream, or any
/// other in unit tests).
pub trait ChunkStream:
    Stream<Item = std::result::Result<PutLayerChunk, tonic::Status>> + Unpin
{
}

impl<S> ChunkStream for S where
    S: Stream<Item = std::result::Result<PutLayerChunk, tonic::Status>> + Unpin
{
}

/// Reads the header, then unpacks the data chunks into a new layer (or, when the layer is
/// already stored, just adds the owner).
pub async fn put_layer(state: &State, mut stream: impl ChunkStream) -> Result<Layer> {
    let header = match stream.next().await {
        Some(Ok(PutLayerChunk {
            part: Some(Part::Header(header)),
        })) => header,
        Some(Err(status)) => {
            return Err(StorageError::Interrupted(status.message().to_string()));
        }
        _ => {
            return Err(StorageError::InvalidArgument(
                "the first PutLayer message must be the header".into(),
            ));
        }
    };
    validate_header(&header)?;
    let chain_id = chain_id(&header.parent_chain_id, &header.diff_id);
    let _importing = state.imports.lock(&chain_id).await;

    if let Some(layer) = add_owner_if_stored(state, &chain_id, &header.owner).await? {
        return Ok(layer);
    }
    let parent_diff = if header.parent_chain_id.is_empty() {
        None
    } else if state.layers.get(&header.parent_chain_id)?.is_some() {
        Some(state.layout.layer_diff(&header.parent_chain_id))
    } else {
        return Err(StorageError::ParentMissing(header.parent_chain_id.clone()));
    };

    let staging = StagingDir(state.layout.staging().join(format!(
        "import-{}-{}",
        std::process::id(),
        IMPORT_COUNTER.fetch_add(1, Ordering::Relaxed)
    )));
    let (staging, stats) = import(state, &header, parent_diff, staging, stream).await?;
    let record = LayerRecord {
        chain_id: chain_id.clone(),
        parent_chain_id: header.parent_chain_id.clone(),
        diff_id: header.diff_id.clone(),
        blob_digest: header.blob_digest.clone(),
        size_bytes: stats.size_bytes,
        inodes: stats.inodes,
        owners: [header.owner.clone()].into(),
    };
    let _records = state.records_lock.lock().await;
    let layer_dir = state.layout.layer(&chain_id);
    std::fs::rename(&staging.0, &layer_dir)
        .map_err(StorageError::io("moving into place", &layer_dir))?;
    state.layers.put(&chain_id, &record)?;
    state.store.flush().await?;
    tracing::info!(%chain_id, blob = %header.blob_digest, size = record.size_bytes, "layer stored");
    Ok(record.to_proto())
}

fn validate_header(header: &PutLayerHeader) -> Result<()> {
    validate_owner(&header.owner)?;
    validate_digest("diff id", &header.diff_id)?;
    validate_digest("blob digest", &header.blob_digest)?;
    if !header.parent_chain_id.is_empty() {
        validate_digest("parent chain id", &header.parent_chain_id)?;
    }
    Ok(())
}

async fn add_owner_if_stored(state: &State, chain_id: &str, owner: &str) -> Result<Option<Layer>> {
    let _records = state.records_lock.lock().await;
    let Some(mut record) = state.layers.get(chain_id)? else {
        return Ok(None);
    };
    if record.owners.insert(owner.to_string()) {
        state.layers.put(chain_id, &record)?;
        state.store.flush().await?;
    }
    Ok(Some(record.to_proto()))
}

/// A directory being filled; deleted when dropped unless it was moved away. Whoever holds it
/// last cleans up, so a cancelled request (the client went away) leaves nothing behind.
struct StagingDir(std::path::PathBuf);

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Streams the data chunks into the unpacker (running on a blocking thread that owns the
/// staging directory until it is done) and checks the digests it reports against the header.
async fn import(
    state: &State,
    header: &PutLayerHeader,
    parent_diff: Option<std::path::PathBuf>,
    staging: StagingDir,
    mut stream: impl ChunkStream,
) -> Result<(StagingDir, crate::unpack::Unpacked)> {
    let driver = state.driver;
    let media_type = header.media_type.clone();
    let blob = header.blob_digest.clone();
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let unpacker = tokio::task::spawn_blocking(move || {
        let diff = staging.0.join("diff");
        driver::prepare_layer_dir(driver, parent_diff.as_deref(), &diff)?;
        unpack_layer(
            ChannelReader::new(rx),
            &media_type,
            &diff,
            driver::whiteout_mode(driver),
        )
        .map(|unpacked| (staging, unpacked))
        .map_err(|source| StorageError::Unpack { blob, source })
    });
    loop {
        let item = match stream.next().await {
            Some(Ok(PutLayerChunk {
                part: Some(Part::Data(data)),
            })) => Ok(data),
            Some(Ok(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "unexpected message after the header",
            )),
            None => break,
            Some(Err(status)) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                status.message().to_string(),
            )),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break; // The unpacker stopped (and will say why), or the stream broke.
        }
    }
    drop(tx);
    let (staging, unpacked) = unpacker
        .await
        .map_err(|e| StorageError::Interrupted(format!("unpacker task: {e}")))??;
    for (what, expected, actual) in [
        ("blob", &header.blob_digest, &unpacked.blob_digest),
        ("diff id", &header.diff_id, &unpacked.diff_id),
    ] {
        if expected != actual {
            return Err(StorageError::Unpack {
                blob: header.blob_digest.clone(),
                source: UnpackError::DigestMismatch {
                    what,
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
            });
        }
    }
    Ok((staging, unpacked))
}

/// A blocking `Read` over the chunks the async side receives.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
