//! A backend daemon whose answers to reads the front door keeps ([`ReadCache`]): its writes
//! tell the cache what they changed, its reads go through the cache.

use std::sync::Arc;

use crimson_rpc::{ChangeReport, Peer, PeerChannel};

use crate::{change_feed, read_cache::ReadCache};

/// `peer`, with the cache of its answers and the gRPC client (`C`) its calls are made with;
/// cheap to clone.
pub struct CachedPeer<C> {
    peer: Peer,
    answers: Arc<ReadCache>,
    client: fn(PeerChannel) -> C,
}

impl<C> Clone for CachedPeer<C> {
    fn clone(&self) -> Self {
        Self {
            peer: self.peer.clone(),
            answers: self.answers.clone(),
            client: self.client,
        }
    }
}

impl<C: 'static> CachedPeer<C> {
    /// `peer`, called through clients that `client` makes; nothing is kept until
    /// [`CachedPeer::follow_changes`].
    pub fn new(peer: Peer, client: fn(PeerChannel) -> C) -> Self {
        Self {
            peer,
            answers: Arc::default(),
            client,
        }
    }

    /// Starts following the daemon's changes, which lets its answers be kept (needs a tokio
    /// runtime).
    pub fn follow_changes(&self) {
        change_feed::follow(self.peer.clone(), self.answers.clone());
    }

    /// A call that may change the daemon, retried while it cannot be reached (bounded); the
    /// answers read before it go when it returns.
    pub async fn write<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        Ok(self.write_stamped(call).await?.0)
    }

    /// [`CachedPeer::write`], with the daemon's report on its answer.
    pub async fn write_stamped<T, F, Fut>(
        &self,
        mut call: F,
    ) -> Result<(T, Option<ChangeReport>), tonic::Status>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let answer = self
            .peer
            .call_response(|channel| call((self.client)(channel)))
            .await;
        let metadata = match &answer {
            Ok(response) => response.metadata(),
            Err(status) => status.metadata(),
        };
        let report = ChangeReport::from_metadata(metadata);
        self.answers.wrote(report.as_ref());
        answer.map(|response| (response.into_inner(), report))
    }

    /// The daemon's answer to the read `method` with `request`, kept until it changes.
    pub async fn read<Req, T, F, Fut>(
        &self,
        method: &'static str,
        request: Req,
        call: F,
    ) -> Result<Arc<T>, tonic::Status>
    where
        Req: prost::Message + Clone,
        T: Send + Sync + 'static,
        F: Fn(C, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.answers
            .read(method, &request, || {
                self.peer
                    .call_response(|channel| call((self.client)(channel), request.clone()))
            })
            .await
    }

    /// Keeps `answer` as the daemon's answer to the read `method` with `request`, which a
    /// write (answered with `report`) gave as read at the daemon's write count `read_at`.
    pub fn keep<Req, T>(
        &self,
        method: &'static str,
        request: &Req,
        answer: T,
        report: &ChangeReport,
        read_at: u64,
    ) where
        Req: prost::Message,
        T: Send + Sync + 'static,
    {
        self.answers.keep(method, request, answer, report, read_at);
    }
}
