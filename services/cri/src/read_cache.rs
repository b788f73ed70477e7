//! Answers of one daemon to read calls, kept while nothing they read in that daemon changed.
//!
//! kubelet polls status and list calls far more often than anything changes; each of them
//! costs a hop to a daemon. Every answer a daemon gives carries its write count before and
//! after the call, what the call read (trees and keys of its database) and what the writes
//! during it touched ([`ChangeReport`]). The front door keeps a read's answer under the count
//! it was read at, and as it learns of writes after that count it drops the answers that read
//! something they touched (all of them, when it cannot tell what they touched): from the
//! daemon's `WatchChanges` stream (which also covers changes nobody routed: a container that
//! exited, a removal finished after a restart), or from the answer to a write it routed itself
//! (so a caller reads its own writes at once). The cache answers only while that stream is up;
//! a daemon that is down or restarting is asked directly, as before.
//!
//! Readers of the same request wait for the one fetch in flight instead of asking again, and
//! take its answer if it could be kept. A write may also leave the answer of the read that
//! follows it ([`ReadCache::keep`]).

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crimson_rpc::ChangeReport;
use crimson_store::Footprint;
use tokio::sync::watch;

/// Most answers kept; the cache starts over when it is full (reads repeat, so it refills).
const MAX_ANSWERS: usize = 4096;

/// One daemon's cached read answers, keyed by method and encoded request.
#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

/// What a read is keyed by: the method and the encoded request.
type Key = (&'static str, Vec<u8>);

#[derive(Default)]
struct Inner {
    /// The run of the daemon whose change stream is up; nothing is kept without one.
    run: Option<u64>,
    /// The highest write count known of that run.
    seen: u64,
    answers: HashMap<Key, Kept>,
    /// The reads in flight; each receiver sees `true` (or its sender dropped) once its fetch
    /// is over.
    fetching: HashMap<Key, watch::Receiver<bool>>,
}

/// Ends a fetch in flight: wakes the readers waiting for it, whatever became of it.
struct Fetching<'a> {
    cache: &'a ReadCache,
    key: Key,
    done: watch::Sender<bool>,
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        let ours = self.done.subscribe();
        if inner
            .fetching
            .get(&self.key)
            .is_some_and(|registered| registered.same_channel(&ours))
        {
            inner.fetching.remove(&self.key);
        }
        self.done.send_replace(true);
    }
}

/// An answer, the write count it was read at and what it read.
struct Kept {
    count: u64,
    reads: Footprint,
    answer: Arc<dyn Any + Send + Sync>,
}

/// Writes the cache learns of: what those after count `from` up to a newer count touched.
pub struct Written<'a> {
    /// The count they follow.
    pub from: u64,
    /// What they touched.
    pub touched: &'a Footprint,
}

impl ReadCache {
    /// The daemon's answer to `method` with `request`: the kept one, or `fetch`'s, which is
    /// kept if no write happened during it or since. Errors are never kept.
    pub async fn read<Req, Resp, Fut>(
        &self,
        method: &'static str,
        request: &Req,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Arc<Resp>, tonic::Status>
    where
        Req: prost::Message,
        Resp: Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let key = (method, request.encode_to_vec());
        let in_flight = self.lock().fetching.get(&key).cloned();
        if let Some(mut done) = in_flight {
            let _ = done.wait_for(|done| *done).await;
        }
        let fetching = {
            let mut inner = self.lock();
            if let Some(answer) = inner.kept::<Resp>(&key) {
                return Ok(answer);
            }
            let (done, watched) = watch::channel(false);
            inner.fetching.entry(key.clone()).or_insert(watched);
            Fetching {
                cache: self,
                key,
                done,
            }
        };
        let response = fetch().await?;
        let report = ChangeReport::from_metadata(response.metadata());
        let answer = Arc::new(response.into_inner());
        let mut inner = self.lock();
        if let Some(ChangeReport {
            stamp,
            reads,
            writes,
        }) = report
            && inner.advance(stamp.run, stamp.after, written_by(stamp.before, &writes))
            && stamp.before >= inner.seen
        {
            inner.insert(fetching.key.clone(), stamp.before, reads, answer.clone());
        }
        drop(inner);
        drop(fetching);
        Ok(answer)
    }

