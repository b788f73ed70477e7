//! Image records and the name index, in crimson-image's database.

use std::time::{SystemTime, UNIX_EPOCH};

use crimson_api::image::v1::Image;
use crimson_rpc::ObjectCount;
use crimson_store::{Store, Tree};
use serde::{Deserialize, Serialize};

use crate::Result;

const IMAGES_TREE: &str = "images";
const NAMES_TREE: &str = "names";
/// Database schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One image, by id (`sha256:<config digest>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    /// The raw image config (JSON text).
    pub config_json: String,
    pub manifest_digest: String,
    /// Layer chain ids, base first.
    pub chain_ids: Vec<String>,
    pub pulled_at_unix: i64,
}

impl ImageRecord {
    /// The API view.
    pub fn to_proto(&self) -> Image {
        Image {
            id: self.id.clone(),
            repo_tags: self.repo_tags.clone(),
            repo_digests: self.repo_digests.clone(),
            size: self.size,
            config_json: self.config_json.clone().into_bytes(),
            manifest_digest: self.manifest_digest.clone(),
            chain_ids: self.chain_ids.clone(),
            pulled_at_unix: self.pulled_at_unix,
        }
    }
}

/// What a finished pull contributes to the records.
pub struct PulledImage {
    pub id: String,
    pub size: u64,
    pub config_json: String,
    pub manifest_digest: String,
    pub chain_ids: Vec<String>,
    /// `name:tag`, when pulled by tag.
    pub tag_name: Option<String>,
    /// `name@digest` of what the reference resolved to.
    pub digest_name: String,
}

/// The image and name trees, with the lock that keeps them consistent.
pub struct ImageRecords {
    store: Store,
    images: Tree<ImageRecord>,
    names: Tree<String>,
    lock: tokio::sync::Mutex<()>,
}

impl ImageRecords {
    /// How many images are recorded, and their pulled size.
    pub fn object_count(&self) -> ObjectCount {
        let images = self.images.values().unwrap_or_default();
        ObjectCount::of("images", images.len() as u64)
            .with_bytes(images.iter().map(|image| image.size).sum())
    }

    /// The count of the database's writes.
    pub fn changes(&self) -> &crimson_store::Changes {
        self.store.changes()
    }

    /// Opens the trees in `store`.
    pub fn open(store: Store) -> Result<Self> {
        Ok(Self {
            images: store.tree(IMAGES_TREE)?,
            names: store.tree(NAMES_TREE)?,
            store,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The image with `id`.
    pub fn get(&self, id: &str) -> Result<Option<ImageRecord>> {
        Ok(self.images.get(id)?)
    }

    /// The id `name` (a tag or digest reference) points at.
    pub fn id_of_name(&self, name: &str) -> Result<Option<String>> {
        Ok(self.names.get(name)?)
    }

    /// Every image.
    pub fn all(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.images.values()?)
    }

    /// Records a pull: creates or updates the image and moves its names to it (a tag that
    /// pointed at another image leaves that one). Flushed before returning.
    pub async fn commit_pull(&self, pulled: PulledImage) -> Result<ImageRecord> {
        let _guard = self.lock.lock().await;
        let mut record = self.images.get(&pulled.id)?.unwrap_or_else(|| ImageRecord {
            id: pulled.id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            size: pulled.size,
            config_json: pulled.config_json.clone(),
            manifest_digest: pulled.manifest_digest.clone(),
            chain_ids: pulled.chain_ids.clone(),
            pulled_at_unix: 0,
        });
        record.pulled_at_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Some(tag) = &pulled.tag_name {
            self.take_name_from_other_image(tag, &pulled.id)?;
            push_unique(&mut record.repo_tags, tag);
            self.names.put(tag, &pulled.id)?;
        }
        push_unique(&mut record.repo_digests, &pulled.digest_name);
        self.names.put(&pulled.digest_name, &pulled.id)?;
        self.images.put(&pulled.id, &record)?;
        self.store.flush().await?;
        Ok(record)
    }

    /// Removes the image `id` and all its names. Answers the removed record, if any.
    pub async fn remove(&self, id: &str) -> Result<Option<ImageRecord>> {
        let _guard = self.lock.lock().await;
        let Some(record) = self.images.remove(id)? else {
            return Ok(None);
        };
        for name in record.repo_tags.iter().chain(&record.repo_digests) {
            if self.names.get(name)?.as_deref() == Some(id) {
                self.names.remove(name)?;
            }
        }
        self.store.flush().await?;
        Ok(Some(record))
    }

    fn take_name_from_other_image(&self, name: &str, new_id: &str) -> Result<()> {
        if let Some(old_id) = self.names.get(name)?
            && old_id != new_id
            && let Some(mut old) = self.images.get(&old_id)?
        {
            old.repo_tags.retain(|t| t != name);
            self.images.put(&old_id, &old)?;
        }
        Ok(())
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(id: &str, tag: &str) -> PulledImage {
        PulledImage {
            id: id.into(),
            size: 1,
            config_json: "{}".into(),
            manifest_digest: format!("m-{id}"),
            chain_ids: vec![],
            tag_name: Some(tag.into()),
            digest_name: format!("r@{id}"),
        }
    }

    #[tokio::test]
    async fn a_tag_moves_to_the_newly_pulled_image_and_removal_drops_names() {
        let dir = tempfile::tempdir().unwrap();
        let records =
            ImageRecords::open(Store::open(dir.path(), SCHEMA_VERSION, &[]).unwrap()).unwrap();
        records.commit_pull(pulled("a", "r:latest")).await.unwrap();
        records.commit_pull(pulled("b", "r:latest")).await.unwrap();
        assert!(records.get("a").unwrap().unwrap().repo_tags.is_empty());
        assert_eq!(
            records.id_of_name("r:latest").unwrap().as_deref(),
            Some("b")
        );
        records.remove("b").await.unwrap();
        assert_eq!(records.id_of_name("r:latest").unwrap(), None);
        assert_eq!(records.id_of_name("r@a").unwrap().as_deref(), Some("a"));
    }
}
