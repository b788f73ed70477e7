use std::{
    any::Any,
    collections::{BTreeMap, HashMap},
    marker::PhantomData,
    sync::{Arc, Mutex, RwLock},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{Changes, Result, StoreError, footprint::note_read};

/// The decoded values of one tree, kept in step with it: every write goes through [`Tree`]
/// (under the write lock, so the map and the tree agree), and reads never decode.
type Decoded<V> = RwLock<BTreeMap<String, V>>;

/// The decoded values of each tree a store opened, by tree name, so that every [`Tree`] over
/// one sled tree shares one map.
#[derive(Clone, Default)]
pub(crate) struct DecodedTrees(Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>);

impl std::fmt::Debug for DecodedTrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodedTrees")
    }
}

/// A sled tree whose keys are strings and whose values are `V` stored as JSON. Reads are
/// answered from memory (the values are decoded once, when the tree is first opened); writes
/// go to sled and memory together.
#[derive(Clone)]
pub struct Tree<V> {
    name: String,
    tree: sled::Tree,
    decoded: Arc<Decoded<V>>,
    changes: Changes,
    value: PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Tree<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("name", &self.name).finish()
    }
}

impl<V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Tree<V> {
    /// The typed view of `tree`, sharing its decoded values with every other view in `trees`.
    /// Each write counts in `changes`.
    pub(crate) fn open(
        name: &str,
        tree: sled::Tree,
        trees: &DecodedTrees,
        changes: Changes,
    ) -> Result<Self> {
        let mut opened = trees.0.lock().unwrap_or_else(|e| e.into_inner());
        let decoded = match opened.get(name) {
            Some(shared) => shared
                .clone()
                .downcast::<Decoded<V>>()
                .map_err(|_| StoreError::TreeType(name.to_string()))?,
            None => {
                let decoded = Arc::new(RwLock::new(decode_all(name, &tree)?));
                opened.insert(name.to_string(), decoded.clone());
                decoded
            }
        };
        Ok(Self {
            name: name.to_string(),
            tree,
            decoded,
            changes,
            value: PhantomData,
        })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        note_read(&self.name, Some(key));
        Ok(self.read().get(key).cloned())
    }

    /// Stores `value` under `key` (not yet flushed).
    pub fn put(&self, key: &str, value: &V) -> Result<()> {
        let raw = serde_json::to_vec(value).map_err(StoreError::Encode)?;
        let mut decoded = self.write();
        self.tree.insert(key, raw)?;
        decoded.insert(key.to_string(), value.clone());
        self.changes.mark_key(&self.name, key);
        Ok(())
    }

    /// Removes `key`, answering what it held.
    pub fn remove(&self, key: &str) -> Result<Option<V>> {
        let mut decoded = self.write();
        self.tree.remove(key)?;
        let removed = decoded.remove(key);
        if removed.is_some() {
            self.changes.mark_key(&self.name, key);
        }
        Ok(removed)
    }

    /// How many entries the tree holds.
    pub fn len(&self) -> usize {
        self.read_all().len()
    }

    /// Whether the tree holds nothing.
    pub fn is_empty(&self) -> bool {
        self.read_all().is_empty()
    }

    /// Every key and value, in key order.
    pub fn entries(&self) -> Result<Vec<(String, V)>> {
        Ok(self
            .read_all()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    /// Every value, in key order.
    pub fn values(&self) -> Result<Vec<V>> {
        Ok(self.read_all().values().cloned().collect())
    }

    /// The decoded values, for a read of the whole tree.
    fn read_all(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, V>> {
        note_read(&self.name, None);
        self.read()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, V>> {
        self.decoded.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, V>> {
        self.decoded.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every value of `tree`, decoded.
fn decode_all<V: DeserializeOwned>(name: &str, tree: &sled::Tree) -> Result<BTreeMap<String, V>> {
    tree.iter()
        .map(|item| {
            let (key, raw) = item?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = serde_json::from_slice(&raw).map_err(|source| StoreError::Decode {
                tree: name.to_string(),
                key: key.clone(),
                source,
            })?;
            Ok((key, value))
        })
        .collect()
}
