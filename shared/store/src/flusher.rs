//! Group commit: one thread per database makes writes durable.
//!
//! Every writer that needs its writes on disk queues a request; the flusher thread takes every
//! request queued so far, runs one blocking `flush`, and answers them all. N concurrent writers
//! cost about one fsync, not N, and nothing blocks a tokio worker. This replaces concurrent
//! `sled::Db::flush_async` futures, which deadlock in optimised builds of sled 0.34
//! (spacejam/sled#1308, #1241).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

type Answer = std::result::Result<(), Arc<sled::Error>>;

/// Handle on a database's flusher thread. Dropping the last handle ends the thread and waits
/// for it, so the database it holds is closed (and its file lock released) on return.
#[derive(Debug, Clone)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    requests: Option<mpsc::UnboundedSender<oneshot::Sender<Answer>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Flusher {
    /// Starts the thread; `flush` makes everything written so far durable.
    pub(crate) fn start<F>(mut flush: F) -> std::io::Result<Self>
    where
        F: FnMut() -> std::result::Result<(), sled::Error> + Send + 'static,
    {
        let (requests, mut queue) = mpsc::unbounded_channel::<oneshot::Sender<Answer>>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || {
                while let Some(first) = queue.blocking_recv() {
                    let mut waiting = vec![first];
                    while let Ok(next) = queue.try_recv() {
                        waiting.push(next);
                    }
                    // Every write made before a request was queued is covered: the request was
                    // taken off the queue before this flush began.
                    let answer = flush().map_err(Arc::new);
                    counter.fetch_add(1, Ordering::Relaxed);
                    for writer in waiting {
                        let _ = writer.send(answer.clone());
                    }
                }
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                requests: Some(requests),
                thread: Some(thread),
                flushes,
            }),
        })
    }

    /// Queues a request now (before the future is first polled) and resolves once a flush that
    /// began after it has finished.
    pub(crate) fn flush(&self) -> impl Future<Output = Result<()>> + use<> {
        let (reply, answer) = oneshot::channel();
        let queued = self
            .shared
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send(reply).is_ok());
        async move {
            if !queued {
                return Err(StoreError::FlusherGone);
            }
            match answer.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(StoreError::Flush(e)),
                Err(_) => Err(StoreError::FlusherGone),
            }
        }
    }

    /// How many flushes the thread has run.
    pub(crate) fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    /// A flush that reports when it starts and waits for a permit to finish.
    fn gated() -> (Flusher, std_mpsc::Receiver<()>, std_mpsc::Sender<()>) {
        let (started_tx, started) = std_mpsc::channel();
        let (permit, permits) = std_mpsc::channel::<()>();
        let flusher = Flusher::start(move || {
            started_tx.send(()).unwrap();
            permits.recv().unwrap();
            Ok(())
        })
        .unwrap();
        (flusher, started, permit)
    }

    #[tokio::test]
    async fn writers_queued_behind_a_flush_share_the_next_one() {
        let (flusher, started, permit) = gated();
        let first = tokio::spawn(flusher.flush());
        started.recv().unwrap();
        // Ten writers arrive while the first flush is still running.
        let waiting: Vec<_> = (0..10).map(|_| tokio::spawn(flusher.flush())).collect();
        permit.send(()).unwrap();
        first.await.unwrap().unwrap();
        started.recv().unwrap();
        permit.send(()).unwrap();
        for writer in waiting {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(flusher.flushes(), 2);
    }

    #[tokio::test]
    async fn a_failed_flush_fails_every_writer_it_served() {
        let flusher = Flusher::start(|| Err(sled::Error::Unsupported("full disk".into()))).unwrap();
        let (first, second) = (flusher.flush(), flusher.flush());
        for answer in [first.await, second.await] {
            assert!(matches!(answer, Err(StoreError::Flush(_))), "{answer:?}");
        }
    }
}