    /// Keeps `answer` as the daemon's answer to `method` with `request`, as read at write
    /// count `read_at` by a write that answers with what a read would give (`report` is on that
    /// write's answer; what the write read covers what the answer read); not if a later write
    /// is known, or the run is not the one whose stream is up.
    pub fn keep<Req, Resp>(
        &self,
        method: &'static str,
        request: &Req,
        answer: Resp,
        report: &ChangeReport,
        read_at: u64,
    ) where
        Req: prost::Message,
        Resp: Send + Sync + 'static,
    {
        let mut inner = self.lock();
        if inner.run == Some(report.stamp.run) && read_at >= inner.seen {
            let key = (method, request.encode_to_vec());
            inner.insert(key, read_at, report.reads.clone(), Arc::new(answer));
        }
    }

    /// The daemon's change stream said `count` writes in its run `run`, and what those since
    /// the count it last said touched (`written`; none from the first message).
    pub fn changed(&self, run: u64, count: u64, written: Option<Written<'_>>) {
        let mut inner = self.lock();
        if !inner.advance(run, count, written) {
            inner.run = Some(run);
            inner.seen = count;
            inner.answers.clear();
        }
    }

    /// A write routed through the front door answered (`report` is on its answer; none when
    /// it failed before the daemon answered): what it touched goes.
    pub fn wrote(&self, report: Option<&ChangeReport>) {
        let mut inner = self.lock();
        let advanced = report.is_some_and(|report| {
            let written = written_by(report.stamp.before, &report.writes);
            inner.advance(report.stamp.run, report.stamp.after, written)
        });
        if !advanced {
            inner.answers.clear();
        }
    }

    /// The change stream ended: nothing is kept until it is up again.
    pub fn lost(&self) {
        let mut inner = self.lock();
        inner.run = None;
        inner.answers.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writes a stamp counts after `before`, which touched `touched`.
fn written_by(before: u64, touched: &Footprint) -> Option<Written<'_>> {
    Some(Written {
        from: before,
        touched,
    })
}

impl Inner {
    /// Keeps `answer`, read at write count `count` with footprint `reads`, under `key`.
    fn insert(
        &mut self,
        key: Key,
        count: u64,
        reads: Footprint,
        answer: Arc<dyn Any + Send + Sync>,
    ) {
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.clear();
        }
        self.answers.insert(
            key,
            Kept {
                count,
                reads,
                answer,
            },
        );
    }

