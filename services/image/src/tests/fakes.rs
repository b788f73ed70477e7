//! Recording fakes of crimson-image's side effects, and a daemon state built on them.
//!
//! [`FakeRegistries`] serves manifests, indexes and blobs from memory for any registry name
//! (one it is told is unreachable fails as a dead host would); [`FakeStore`] keeps layers and
//! their owners as crimson-storage does, computing chain ids the same way. Both log every call
//! in one shared log.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use bytes::Bytes;
use crimson_api::storage::v1::{PutLayerChunk, put_layer_chunk::Part};
use crimson_config::Config;
use futures::{StreamExt, future::BoxFuture, stream::BoxStream};
use serde_json::json;

use crate::{
    Result,
    auth::Credential,
    layer_store::LayerStore,
    reference::Reference,
    registries_conf::PullSource,
    registry::{BlobStream, Opened, Registries, RegistryConnection, RegistryFailure, sha256},
    state::{Seams, State},
};

/// One log of every call to the fakes.
#[derive(Debug, Default, Clone)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, call: String) {
        self.lines().push(call);
    }

    fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calls so far that start with `prefix`.
    pub fn calls(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|call| call.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.lines().clear();
    }
}

/// An image as a registry holds it: its blobs and its manifest.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The layer blobs, base first.
    pub layers: Vec<Vec<u8>>,
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
    /// The layers' chain ids, base first.
    pub chain_ids: Vec<String>,
}

impl TestImage {
    /// An image of `layers` (their bytes stand for both the blob and its diff).
    pub fn new(layers: &[&str]) -> Self {
        let layers: Vec<Vec<u8>> = layers.iter().map(|l| l.as_bytes().to_vec()).collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string()
        .into_bytes();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter()
                .map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l))
                .collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes();
        Self {
            chain_ids: chain_ids(&diff_ids),
            layers,
            config,
            manifest,
        }
    }

    /// The image id (its config's digest).
    pub fn id(&self) -> String {
        sha256(&self.config)
    }
}

fn descriptor(media_type: &str, content: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": sha256(content), "size": content.len()})
}

/// The chain id of layer `diff_id` on `parent` (empty: a base layer), as the OCI image spec
/// defines it.
fn chain_id(parent: &str, diff_id: &str) -> String {
    match parent {
        "" => diff_id.to_string(),
        parent => sha256(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// The chain ids of a layer stack, base first.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for diff_id in diff_ids {
        let parent = chain.last().map_or("", String::as_str);
        chain.push(chain_id(parent, diff_id));
    }
    chain
}

/// Registries in memory.
#[derive(Default)]
pub struct FakeRegistries {
    log: Log,
    content: Mutex<Content>,
}

#[derive(Default)]
struct Content {
    /// Manifests by `registry/repository:tag`.
    tags: BTreeMap<String, Vec<u8>>,
    /// Manifests, indexes, configs and layers by digest.
    blobs: BTreeMap<String, Vec<u8>>,
    unreachable: BTreeSet<String>,
}

impl FakeRegistries {
    fn content(&self) -> MutexGuard<'_, Content> {
        self.content.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `image` as `name` (`registry/repository:tag`).
    pub fn push(&self, name: &str, image: &TestImage) {
        self.add_blobs(image);
        self.content()
            .tags
            .insert(name.to_string(), image.manifest.clone());
    }

    /// Serves `image`'s manifest, config and layers by digest only.
    fn add_blobs(&self, image: &TestImage) {
        let mut content = self.content();
        for blob in image.layers.iter().chain([&image.config, &image.manifest]) {
            content.blobs.insert(sha256(blob), blob.clone());
        }
    }

    /// Serves an index of `images` (by platform `os/architecture`) as `name`.
    pub fn push_index(&self, name: &str, images: &[(&str, &TestImage)]) {
        let manifests: Vec<_> = images
            .iter()
            .map(|(platform, image)| {
                let (os, architecture) = platform.split_once('/').unwrap_or_default();
                let mut entry = descriptor(
                    "application/vnd.oci.image.manifest.v1+json",
                    &image.manifest,
                );
                entry["platform"] = json!({"os": os, "architecture": architecture});
                entry
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        })
        .to_string()
        .into_bytes();
        for (_, image) in images {
            self.add_blobs(image);
        }
        let mut content = self.content();
        content.blobs.insert(sha256(&index), index.clone());
        content.tags.insert(name.to_string(), index);
    }

    /// Makes every source on `registry` unreachable.
    pub fn cut_off(&self, registry: &str) {
        self.content().unreachable.insert(registry.to_string());
    }

    fn blob(&self, digest: &str) -> std::result::Result<Vec<u8>, RegistryFailure> {
        self.content()
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| RegistryFailure::NotFound(digest.to_string()))
    }
}

