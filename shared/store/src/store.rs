use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{Changes, Result, StoreError, Tree, flusher::Flusher, tree::DecodedTrees};

const META_TREE: &str = "__meta";
const SCHEMA_KEY: &str = "schema_version";

/// One schema step: migrates a database at version `n` (its index + 1) to `n + 1`.
pub type Migration = fn(&sled::Db) -> std::result::Result<(), String>;

/// A daemon's database. When the last clone is dropped the database is closed (the
/// flusher's thread, which holds it too, is joined).
#[derive(Clone, Debug)]
pub struct Store {
    // Dropped before the flusher, whose thread holds the last other reference.
    db: sled::Db,
    flusher: Flusher,
    decoded: DecodedTrees,
    changes: Changes,
}

impl Store {
    /// Opens (creating) the database in `dir` and brings it to `schema_version`:
    /// `migrations[i]` moves version `i + 1` to `i + 2`. A new database starts at the latest
    /// version; one written by a newer build is refused.
    pub fn open(dir: &Path, schema_version: u32, migrations: &[Migration]) -> Result<Self> {
        let db = open_when_unlocked(dir)?;
        let flushed = db.clone();
        let flusher =
            Flusher::start(move || flushed.flush().map(drop)).map_err(StoreError::FlusherStart)?;
        let store = Self {
            db,
            flusher,
            decoded: DecodedTrees::default(),
            changes: Changes::default(),
        };
        let meta = store.db.open_tree(META_TREE)?;
        let found = match meta.get(SCHEMA_KEY)? {
            Some(raw) => decode_version(&raw),
            None if store.db.tree_names().len() <= 2 => schema_version,
            None => 1,
        };
        if found > schema_version {
            return Err(StoreError::TooNew {
                found,
                supported: schema_version,
            });
        }
        for version in found..schema_version {
            let step = migrations
                .get(version as usize - 1)
                .ok_or(StoreError::Migration {
                    from: version,
                    message: "no migration registered".into(),
                })?;
            step(&store.db).map_err(|message| StoreError::Migration {
                from: version,
                message,
            })?;
        }
        meta.insert(SCHEMA_KEY, &schema_version.to_be_bytes())?;
        store.db.flush()?;
        Ok(store)
    }

    /// The typed tree `name`; its values are decoded once, when a process first opens it.
    pub fn tree<V>(&self, name: &str) -> Result<Tree<V>>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Tree::open(
            name,
            self.db.open_tree(name)?,
            &self.decoded,
            self.changes.clone(),
        )
    }

    /// The count of this database's writes (and of the changes its daemon marks in it).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Makes everything written so far durable; concurrent callers share one flush (group
    /// commit on the database's flusher thread).
    pub async fn flush(&self) -> Result<()> {
        self.flusher.flush().await
    }

    /// How many flushes the database's flusher has run (each may serve many writers).
    pub fn flush_count(&self) -> u64 {
        self.flusher.flushes()
    }
}

/// How long opening waits for another holder of the database's file lock to let go (a
/// previous instance of the daemon still exiting, or sled's own threads closing it).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens the sled database in `dir`, retrying while its file lock is still held.
fn open_when_unlocked(dir: &Path) -> Result<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

fn decode_version(raw: &[u8]) -> u32 {
    raw.try_into().map(u32::from_be_bytes).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
    struct Record {
        name: String,
    }

    #[tokio::test]
    async fn every_view_of_a_tree_sees_the_writes_of_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1, &[]).unwrap();
        let first = store.tree::<Record>("records").unwrap();
        first.put("a", &Record { name: "x".into() }).unwrap();
        let second = store.tree::<Record>("records").unwrap();
        assert_eq!(second.get("a").unwrap(), Some(Record { name: "x".into() }));
        second.put("b", &Record { name: "y".into() }).unwrap();
        assert_eq!(
            first.remove("a").unwrap(),
            Some(Record { name: "x".into() })
        );
        assert_eq!(second.values().unwrap(), vec![Record { name: "y".into() }]);
        assert_eq!(first.len(), 1);
        assert!(matches!(
            store.tree::<String>("records"),
            Err(StoreError::TreeType(_))
        ));
    }

    #[test]
    fn puts_and_removals_that_remove_something_count_as_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1, &[]).unwrap();
        let watcher = store.changes().subscribe();
        let tree = store.tree::<Record>("records").unwrap();
        tree.put("a", &Record { name: "x".into() }).unwrap();
        tree.remove("a").unwrap();
        tree.remove("a").unwrap();
        assert_eq!(*watcher.borrow(), 2);
    }

    #[tokio::test]
    async fn values_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1, &[]).unwrap();
            let tree = store.tree::<Record>("records").unwrap();
            tree.put("a", &Record { name: "x".into() }).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path(), 1, &[]).unwrap();
        let tree = store.tree::<Record>("records").unwrap();
        assert_eq!(tree.get("a").unwrap(), Some(Record { name: "x".into() }));
        assert_eq!(tree.values().unwrap().len(), 1);
    }

    /// Many writers flushing at once: the pattern that deadlocks sled 0.34's `flush_async` in
    /// release builds (`just stress` runs this test optimised).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_all_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let writers = 64;
        let rounds = 20;
        {
            let store = Store::open(dir.path(), 1, &[]).unwrap();
            let tasks: Vec<_> = (0..writers)
                .map(|writer| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let tree = store.tree::<Record>("records").unwrap();
                        for round in 0..rounds {
                            let name = format!("{writer}-{round}");
                            tree.put(&name, &Record { name: name.clone() }).unwrap();
                            store.flush().await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                tokio::time::timeout(std::time::Duration::from_secs(120), task)
                    .await
                    .expect("a flush never answered")
                    .unwrap();
            }
        }
        let store = Store::open(dir.path(), 1, &[]).unwrap();
        let tree = store.tree::<Record>("records").unwrap();
        assert_eq!(tree.values().unwrap().len(), writers * rounds);
    }

    #[test]
    fn opening_waits_for_the_previous_holder_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Store::open(dir.path(), 1, &[]).unwrap();
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(holder);
        });
        Store::open(dir.path(), 1, &[]).expect("opened once the holder let go");
        letting_go.join().unwrap();
    }

    #[test]
    fn migrations_run_in_order_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path(), 1, &[]).unwrap();
        fn add_marker(db: &sled::Db) -> std::result::Result<(), String> {
            db.insert("migrated", b"yes").map_err(|e| e.to_string())?;
            Ok(())
        }
        let store = Store::open(dir.path(), 2, &[add_marker]).unwrap();
        assert_eq!(
            store.db.get("migrated").unwrap().as_deref(),
            Some(&b"yes"[..])
        );
        drop(store);
        let err = Store::open(dir.path(), 1, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 2,
                    supported: 1
                }
            ),
            "{err}"
        );
    }
}
