//! The parts of manifests, indexes and image configs crimson-image reads. Docker v2 schema 2
//! and OCI documents share these shapes.

use serde::Deserialize;

/// Media types asked for when fetching a manifest.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: i64,
    /// Platform, in index entries.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8` for arm64.
    #[serde(default)]
    pub variant: Option<String>,
}

/// A fetched manifest document, classified.
#[derive(Debug)]
pub enum Document {
    /// A single-platform image manifest.
    Manifest(ImageManifest),
    /// An image index / manifest list.
    Index(Vec<Descriptor>),
}

/// A single-platform image manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    /// The image config blob.
    pub config: Descriptor,
    /// Layer blobs, base first.
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
}

/// Why a document cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of a known shape.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// Docker schema 1 and other versions.
    #[error("unsupported manifest schema version {0} (only version 2 / OCI is supported)")]
    UnsupportedSchema(i64),
    /// The index lists nothing for this node.
    #[error("the image index has no manifest for {0}")]
    NoMatchingPlatform(String),
}

/// Classifies `raw` as a manifest or an index.
pub fn parse_document(raw: &[u8]) -> Result<Document, ManifestError> {
    let probe: Probe =
        serde_json::from_slice(raw).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    match probe.schema_version {
        Some(2) | None => {}
        Some(other) => return Err(ManifestError::UnsupportedSchema(other)),
    }
    match (probe.manifests, probe.config, probe.layers) {
        (Some(manifests), _, _) => Ok(Document::Index(manifests)),
        (None, Some(config), Some(layers)) => {
            Ok(Document::Manifest(ImageManifest { config, layers }))
        }
        _ => Err(ManifestError::Malformed(
            "neither an image manifest nor an index".into(),
        )),
    }
}

/// The platform of this node, in OCI terms: (os, architecture, variant).
pub fn node_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    ("linux", arch, variant)
}

/// The index entry for `platform`: matching os and architecture, preferring a matching variant.
pub fn choose_platform<'a>(
    entries: &'a [Descriptor],
    (os, arch, variant): (&str, &str, Option<&str>),
) -> Result<&'a Descriptor, ManifestError> {
    let candidates: Vec<&Descriptor> = entries
        .iter()
        .filter(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
        .collect();
    candidates
        .iter()
        .find(|e| e.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant)
        .or(candidates.first())
        .copied()
        .ok_or_else(|| ManifestError::NoMatchingPlatform(format!("{os}/{arch}")))
}

/// The fields of an image config crimson-image needs.
#[derive(Debug, Deserialize)]
pub struct ImageConfig {
    /// Layer digests of the uncompressed tars.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Deserialize)]
pub struct RootFs {
    /// One per layer, base first.
    pub diff_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn picks_the_nodes_platform_from_an_index() {
        let entries = [
            entry("linux", "arm", Some("v6"), "a"),
            entry("linux", "arm", Some("v7"), "b"),
            entry("windows", "amd64", None, "c"),
            entry("linux", "amd64", None, "d"),
        ];
        assert_eq!(
            choose_platform(&entries, ("linux", "amd64", None))
                .unwrap()
                .digest,
            "d"
        );
        assert_eq!(
            choose_platform(&entries, ("linux", "arm", Some("v7")))
                .unwrap()
                .digest,
            "b"
        );
        assert!(choose_platform(&entries, ("linux", "s390x", None)).is_err());
    }

    #[test]
    fn classifies_documents() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse_document(index).unwrap(), Document::Index(_)));
        let manifest =
            br#"{"schemaVersion":2,"config":{"digest":"sha256:a","size":1},"layers":[]}"#;
        assert!(matches!(
            parse_document(manifest).unwrap(),
            Document::Manifest(_)
        ));
        assert!(matches!(
            parse_document(br#"{"schemaVersion":1}"#),
            Err(ManifestError::UnsupportedSchema(1))
        ));
    }
}