impl Registries for Arc<FakeRegistries> {
    fn open<'a>(
        &'a self,
        source: &'a PullSource,
        credential: Option<&'a Credential>,
    ) -> BoxFuture<'a, std::result::Result<Opened, RegistryFailure>> {
        Box::pin(async move {
            let authenticated = if credential.is_some() {
                " with credentials"
            } else {
                ""
            };
            self.log
                .push(format!("open {}{authenticated}", source.reference));
            if self
                .content()
                .unreachable
                .contains(&source.reference.registry)
            {
                return Err(RegistryFailure::Unreachable(
                    source.reference.registry.clone(),
                ));
            }
            let manifest = match &source.reference.digest {
                Some(digest) => self.blob(digest)?,
                None => self
                    .content()
                    .tags
                    .get(&source.reference.to_string())
                    .cloned()
                    .ok_or_else(|| RegistryFailure::NotFound(source.reference.to_string()))?,
            };
            Ok(Opened {
                digest: sha256(&manifest),
                manifest: Bytes::from(manifest),
                connection: Arc::new(FakeConnection {
                    registries: self.clone(),
                    source: source.reference.clone(),
                }),
            })
        })
    }
}

struct FakeConnection {
    registries: Arc<FakeRegistries>,
    source: Reference,
}

impl RegistryConnection for FakeConnection {
    fn manifest_by_digest<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(Bytes, String), RegistryFailure>> {
        Box::pin(async move {
            self.registries.log.push(format!("manifest {digest}"));
            Ok((
                Bytes::from(self.registries.blob(digest)?),
                digest.to_string(),
            ))
        })
    }

    fn small_blob<'a>(
        &'a self,
        digest: &'a str,
        _size: i64,
    ) -> BoxFuture<'a, std::result::Result<Vec<u8>, RegistryFailure>> {
        Box::pin(async move {
            self.registries.log.push(format!("config {digest}"));
            self.registries.blob(digest)
        })
    }

    fn blob_stream<'a>(
        &'a self,
        digest: &'a str,
    ) -> BoxFuture<'a, std::result::Result<BlobStream, RegistryFailure>> {
        Box::pin(async move {
            self.registries.log.push(format!("layer {digest}"));
            let blob = Bytes::from(self.registries.blob(digest)?);
            let (first, second) = blob.split_at(blob.len() / 2);
            let chunks = vec![
                Ok(Bytes::copy_from_slice(first)),
                Ok(Bytes::copy_from_slice(second)),
            ];
            Ok(futures::stream::iter(chunks).boxed())
        })
    }

    fn source(&self) -> &Reference {
        &self.source
    }
}

/// crimson-storage in memory.
#[derive(Default)]
pub struct FakeStore {
    log: Log,
    layers: Mutex<Layers>,
}

#[derive(Default)]
struct Layers {
    /// Chain id → its bytes.
    stored: BTreeMap<String, Vec<u8>>,
    owners: BTreeMap<String, BTreeSet<String>>,
    /// How long a put takes (to overlap concurrent pulls).
    put_delay: Duration,
}

impl FakeStore {
    fn layers(&self) -> MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chain ids `owner` holds.
    pub fn held_by(&self, owner: &str) -> BTreeSet<String> {
        self.layers().owners.get(owner).cloned().unwrap_or_default()
    }

