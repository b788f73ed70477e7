//! Results of creations whose caller went away, kept in the database by kubelet name until the
//! identical retry claims them (as CRI-O keeps timed-out creations), so a retry after a
//! restart of this daemon still gets the pod or container instead of ALREADY_EXISTS.

use std::time::Duration;

use crimson_store::{Store, Tree};
use serde::{Deserialize, Serialize};

use crate::{Result, runtime::exit::now_nanos};

/// Tree of [`ParkedResult`]s by kubelet name.
pub const PARKED_TREE: &str = "parked";
/// How long a parked result waits for its retry.
pub const PARK_TTL: Duration = Duration::from_secs(600);

/// One finished creation nobody received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedResult {
    /// The pod or container id made.
    pub id: String,
    /// When it stops being handed out.
    pub expires_at_nanos: i64,
}

/// The parked results of this daemon.
pub struct Parked {
    store: Store,
    tree: Tree<ParkedResult>,
}

impl Parked {
    /// The parked results in `store`.
    pub fn open(store: &Store) -> Result<Self> {
        Ok(Self {
            store: store.clone(),
            tree: store.tree(PARKED_TREE)?,
        })
    }

    /// Keeps `id` for the retry of `key`, durably.
    pub async fn park(&self, key: &str, id: &str) -> Result<()> {
        let expires_at_nanos = now_nanos().saturating_add(PARK_TTL.as_nanos() as i64);
        self.tree.put(
            key,
            &ParkedResult {
                id: id.to_string(),
                expires_at_nanos,
            },
        )?;
        Ok(self.store.flush().await?)
    }

    /// Takes the result parked for `key`, unless it expired.
    pub async fn claim(&self, key: &str) -> Result<Option<String>> {
        let Some(parked) = self.tree.remove(key)? else {
            return Ok(None);
        };
        self.store.flush().await?;
        Ok((parked.expires_at_nanos > now_nanos()).then_some(parked.id))
    }

    /// Forgets whatever is parked for object `id` (it was removed); not flushed.
    pub fn forget(&self, id: &str) -> Result<()> {
        for (key, parked) in self.tree.entries()? {
            if parked.id == id {
                self.tree.remove(&key)?;
            }
        }
        Ok(())
    }

    /// Drops expired results (at start); not flushed.
    pub fn prune_expired(&self) -> Result<usize> {
        let now = now_nanos();
        let mut pruned = 0;
        for (key, parked) in self.tree.entries()? {
            if parked.expires_at_nanos <= now {
                self.tree.remove(&key)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_parked_result_is_claimed_once_survives_reopen_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1, &[]).unwrap();
            let parked = Parked::open(&store).unwrap();
            parked.park("default/web/uid/0", "pod-1").await.unwrap();
            parked.park("default/db/uid/0", "pod-2").await.unwrap();
        }
        let store = Store::open(dir.path(), 1, &[]).unwrap();
        let parked = Parked::open(&store).unwrap();
        assert_eq!(
            parked.claim("default/web/uid/0").await.unwrap().as_deref(),
            Some("pod-1")
        );
        assert_eq!(parked.claim("default/web/uid/0").await.unwrap(), None);
        parked.forget("pod-2").unwrap();
        assert_eq!(parked.claim("default/db/uid/0").await.unwrap(), None);

        parked
            .tree
            .put(
                "old",
                &ParkedResult {
                    id: "pod-3".into(),
                    expires_at_nanos: now_nanos() - 1,
                },
            )
            .unwrap();
        assert_eq!(parked.prune_expired().unwrap(), 1);
        assert_eq!(parked.claim("old").await.unwrap(), None);
    }
}
