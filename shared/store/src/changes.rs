//! A count of a database's writes, with what the recent ones touched, which others watch to
//! know when what they learnt from the daemon may be out of date (the front door's read cache).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use crate::Footprint;

/// How many recent writes [`Changes`] remembers the keys of (a reader that falls further
/// behind learns that everything may have changed).
const LOGGED_WRITES: usize = 1024;

/// What one write touched: a key of a tree, or anything (`None`).
type Touched = Option<(Box<str>, Box<str>)>;

/// How many writes a database has taken since its daemon started, and the keys of the recent
/// ones; cheap to clone. Watchers see the latest count, not each write.
#[derive(Clone, Debug)]
pub struct Changes {
    count: watch::Sender<u64>,
    /// `(count after the write, what it touched)`, oldest first.
    log: Arc<Mutex<VecDeque<(u64, Touched)>>>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            count: watch::Sender::new(0),
            log: Arc::default(),
        }
    }
}

impl Changes {
    /// Counts a change outside the database that alters the daemon's answers (a configuration
    /// file it reads): it touches everything.
    pub fn mark(&self) {
        self.record(None);
    }

    /// Counts a write of `key` of `tree`.
    pub(crate) fn mark_key(&self, tree: &str, key: &str) {
        self.record(Some((tree.into(), key.into())));
    }

    fn record(&self, written: Touched) {
        self.count.send_modify(|count| {
            *count = count.wrapping_add(1);
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() == LOGGED_WRITES {
                log.pop_front();
            }
            log.push_back((*count, written));
        });
    }

    /// The count now.
    pub fn count(&self) -> u64 {
        *self.count.borrow()
    }

    /// A receiver of the count, which sees its current value first.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }

    /// What the writes after count `from` up to count `to` touched; everything when the log
    /// no longer reaches back that far.
    pub fn written_between(&self, from: u64, to: u64) -> Footprint {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let reaches = log.front().is_some_and(|(first, _)| *first <= from + 1);
        if to > from && !reaches {
            return Footprint::everything();
        }
        let mut written = Footprint::default();
        for (_, touched) in log
            .iter()
            .filter(|(count, _)| (from + 1..=to).contains(count))
        {
            match touched {
                Some((tree, key)) => {
                    written.keys.insert((tree.to_string(), key.to_string()));
                }
                None => written.everything = true,
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchers_see_that_the_count_moved() {
        let changes = Changes::default();
        let mut watcher = changes.subscribe();
        assert_eq!(*watcher.borrow_and_update(), 0);
        changes.mark();
        changes.mark();
        assert!(watcher.has_changed().unwrap());
        assert_eq!(*watcher.borrow_and_update(), 2);
        assert!(!watcher.has_changed().unwrap());
    }

    #[test]
    fn the_keys_of_recent_writes_are_told_by_count() {
        let changes = Changes::default();
        changes.mark_key("pods", "a");
        changes.mark_key("pods", "b");
        changes.mark_key("containers", "c");
        let keys = |footprint: Footprint| {
            footprint
                .keys
                .into_iter()
                .map(|(_, k)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(changes.written_between(1, 3)), ["c", "b"]);
        assert_eq!(keys(changes.written_between(0, 1)), ["a"]);
        assert_eq!(changes.written_between(3, 3), Footprint::default());
        changes.mark();
        assert!(changes.written_between(3, 4).everything);
    }

    #[test]
    fn writes_older_than_the_log_touch_everything() {
        let changes = Changes::default();
        for n in 0..LOGGED_WRITES + 2 {
            changes.mark_key("t", &n.to_string());
        }
        let count = changes.count();
        assert!(changes.written_between(0, count).everything);
        assert!(!changes.written_between(count - 10, count).everything);
    }
}
