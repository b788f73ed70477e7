//! crimson-storage as this daemon uses it, behind [`LayerStore`]: its gRPC client in the
//! daemon, a recording fake in unit tests.

use crimson_api::storage::v1::{
    ClaimLayersRequest, ListOwnersRequest, PutLayerChunk, ReleaseOwnerRequest,
    storage_client::StorageClient,
};
use crimson_rpc::Peer;
use futures::{future::BoxFuture, stream::BoxStream};

use crate::{ImageError, Result};

/// Where layers are kept, and who holds them.
pub trait LayerStore: Send + Sync {
    /// Registers `owner` as a holder of the layers `chain_ids` storage has; answers the
    /// chain ids it does not have.
    fn claim_layers<'a>(
        &'a self,
        owner: &'a str,
        chain_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>>>;
    /// Stores one layer: a header, then the blob's bytes.
    fn put_layer(&self, chunks: BoxStream<'static, PutLayerChunk>) -> BoxFuture<'_, Result<()>>;
    fn release_owner<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Every owner holding a layer.
    fn list_owners(&self) -> BoxFuture<'_, Result<Vec<String>>>;
}

/// crimson-storage over its socket.
pub struct StorageDaemon {
    /// Its client.
    pub peer: Peer,
}

impl LayerStore for StorageDaemon {
    fn claim_layers<'a>(
        &'a self,
        owner: &'a str,
        chain_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        let request = ClaimLayersRequest {
            owner: owner.to_string(),
            chain_ids: chain_ids.to_vec(),
        };
        Box::pin(async move {
            self.peer
                .call(|channel| {
                    let request = request.clone();
                    async move { StorageClient::new(channel).claim_layers(request).await }
                })
                .await
                .map(|response| response.missing_chain_ids)
                .map_err(ImageError::Storage)
        })
    }

    fn put_layer(&self, chunks: BoxStream<'static, PutLayerChunk>) -> BoxFuture<'_, Result<()>> {
        Box::pin(put_layer(self.peer.clone(), chunks))
    }

    fn release_owner<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<()>> {
        let request = ReleaseOwnerRequest {
            owner: owner.to_string(),
        };
        Box::pin(async move {
            self.peer
                .call(|channel| {
                    let request = request.clone();
                    async move { StorageClient::new(channel).release_owner(request).await }
                })
                .await
                .map(drop)
                .map_err(ImageError::Storage)
        })
    }

    fn list_owners(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.peer
                .call(|channel| async move {
                    StorageClient::new(channel)
                        .list_owners(ListOwnersRequest {})
                        .await
                })
                .await
                .map(|response| response.owners)
                .map_err(ImageError::Storage)
        })
    }
}

async fn put_layer(peer: Peer, chunks: BoxStream<'static, PutLayerChunk>) -> Result<()> {
    let stored = StorageClient::new(peer.channel())
        .max_encoding_message_size(16 * 1024 * 1024)
        .put_layer(SendStream(chunks))
        .await;
    match stored {
        Ok(_) => Ok(()),
        Err(status) if crimson_rpc::is_unreachable(&status) => {
            Err(ImageError::Storage(peer.unavailable(&status)))
        }
        Err(status) => Err(ImageError::Storage(status)),
    }
}

/// A boxed stream under a name of its own: tonic's client-streaming call on a bare
/// `BoxStream` trips rustc's higher-ranked `Send` check.
struct SendStream(BoxStream<'static, PutLayerChunk>);

impl futures::Stream for SendStream {
    type Item = PutLayerChunk;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<PutLayerChunk>> {
        self.0.as_mut().poll_next(cx)
    }
}
