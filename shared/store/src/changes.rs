//! A count of a database's writes, which others watch to know when what they learnt from the
//! daemon may be out of date (the front door's read cache).

use tokio::sync::watch;

/// How many writes a database has taken since its daemon started; cheap to clone. Watchers
/// see the latest count, not each write.
#[derive(Clone, Debug)]
pub struct Changes(watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Changes {
    /// Counts one change: a write to a tree, or a change outside the database that alters the
    /// daemon's answers (a configuration file it reads).
    pub fn mark(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// The count now.
    pub fn count(&self) -> u64 {
        *self.0.borrow()
    }

    /// A receiver of the count, which sees its current value first.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
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
}
