use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

use crate::{Result, StoreError};

/// A sled tree whose keys are strings and whose values are `V` stored as JSON.
#[derive(Clone, Debug)]
pub struct Tree<V> {
    name: String,
    tree: sled::Tree,
    value: PhantomData<fn() -> V>,
}

impl<V: Serialize + DeserializeOwned> Tree<V> {
    pub(crate) fn new(name: &str, tree: sled::Tree) -> Self {
        Self {
            name: name.to_string(),
            tree,
            value: PhantomData,
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        self.tree
            .get(key)?
            .map(|raw| self.decode(key, &raw))
            .transpose()
    }

    /// Stores `value` under `key` (not yet flushed).
    pub fn put(&self, key: &str, value: &V) -> Result<()> {
        let raw = serde_json::to_vec(value).map_err(StoreError::Encode)?;
        self.tree.insert(key, raw)?;
        Ok(())
    }

    /// Removes `key`, answering what it held.
    pub fn remove(&self, key: &str) -> Result<Option<V>> {
        self.tree
            .remove(key)?
            .map(|raw| self.decode(key, &raw))
            .transpose()
    }

    /// How many entries the tree holds (a scan: for status, not hot paths).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree holds nothing.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Every key and value, in key order.
    pub fn entries(&self) -> Result<Vec<(String, V)>> {
        self.tree
            .iter()
            .map(|item| {
                let (key, raw) = item?;
                let key = String::from_utf8_lossy(&key).into_owned();
                let value = self.decode(&key, &raw)?;
                Ok((key, value))
            })
            .collect()
    }

    /// Every value, in key order.
    pub fn values(&self) -> Result<Vec<V>> {
        Ok(self.entries()?.into_iter().map(|(_, v)| v).collect())
    }

    fn decode(&self, key: &str, raw: &[u8]) -> Result<V> {
        serde_json::from_slice(raw).map_err(|source| StoreError::Decode {
            tree: self.name.clone(),
            key: key.to_string(),
            source,
        })
    }
}
