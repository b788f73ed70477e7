//! Answers of one daemon to read calls, kept until anything in that daemon changes.
//!
//! kubelet polls status and list calls far more often than anything changes; each of them
//! costs a hop to a daemon. The front door keeps the daemon's last answer to each distinct
//! read and drops them all when the daemon's write count moves (its `WatchChanges` stream,
//! which also covers changes nobody asked for: a container that exited, a removal finished
//! after a restart) and when a write the front door routed returns (so a caller reads its own
//! writes at once). The cache answers only while that stream is up; a daemon that is down or
//! restarting is asked directly, as before.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

/// Most answers kept; the cache starts over when it is full (reads repeat, so it refills).
const MAX_ANSWERS: usize = 4096;

/// One daemon's cached read answers, keyed by method and encoded request.
#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether the daemon's change stream is up, so that the answers can be trusted.
    live: bool,
    /// Moves with every drop, so that an answer fetched before one is not kept after it.
    generation: u64,
    answers: HashMap<(&'static str, Vec<u8>), Arc<dyn Any + Send + Sync>>,
}

impl ReadCache {
    /// The daemon's answer to `method` with `request`: the cached one, or `fetch`'s, which is
    /// kept unless the daemon changed while it was fetched. Errors are never kept.
    pub async fn read<Req, Resp, Fut>(
        &self,
        method: &'static str,
        request: &Req,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Arc<Resp>, tonic::Status>
    where
        Req: prost::Message,
        Resp: Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, tonic::Status>>,
    {
        let key = (method, request.encode_to_vec());
        let generation = {
            let inner = self.lock();
            if inner.live
                && let Some(answer) = inner.answers.get(&key)
                && let Ok(answer) = answer.clone().downcast::<Resp>()
            {
                return Ok(answer);
            }
            inner.generation
        };
        let answer = Arc::new(fetch().await?);
        let mut inner = self.lock();
        if inner.live && inner.generation == generation {
            if inner.answers.len() >= MAX_ANSWERS {
                inner.answers.clear();
            }
            inner.answers.insert(key, answer.clone());
        }
        Ok(answer)
    }

    /// Drops every answer: the daemon changed, or may have.
    pub fn invalidate(&self) {
        self.set(|inner| inner.live);
    }

    /// Starts (`true`: the change stream is up) or stops keeping answers; either way the ones
    /// kept so far are dropped.
    pub fn set_live(&self, live: bool) {
        self.set(|_| live);
    }

    fn set(&self, live: impl FnOnce(&Inner) -> bool) {
        let mut inner = self.lock();
        inner.live = live(&inner);
        inner.generation += 1;
        inner.answers.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fetch that counts how often the daemon was asked and answers with that count.
    async fn counted(asked: &AtomicU32) -> Result<u32, tonic::Status> {
        Ok(asked.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn read(cache: &ReadCache, request: &str, asked: &AtomicU32) -> u32 {
        *cache
            .read("Get", &request.to_string(), || counted(asked))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_read_is_answered_from_the_cache_until_an_invalidation() {
        let cache = ReadCache::default();
        cache.set_live(true);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", &asked).await, 1);
        assert_eq!(read(&cache, "a", &asked).await, 1);
        assert_eq!(
            read(&cache, "b", &asked).await,
            2,
            "another request is asked"
        );
        cache.invalidate();
        assert_eq!(read(&cache, "a", &asked).await, 3);
        assert_eq!(read(&cache, "a", &asked).await, 3);
    }

    #[tokio::test]
    async fn nothing_is_kept_while_the_change_stream_is_down() {
        let cache = ReadCache::default();
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", &asked).await, 1);
        assert_eq!(read(&cache, "a", &asked).await, 2);
        cache.set_live(true);
        assert_eq!(read(&cache, "a", &asked).await, 3);
        cache.set_live(false);
        assert_eq!(read(&cache, "a", &asked).await, 4);
    }

    #[tokio::test]
    async fn an_answer_fetched_across_an_invalidation_is_not_kept() {
        let cache = ReadCache::default();
        cache.set_live(true);
        let stale = cache
            .read("Get", &"a".to_string(), || async {
                cache.invalidate();
                Ok::<_, tonic::Status>(1u32)
            })
            .await
            .unwrap();
        assert_eq!(*stale, 1, "the caller still gets its answer");
        let asked = AtomicU32::new(10);
        assert_eq!(read(&cache, "a", &asked).await, 11, "but it was not kept");
    }

    #[tokio::test]
    async fn errors_are_not_kept() {
        let cache = ReadCache::default();
        cache.set_live(true);
        let failed = cache
            .read("Get", &"a".to_string(), || async {
                Err::<u32, _>(tonic::Status::not_found("no such thing"))
            })
            .await;
        assert_eq!(failed.unwrap_err().code(), tonic::Code::NotFound);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", &asked).await, 1);
    }
}
