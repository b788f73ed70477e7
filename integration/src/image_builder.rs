//! Test images built in memory from Debian's busybox-static and pushed to a test registry as
//! OCI or Docker v2 schema 2 manifests, single-platform or as an index.

use std::io::Write;

use http::HeaderValue;
use oci_client::{
    Client, Reference, RegistryOperation,
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Applets linked to busybox in every test image.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "env", "httpd", "wget", "touch",
    "mkdir", "rm", "printf", "grep", "unshare", "head",
];

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// One layer under construction: a tar with chosen paths, owners and modes.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        Self { tar }
    }

    fn entry(
        mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
        owner: (u64, u64),
    ) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        self.tar.append_data(&mut header, path, data).unwrap();
        self
    }

    /// A regular file.
    pub fn file(self, path: &str, content: &[u8], mode: u32) -> Self {
        self.entry(path, tar::EntryType::Regular, mode, None, content, (0, 0))
    }

    /// A regular file with an owner.
    pub fn owned_file(self, path: &str, content: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        self.entry(
            path,
            tar::EntryType::Regular,
            mode,
            None,
            content,
            (uid, gid),
        )
    }

    /// A regular file carrying an extended attribute (as a PAX `SCHILY.xattr.` record).
    pub fn file_with_xattr(mut self, path: &str, content: &[u8], xattr: (&str, &[u8])) -> Self {
        let mut record = format!(" SCHILY.xattr.{}=", xattr.0).into_bytes();
        record.extend_from_slice(xattr.1);
        record.push(b'\n');
        // The length prefix counts itself.
        let mut length = record.len() + 1;
        while format!("{length}").len() + record.len() != length {
            length += 1;
        }
        let mut pax = format!("{length}").into_bytes();
        pax.extend_from_slice(&record);
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(pax.len() as u64);
        self.tar
            .append_data(&mut header, format!("PaxHeaders/{path}"), &pax[..])
            .unwrap();
        self.file(path, content, 0o644)
    }

    /// A directory.
    pub fn dir(self, path: &str) -> Self {
        self.entry(path, tar::EntryType::Directory, 0o755, None, b"", (0, 0))
    }

    /// A symbolic link.
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(
            path,
            tar::EntryType::Symlink,
            0o777,
            Some(target),
            b"",
            (0, 0),
        )
    }

    /// A hard link to an earlier entry.
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Link, 0o644, Some(target), b"", (0, 0))
    }

    /// A character device.
    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Char);
        header.set_mode(0o666);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(0);
        self.tar.append_data(&mut header, path, &b""[..]).unwrap();
        self
    }

    /// An OCI whiteout deleting `path` of the layers below.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, b"", 0o644)
    }

    /// An OCI opaque marker hiding everything of `dir` in the layers below.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    /// An entry whose raw name is written as given (to build hostile layers).
    pub fn raw_entry(
        mut self,
        raw_name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..raw_name.len()].copy_from_slice(raw_name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.tar.append(&header, data).unwrap();
        self
    }

    /// busybox-static with its applet links, `/etc/passwd` and `/etc/group`.
    pub fn busybox_base(self) -> Self {
        let busybox = std::fs::read("/bin/busybox")
            .expect("reading /bin/busybox (Debian package busybox-static)");
        let mut layer = self.dir("bin").file("bin/busybox", &busybox, 0o755);
        for applet in APPLETS {
            layer = layer.symlink(&format!("bin/{applet}"), "busybox");
        }
        layer
            .dir("etc")
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n", 0o644)
            .file("etc/group", b"root:x:0:\nwww-data:x:33:\ntester:x:1000:\nextra:x:50000:tester\n", 0o644)
            .dir("tmp")
    }

    /// The finished layer.
    pub fn build(self) -> Layer {
        Layer {
            tar: self.tar.into_inner().unwrap(),
            compression: Compression::Gzip,
            gzipped: Default::default(),
        }
    }
}

/// How a layer blob is stored in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `tar+gzip`.
    Gzip,
    /// Plain `tar`.
    None,
}

/// A finished layer.
#[derive(Clone)]
pub struct Layer {
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// How the blob is stored.
    pub compression: Compression,
    /// The gzipped blob, made once for every clone of the layer.
    gzipped: std::sync::Arc<std::sync::OnceLock<Vec<u8>>>,
}

impl Layer {
    /// The same layer stored uncompressed.
    pub fn uncompressed(mut self) -> Self {
        self.compression = Compression::None;
        self
    }

    /// The blob as pushed.
    pub fn blob(&self) -> Vec<u8> {
        match self.compression {
            Compression::None => self.tar.clone(),
            Compression::Gzip => self
                .gzipped
                .get_or_init(|| {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    encoder.write_all(&self.tar).unwrap();
                    encoder.finish().unwrap()
                })
                .clone(),
        }
    }

    /// Digest of the uncompressed tar.
    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }
}

/// Manifest flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OCI image manifest and index.
    Oci,
    /// Docker v2 schema 2 manifest and manifest list.
    Docker,
}

/// An image to push.
#[derive(Clone)]
pub struct TestImage {
    /// Layers, base first.
    pub layers: Vec<Layer>,
    /// The `config` section of the image config (User, Env, Entrypoint, Cmd, …).
    pub config: Value,
    /// Architecture in the config and index.
    pub architecture: String,
    /// Manifest flavour.
    pub format: Format,
}

impl TestImage {
    /// A one-layer busybox image for this node's architecture (built once per test process).
    pub fn busybox() -> Self {
        static BUSYBOX: std::sync::OnceLock<TestImage> = std::sync::OnceLock::new();
        BUSYBOX
            .get_or_init(|| Self::with_layers(vec![LayerBuilder::new().busybox_base().build()]))
            .clone()
    }

