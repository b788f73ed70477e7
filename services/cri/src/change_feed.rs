//! Following a daemon's writes (`crimson.daemon.v1.Daemon/WatchChanges`: their count and what
//! they touched) to keep a [`ReadCache`] of its answers honest.

use std::{sync::Arc, time::Duration};

use crimson_api::daemon::v1::{WatchChangesRequest, daemon_client::DaemonClient};
use crimson_rpc::Peer;
use crimson_store::Footprint;
use tokio_stream::StreamExt;

use crate::read_cache::{ReadCache, Written};

/// How long to wait before asking a daemon for its changes again after the stream ended.
const RECONNECT: Duration = Duration::from_millis(200);

/// Follows `peer`'s changes for as long as the process runs: the cache keeps answers while
/// the stream is up and learns every change from it; while the daemon is down (or
/// restarting, or an older build without the stream) it keeps nothing.
pub fn follow(peer: Peer, cache: Arc<ReadCache>) {
    tokio::spawn(async move {
        loop {
            if let Err(status) = follow_once(&peer, &cache).await {
                tracing::debug!(daemon = %peer.daemon(), %status, "change stream ended");
            }
            cache.lost();
            tokio::time::sleep(RECONNECT).await;
        }
    });
}

/// One subscription, from its first message (the current count) to its end.
async fn follow_once(peer: &Peer, cache: &ReadCache) -> Result<(), tonic::Status> {
    let mut changes = DaemonClient::new(peer.channel())
        .watch_changes(WatchChangesRequest {})
        .await?
        .into_inner();
    while let Some(change) = changes.next().await.transpose()? {
        let touched: Footprint =
            serde_json::from_str(&change.writes).unwrap_or_else(|_| Footprint::everything());
        let written = Written {
            from: change.from,
            touched: &touched,
        };
        cache.changed(change.run, change.count, Some(written));
    }
    Ok(())
}