    /// The answer kept for `key`, if it is one of type `Resp`.
    fn kept<Resp: Send + Sync + 'static>(&self, key: &Key) -> Option<Arc<Resp>> {
        self.answers
            .get(key)?
            .answer
            .clone()
            .downcast::<Resp>()
            .ok()
    }

    /// Learns that the daemon's run `run` made `count` writes, dropping the answers read
    /// before them that read what they touched: what `written` says they touched, if it
    /// covers every write since the last count known, else anything; false when `run` is not
    /// the run whose stream is up.
    fn advance(&mut self, run: u64, count: u64, written: Option<Written<'_>>) -> bool {
        if self.run != Some(run) {
            return false;
        }
        if count > self.seen {
            let touched = written
                .filter(|written| written.from <= self.seen)
                .map(|written| written.touched);
            self.seen = count;
            self.answers.retain(|_, kept| {
                kept.count >= count || touched.is_some_and(|touched| !kept.reads.overlaps(touched))
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const RUN: u64 = 9;

    /// The answer a daemon of run [`RUN`] gives: `value`, read with `before` writes made and
    /// answered with `after`.
    fn answer(value: u32, before: u64, after: u64) -> tonic::Response<u32> {
        let mut response = tonic::Response::new(value);
        let stamp = format!("{RUN} {before} {after}");
        response
            .metadata_mut()
            .insert(crimson_rpc::CHANGE_STAMP_HEADER, stamp.parse().unwrap());
        response
    }

    /// The report of a daemon of run `run` on a call made between write counts `before` and
    /// `after`, which read and wrote `footprint`.
    fn report(run: u64, before: u64, after: u64, footprint: Footprint) -> ChangeReport {
        ChangeReport {
            stamp: crimson_rpc::ChangeStamp { run, before, after },
            reads: footprint.clone(),
            writes: footprint,
        }
    }

    /// A footprint of `keys` of tree `t`.
    fn keys(keys: &[&str]) -> Footprint {
        let mut footprint = Footprint::default();
        for key in keys {
            footprint.keys.insert(("t".into(), key.to_string()));
        }
        footprint
    }

    /// Reads `request` from a daemon at write count `count` that answers how often it was
    /// asked, having read key `request` of tree `t`.
    async fn read_key(cache: &ReadCache, request: &str, count: u64, asked: &AtomicU32) -> u32 {
        let fetch = || async move {
            let asked = asked.fetch_add(1, Ordering::SeqCst) + 1;
            let mut response = answer(asked, count, count);
            let reads = serde_json::to_string(&keys(&[request])).unwrap();
            response
                .metadata_mut()
                .insert(crimson_rpc::READS_HEADER, reads.parse().unwrap());
            Ok(response)
        };
        *cache
            .read("Get", &request.to_string(), fetch)
            .await
            .unwrap()
    }

    /// Reads `request` from a daemon at write count `count` that answers how often it was
    /// asked.
    async fn read(cache: &ReadCache, request: &str, count: u64, asked: &AtomicU32) -> u32 {
        let fetch = || async move {
            let asked = asked.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(answer(asked, count, count))
        };
        *cache
            .read("Get", &request.to_string(), fetch)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_read_is_answered_from_the_cache_until_a_change() {
        let cache = ReadCache::default();
        cache.changed(RUN, 3, None);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", 3, &asked).await, 1);
        assert_eq!(read(&cache, "a", 3, &asked).await, 1);
        assert_eq!(read(&cache, "b", 3, &asked).await, 2, "another request");
        cache.changed(RUN, 3, None);
        assert_eq!(
            read(&cache, "a", 3, &asked).await,
            1,
            "no news, nothing goes"
        );
        cache.changed(RUN, 4, None);
        assert_eq!(read(&cache, "a", 4, &asked).await, 3);
        assert_eq!(read(&cache, "a", 4, &asked).await, 3);
    }

    #[tokio::test]
    async fn nothing_is_kept_while_the_change_stream_is_down() {
        let cache = ReadCache::default();
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", 0, &asked).await, 1);
        assert_eq!(read(&cache, "a", 0, &asked).await, 2);
        cache.changed(RUN, 0, None);
        assert_eq!(read(&cache, "a", 0, &asked).await, 3);
        cache.lost();
        assert_eq!(read(&cache, "a", 0, &asked).await, 4);
    }

    #[tokio::test]
    async fn a_new_run_of_the_daemon_drops_everything() {
        let cache = ReadCache::default();
        cache.changed(RUN, 50, None);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", 50, &asked).await, 1);
        cache.changed(RUN + 1, 2, None);
        let fetch = || async { Ok(answer(7, 50, 50)) };
        let other_run = cache.read("Get", &"a".to_string(), fetch).await.unwrap();
        assert_eq!(*other_run, 7, "an answer of the old run is passed on");
        assert_eq!(read(&cache, "a", 2, &asked).await, 2, "but not kept");
    }

    #[tokio::test]
    async fn an_answer_read_while_something_was_written_is_not_kept() {
        let cache = ReadCache::default();
        cache.changed(RUN, 1, None);
        let fetch = || async { Ok(answer(10, 1, 2)) };
        assert_eq!(
            *cache.read("Get", &"a".to_string(), fetch).await.unwrap(),
            10
        );
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", 2, &asked).await, 1);
        assert_eq!(
            read(&cache, "a", 2, &asked).await,
            1,
            "the count moved on to 2"
        );
    }

    #[tokio::test]
    async fn a_routed_write_drops_what_was_read_before_it_and_keeps_what_was_read_after() {
        let cache = ReadCache::default();
        cache.changed(RUN, 1, None);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "old", 1, &asked).await, 1);
        cache.wrote(Some(&report(RUN, 1, 2, Footprint::everything())));
        assert_eq!(read(&cache, "new", 2, &asked).await, 2);
        cache.changed(RUN, 2, None);
        assert_eq!(
            read(&cache, "new", 2, &asked).await,
            2,
            "the stream's news of it"
        );
        assert_eq!(read(&cache, "old", 2, &asked).await, 3);
        cache.wrote(None);
        assert_eq!(
            read(&cache, "new", 2, &asked).await,
            4,
            "an unstamped write"
        );
    }

    #[tokio::test]
    async fn a_read_arriving_during_a_fetch_of_the_same_request_waits_for_it() {
        let cache = Arc::new(ReadCache::default());
        cache.changed(RUN, 0, None);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let cache = cache.clone();
            async move {
                let fetch = || async {
                    released.await.unwrap();
                    Ok(answer(1, 0, 0))
                };
                *cache.read("Get", &"a".to_string(), fetch).await.unwrap()
            }
        });
        while cache.lock().fetching.is_empty() {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let cache = cache.clone();
            async move {
                let fetch = || async { Err(tonic::Status::internal("asked a second time")) };
                cache
                    .read::<_, u32, _>("Get", &"a".to_string(), fetch)
                    .await
            }
        });
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 1);
        assert_eq!(*second.await.unwrap().unwrap(), 1);
        assert!(cache.lock().fetching.is_empty());
    }

    #[tokio::test]
    async fn a_write_can_leave_the_answer_of_the_read_that_follows_it() {
        let cache = ReadCache::default();
        cache.changed(RUN, 4, None);
        let request = "a".to_string();
        cache.keep(
            "Get",
            &request,
            7u32,
            &report(RUN, 4, 4, Footprint::everything()),
            4,
        );
        let not_asked = || async { Err(tonic::Status::internal("asked")) };
        assert_eq!(
            *cache
                .read::<_, u32, _>("Get", &request, not_asked)
                .await
                .unwrap(),
            7
        );
        cache.keep(
            "Get",
            &"b".to_string(),
            8u32,
            &report(RUN, 3, 3, Footprint::everything()),
            3,
        );
        cache.keep(
            "Get",
            &"c".to_string(),
            9u32,
            &report(RUN + 1, 4, 4, Footprint::everything()),
            4,
        );
        let asked = AtomicU32::new(0);
        assert_eq!(
            read(&cache, "b", 4, &asked).await,
            1,
            "read before a later write"
        );
        assert_eq!(read(&cache, "c", 4, &asked).await, 2, "another run's");
        cache.changed(RUN, 5, None);
        assert_eq!(read(&cache, "a", 5, &asked).await, 3, "a write after it");
    }

    #[tokio::test]
    async fn only_writes_to_what_an_answer_read_drop_it() {
        let cache = ReadCache::default();
        cache.changed(RUN, 1, None);
        let asked = AtomicU32::new(0);
        assert_eq!(read_key(&cache, "a", 1, &asked).await, 1);
        assert_eq!(read_key(&cache, "b", 1, &asked).await, 2);
        let touched = keys(&["b"]);
        let written = Written {
            from: 1,
            touched: &touched,
        };
        cache.changed(RUN, 2, Some(written));
        assert_eq!(
            read_key(&cache, "a", 2, &asked).await,
            1,
            "a was not written"
        );
        assert_eq!(read_key(&cache, "b", 2, &asked).await, 3, "b was");
        cache.wrote(Some(&report(RUN, 2, 3, keys(&["a"]))));
        assert_eq!(
            read_key(&cache, "a", 3, &asked).await,
            4,
            "a routed write of a"
        );
        assert_eq!(read_key(&cache, "b", 3, &asked).await, 3);
        let nothing = Footprint::default();
        let after_a_gap = Written {
            from: 4,
            touched: &nothing,
        };
        cache.changed(RUN, 5, Some(after_a_gap));
        assert_eq!(
            read_key(&cache, "b", 5, &asked).await,
            5,
            "writes after 3 up to 4 are unknown"
        );
    }

    #[tokio::test]
    async fn unstamped_answers_and_errors_are_not_kept() {
        let cache = ReadCache::default();
        cache.changed(RUN, 0, None);
        let request = "a".to_string();
        let plain = || async { Ok(tonic::Response::new(1u32)) };
        assert_eq!(*cache.read("Get", &request, plain).await.unwrap(), 1);
        let failed = || async { Err::<tonic::Response<u32>, _>(tonic::Status::not_found("no")) };
        let failed = cache.read("Get", &request, failed).await;
        assert_eq!(failed.unwrap_err().code(), tonic::Code::NotFound);
        let asked = AtomicU32::new(0);
        assert_eq!(read(&cache, "a", 0, &asked).await, 1);
    }
}