    /// The busybox image whose entrypoint sleeps forever: a pause image for pod infra
    /// processes.
    pub fn pause() -> Self {
        let mut pause = Self::busybox();
        pause.config = json!({"Entrypoint": ["/bin/sleep", "2147483647"]});
        pause
    }

    /// An image of `layers` with a `sh` command, for this node's architecture.
    pub fn with_layers(layers: Vec<Layer>) -> Self {
        Self {
            layers,
            config: json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]}),
            architecture: node_architecture().to_string(),
            format: Format::Oci,
        }
    }

    /// The config blob.
    pub fn config_blob(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": self.architecture,
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": self.layers.iter().map(Layer::diff_id).collect::<Vec<_>>()},
        }))
        .unwrap()
    }
}

/// This node's architecture in OCI terms.
pub fn node_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What a push produced.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// Digest of the pushed manifest (or index).
    pub digest: String,
    /// Image id: the config digest (of the node's platform, for an index).
    pub config_digest: String,
    /// Layer blob digests (of the node's platform, for an index).
    pub layer_digests: Vec<String>,
    /// Config size plus compressed layer sizes.
    pub size: u64,
}

/// Pushes images to a test registry.
pub struct Pusher {
    client: Client,
    registry: String,
    auth: RegistryAuth,
}

impl Pusher {
    /// A pusher for the registry at `address` (plain HTTP), with optional credentials.
    pub fn new(address: &str, credentials: Option<&(String, String)>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            client: Client::new(ClientConfig {
                protocol: ClientProtocol::Http,
                ..Default::default()
            }),
            registry: address.to_string(),
            auth: credentials.map_or(RegistryAuth::Anonymous, |(u, p)| {
                RegistryAuth::Basic(u.clone(), p.clone())
            }),
        }
    }

    fn reference(&self, repository: &str, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            repository.to_string(),
            tag.to_string(),
        )
    }

    /// Pushes `image` as `repository:tag`.
    pub async fn push(&self, repository: &str, tag: &str, image: &TestImage) -> Pushed {
        let reference = self.reference(repository, tag);
        let (manifest, pushed) = self.push_blobs(&reference, image).await;
        let media_type = manifest_media_type(image.format);
        self.client
            .push_manifest_raw(
                &reference,
                manifest.clone(),
                HeaderValue::from_static(media_type),
            )
            .await
            .expect("pushing manifest");
        Pushed {
            digest: sha256(&manifest),
            ..pushed
        }
    }

    /// Pushes an index (or manifest list) of `platforms` as `repository:tag`; answers the
    /// index digest with the config and layers of the entry for this node.
    pub async fn push_index(&self, repository: &str, tag: &str, platforms: &[TestImage]) -> Pushed {
        let reference = self.reference(repository, tag);
        let mut entries = Vec::new();
        let mut native = None;
        for image in platforms {
            let (manifest, pushed) = self.push_blobs(&reference, image).await;
            let digest = sha256(&manifest);
            let by_digest = Reference::with_digest(
                self.registry.clone(),
                repository.to_string(),
                digest.clone(),
            );
            let media_type = manifest_media_type(image.format);
            self.client
                .push_manifest_raw(
                    &by_digest,
                    manifest.clone(),
                    HeaderValue::from_static(media_type),
                )
                .await
                .expect("pushing platform manifest");
            entries.push(json!({
                "mediaType": media_type,
                "digest": digest,
                "size": manifest.len(),
                "platform": {"architecture": image.architecture, "os": "linux"},
            }));
            if image.architecture == node_architecture() {
                native = Some(pushed);
            }
        }
        let format = platforms[0].format;
        let index_type = match format {
            Format::Oci => "application/vnd.oci.image.index.v1+json",
            Format::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        };
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}),
        )
        .unwrap();
        self.client
            .push_manifest_raw(
                &reference,
                index.clone(),
                HeaderValue::from_static(index_type),
            )
            .await
            .expect("pushing index");
        Pushed {
            digest: sha256(&index),
            ..native.expect("an index entry for this node's architecture")
        }
    }

    async fn push_blobs(&self, reference: &Reference, image: &TestImage) -> (Vec<u8>, Pushed) {
        if !matches!(self.auth, RegistryAuth::Anonymous) {
            self.client
                .auth(reference, &self.auth, RegistryOperation::Push)
                .await
                .expect("authenticating to push");
        }
        let (config_type, layer_type, layer_plain_type) = match image.format {
            Format::Oci => (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.layer.v1.tar",
            ),
            Format::Docker => (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.diff.tar",
            ),
        };
        let config = image.config_blob();
        let config_digest = sha256(&config);
        self.client
            .push_blob(reference, config.clone(), &config_digest)
            .await
            .expect("pushing config");
        let mut layers = Vec::new();
        let mut layer_digests = Vec::new();
        let mut size = config.len() as u64;
        for layer in &image.layers {
            let blob = layer.blob();
            let digest = sha256(&blob);
            self.client
                .push_blob(reference, blob.clone(), &digest)
                .await
                .expect("pushing layer");
            let media_type = if layer.compression == Compression::Gzip {
                layer_type
            } else {
                layer_plain_type
            };
            layers.push(json!({"mediaType": media_type, "digest": digest, "size": blob.len()}));
            layer_digests.push(digest);
            size += blob.len() as u64;
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest_media_type(image.format),
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        (
            manifest,
            Pushed {
                digest: String::new(),
                config_digest,
                layer_digests,
                size,
            },
        )
    }
}

fn manifest_media_type(format: Format) -> &'static str {
    match format {
        Format::Oci => "application/vnd.oci.image.manifest.v1+json",
        Format::Docker => "application/vnd.docker.distribution.manifest.v2+json",
    }
}