    /// Lets `owner` hold layer `chain_id` (as a pull whose record was lost would).
    pub fn hold(&self, owner: &str, chain_id: &str) {
        let mut layers = self.layers();
        layers.stored.insert(chain_id.to_string(), Vec::new());
        layers
            .owners
            .entry(owner.to_string())
            .or_default()
            .insert(chain_id.to_string());
    }

    /// Makes every put take `delay`.
    pub fn slow_puts(&self, delay: Duration) {
        self.layers().put_delay = delay;
    }
}

impl LayerStore for Arc<FakeStore> {
    fn claim_layers<'a>(
        &'a self,
        owner: &'a str,
        chain_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            self.log
                .push(format!("claim {} for {owner}", chain_ids.len()));
            let mut layers = self.layers();
            let (present, missing): (Vec<_>, Vec<_>) = chain_ids
                .iter()
                .cloned()
                .partition(|chain_id| layers.stored.contains_key(chain_id));
            layers
                .owners
                .entry(owner.to_string())
                .or_default()
                .extend(present);
            Ok(missing)
        })
    }

    fn put_layer(&self, chunks: BoxStream<'static, PutLayerChunk>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let parts: Vec<Part> = chunks.filter_map(|c| async { c.part }).collect().await;
            let Some((Part::Header(header), data)) = parts.split_first() else {
                panic!("a put begins with its header");
            };
            let bytes: Vec<u8> = data
                .iter()
                .flat_map(|part| match part {
                    Part::Data(bytes) => bytes.to_vec(),
                    Part::Header(_) => panic!("one header per put"),
                })
                .collect();
            let delay = self.layers().put_delay;
            tokio::time::sleep(delay).await;
            let chain_id = chain_id(&header.parent_chain_id, &header.diff_id);
            self.log
                .push(format!("put {chain_id} for {}", header.owner));
            let mut layers = self.layers();
            layers.stored.insert(chain_id.clone(), bytes);
            layers
                .owners
                .entry(header.owner.clone())
                .or_default()
                .insert(chain_id);
            Ok(())
        })
    }

    fn release_owner<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.log.push(format!("release {owner}"));
            self.layers().owners.remove(owner);
            Ok(())
        })
    }

    fn list_owners(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move { Ok(self.layers().owners.keys().cloned().collect()) })
    }
}

/// The registries.conf of the tests: `mirrored.test` has a mirror on `mirror.test`.
const REGISTRIES_CONF: &str = r#"
[[registry]]
location = "registry.test"
insecure = true

[[registry]]
location = "mirrored.test"
[[registry.mirror]]
location = "mirror.test"
"#;

/// A daemon state on the fakes, in a directory of its own.
pub struct TestImages {
    /// The daemon's state, as its operations take it.
    pub state: Arc<State>,
    /// The registries it pulls from.
    pub registries: Arc<FakeRegistries>,
    /// crimson-storage.
    pub store: Arc<FakeStore>,
    /// Every call to either.
    pub log: Log,
    _dir: tempfile::TempDir,
}

impl TestImages {
    /// A fresh daemon state with no image.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = Log::default();
        let registries = Arc::new(FakeRegistries {
            log: log.clone(),
            ..Default::default()
        });
        let store = Arc::new(FakeStore {
            log: log.clone(),
            ..Default::default()
        });
        let state = Arc::new(Self::open(dir.path(), &registries, &store));
        Self {
            state,
            registries,
            store,
            log,
            _dir: dir,
        }
    }

    fn open(dir: &Path, registries: &Arc<FakeRegistries>, store: &Arc<FakeStore>) -> State {
        let mut config = Config {
            state_root: dir.join("state"),
            run_root: dir.join("run"),
            ..Config::default()
        };
        config.image.registries_conf = dir.join("registries.conf");
        config.image.global_auth_file = None;
        std::fs::write(&config.image.registries_conf, REGISTRIES_CONF).expect("registries.conf");
        let seams = Seams {
            storage: Arc::new(store.clone()),
            registries: Arc::new(registries.clone()),
        };
        State::open(&config, seams).expect("the state opens")
    }
}
