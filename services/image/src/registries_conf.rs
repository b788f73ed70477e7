//! containers-registries.conf(5) version 2, as CRI-O users write it: `[[registry]]` entries with
//! `prefix`/`location` rewrites, `insecure`, `blocked` and `mirror`s, plus
//! `unqualified-search-registries` and short-name `[aliases]`. Drop-ins in
//! `registries.conf.d/*.conf` beside the main file override it entry by entry.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::reference::{DOCKER_HUB, ParsedReference, Reference};

/// The parsed configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistriesConf {
    /// Registries tried, in order, for short names. Empty: Docker Hub.
    #[serde(default)]
    pub unqualified_search_registries: Vec<String>,
    /// Per-registry settings.
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryEntry>,
    /// Short name → fully qualified name.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// One `[[registry]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryEntry {
    /// Which references the entry applies to; defaults to `location`.
    #[serde(default)]
    pub prefix: String,
    /// Where matching references are pulled from (replaces the prefix).
    #[serde(default)]
    pub location: String,
    /// Plain HTTP or TLS without verification is acceptable.
    #[serde(default)]
    pub insecure: bool,
    /// Pulls are refused.
    #[serde(default)]
    pub blocked: bool,
    /// Mirrors are only used for pulls by digest.
    #[serde(default)]
    pub mirror_by_digest_only: bool,
    /// Tried in order before `location`.
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<Mirror>,
}

/// One mirror of a registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mirror {
    /// Replaces the prefix like `location` does.
    pub location: String,
    /// Plain HTTP or TLS without verification is acceptable.
    #[serde(default)]
    pub insecure: bool,
    /// `all` (default), `digest-only` or `tag-only`.
    #[serde(default)]
    pub pull_from_mirror: Option<String>,
}

/// One place to try pulling from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The reference rewritten to this place.
    pub reference: Reference,
    /// Plain HTTP or unverified TLS allowed.
    pub insecure: bool,
    /// A mirror (not the primary location).
    pub mirror: bool,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesConfError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// I/O failure.
        source: std::io::Error,
    },
    /// A file does not parse.
    #[error("parsing {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// The reference's registry is blocked.
    #[error("pulling {reference} is blocked by registries.conf (prefix {prefix:?})")]
    Blocked {
        /// The reference.
        reference: String,
        /// The blocking entry.
        prefix: String,
    },
    /// A rewrite produced an unusable reference.
    #[error(
        "registries.conf rewrites {reference} to {rewritten:?}, which is not a valid reference"
    )]
    BadRewrite {
        /// Original.
        reference: String,
        /// Result of the rewrite.
        rewritten: String,
    },
}

/// When each file of a registries.conf was last changed (absent files included), so that an
/// unchanged configuration is not read and parsed again for every image lookup.
type Stamps = Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)>;

/// registries.conf as last read; read again whenever one of its files changes, so edits
/// apply to the next pull or lookup as before, without parsing it on every call.
#[derive(Default)]
pub struct CachedRegistriesConf {
    last: std::sync::Mutex<Option<(Stamps, std::sync::Arc<RegistriesConf>)>>,
}

impl CachedRegistriesConf {
    /// The configuration at `path` as it is on disk now.
    pub fn get(&self, path: &Path) -> Result<std::sync::Arc<RegistriesConf>, RegistriesConfError> {
        let stamps = stamps(path);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read, conf)) = last.as_ref()
            && *read == stamps
        {
            return Ok(conf.clone());
        }
        let conf = std::sync::Arc::new(RegistriesConf::load(path)?);
        *last = Some((stamps, conf.clone()));
        Ok(conf)
    }
}

/// The change time and size of `path`, its drop-in directory and each file in it.
fn stamps(path: &Path) -> Stamps {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()))
    };
    [path.to_path_buf(), path.with_extension("conf.d")]
        .into_iter()
        .chain(drop_ins(path))
        .map(|file| {
            let stamp = stamp(&file);
            (file, stamp)
        })
        .collect()
}

/// The `*.conf` drop-ins beside `path` (in `registries.conf.d`), in the order they apply.
fn drop_ins(path: &Path) -> Vec<PathBuf> {
    let mut drop_ins: Vec<PathBuf> = std::fs::read_dir(path.with_extension("conf.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    drop_ins.sort();
    drop_ins
}

impl RegistriesConf {
    /// Loads `path` (absent: defaults) and its `registries.conf.d/*.conf` drop-ins.
    pub fn load(path: &Path) -> Result<Self, RegistriesConfError> {
        let mut conf = match std::fs::read_to_string(path) {
            Ok(text) => parse(path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => {
                return Err(RegistriesConfError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        for drop_in in drop_ins(path) {
            let text =
                std::fs::read_to_string(&drop_in).map_err(|source| RegistriesConfError::Read {
                    path: drop_in.clone(),
                    source,
                })?;
            conf.merge(parse(&drop_in, &text)?);
        }
        Ok(conf)
    }

    fn merge(&mut self, other: RegistriesConf) {
        if !other.unqualified_search_registries.is_empty() {
            self.unqualified_search_registries = other.unqualified_search_registries;
        }
        for entry in other.registries {
            self.registries
                .retain(|e| e.effective_prefix() != entry.effective_prefix());
            self.registries.push(entry);
        }
        self.aliases.extend(other.aliases);
    }

    /// The fully qualified names a parsed reference stands for, in the order to try them:
    /// itself when qualified; for a short name its alias, else each search registry.
    pub fn candidates(&self, parsed: &ParsedReference) -> Vec<Reference> {
        match parsed {
            ParsedReference::Qualified(reference) => vec![reference.clone()],
            ParsedReference::Short(short) => {
                if let Some(alias) = self.aliases.get(&short.repository)
                    && let Ok(ParsedReference::Qualified(target)) = crate::reference::parse(alias)
                {
                    return vec![Reference {
                        tag: short.tag.clone(),
                        digest: short.digest.clone(),
                        ..target
                    }];
                }
                let registries: Vec<&str> = if self.unqualified_search_registries.is_empty() {
                    vec![DOCKER_HUB]
                } else {
                    self.unqualified_search_registries
                        .iter()
                        .map(String::as_str)
                        .collect()
                };
                registries
                    .into_iter()
                    .map(|r| short.on_registry(r))
                    .collect()
            }
        }
    }

    /// Where to pull `reference` from: enabled mirrors in order, then the primary location.
    pub fn sources(&self, reference: &Reference) -> Result<Vec<PullSource>, RegistriesConfError> {
        let text = reference.to_string();
        let Some(entry) = self.matching_entry(reference, &text) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        let prefix = entry.effective_prefix();
        if entry.blocked {
            return Err(RegistriesConfError::Blocked {
                reference: text,
                prefix: prefix.to_string(),
            });
        }
        let by_digest = reference.digest.is_some();
        let mut sources = Vec::new();
        for mirror in &entry.mirrors {
            let allowed = match mirror.pull_from_mirror.as_deref() {
                Some("digest-only") => by_digest,
                Some("tag-only") => !by_digest,
                _ => by_digest || !entry.mirror_by_digest_only,
            };
            if allowed {
                sources.push(PullSource {
                    reference: rewrite(reference, &text, prefix, &mirror.location)?,
                    insecure: mirror.insecure,
                    mirror: true,
                });
            }
        }
        let location = if entry.location.is_empty() {
            prefix
        } else {
            &entry.location
        };
        sources.push(PullSource {
            reference: rewrite(reference, &text, prefix, location)?,
            insecure: entry.insecure,
            mirror: false,
        });
        Ok(sources)
    }

    /// The entry with the longest prefix matching `reference`.
    fn matching_entry(&self, reference: &Reference, text: &str) -> Option<&RegistryEntry> {
        self.registries
            .iter()
            .filter(|entry| prefix_matches(entry.effective_prefix(), reference, text))
            .max_by_key(|entry| entry.effective_prefix().len())
    }
}

impl RegistryEntry {
    fn effective_prefix(&self) -> &str {
        if self.prefix.is_empty() {
            &self.location
        } else {
            &self.prefix
        }
    }
}

fn parse(path: &Path, text: &str) -> Result<RegistriesConf, RegistriesConfError> {
    toml::from_str(text).map_err(|e| RegistriesConfError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A prefix matches at a component boundary; `*.example.com` matches hosts under example.com.
fn prefix_matches(prefix: &str, reference: &Reference, text: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        return reference.registry.ends_with(&format!(".{domain}"));
    }
    text.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@']))
}

/// Replaces `prefix` by `location` in the reference text. Wildcard prefixes never rewrite.
fn rewrite(
    reference: &Reference,
    text: &str,
    prefix: &str,
    location: &str,
) -> Result<Reference, RegistriesConfError> {
    if prefix.starts_with("*.") || location.is_empty() {
        return Ok(reference.clone());
    }
    let rewritten = format!("{location}{}", &text[prefix.len()..]);
    match crate::reference::parse(&rewritten) {
        Ok(ParsedReference::Qualified(r)) => Ok(r),
        _ => Err(RegistriesConfError::BadRewrite {
            reference: text.to_string(),
            rewritten,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse as parse_ref;

    fn conf(text: &str) -> RegistriesConf {
        parse(Path::new("test.conf"), text).unwrap()
    }

    #[test]
    fn the_cached_configuration_is_read_again_when_a_file_of_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.conf");
        let cached = CachedRegistriesConf::default();
        assert!(
            cached
                .get(&path)
                .unwrap()
                .unqualified_search_registries
                .is_empty()
        );
        std::fs::write(&path, "unqualified-search-registries = [\"a.example\"]\n").unwrap();
        assert_eq!(
            cached.get(&path).unwrap().unqualified_search_registries,
            ["a.example"]
        );
        let drop_ins = dir.path().join("registries.conf.d");
        std::fs::create_dir(&drop_ins).unwrap();
        std::fs::write(
            drop_ins.join("10-b.conf"),
            "unqualified-search-registries = [\"b.example\"]\n",
        )
        .unwrap();
        assert_eq!(
            cached.get(&path).unwrap().unqualified_search_registries,
            ["b.example"]
        );
        let first = cached.get(&path).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &cached.get(&path).unwrap()));
    }

    fn qualified(text: &str) -> Reference {
        match parse_ref(text).unwrap() {
            ParsedReference::Qualified(r) => r,
            ParsedReference::Short(_) => panic!(),
        }
    }

    #[test]
    fn prefix_rewrite_with_mirrors_tried_first() {
        let conf = conf(
            r#"
            [[registry]]
            prefix = "registry.k8s.io/e2e-test-images"
            location = "127.0.0.1:5000/e2e"
            insecure = true
            mirror = [{ location = "127.0.0.1:6000/mirror", insecure = true }]
            "#,
        );
        let sources = conf
            .sources(&qualified("registry.k8s.io/e2e-test-images/busybox:1.29"))
            .unwrap();
        let names: Vec<String> = sources.iter().map(|s| s.reference.to_string()).collect();
        assert_eq!(
            names,
            [
                "127.0.0.1:6000/mirror/busybox:1.29",
                "127.0.0.1:5000/e2e/busybox:1.29"
            ]
        );
        assert!(sources[0].mirror && sources.iter().all(|s| s.insecure));
    }

    #[test]
    fn prefixes_match_whole_components_and_the_longest_wins() {
        let conf = conf(
            r#"
            [[registry]]
            prefix = "example.com"
            location = "a.local"
            [[registry]]
            prefix = "example.com/team"
            location = "b.local/t"
            "#,
        );
        let source = |r: &str| {
            conf.sources(&qualified(r))
                .unwrap()
                .pop()
                .unwrap()
                .reference
                .to_string()
        };
        assert_eq!(source("example.com/team/app:1"), "b.local/t/app:1");
        assert_eq!(
            source("example.com/teamwork/app:1"),
            "a.local/teamwork/app:1"
        );
        assert_eq!(source("example.community/app:1"), "example.community/app:1");
    }

    #[test]
    fn blocked_registries_are_refused() {
        let conf = conf("[[registry]]\nlocation = \"evil.example\"\nblocked = true\n");
        let err = conf.sources(&qualified("evil.example/app:1")).unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
    }

    #[test]
    fn digest_only_mirrors_are_skipped_for_tags() {
        let conf = conf(
            r#"
            [[registry]]
            location = "example.com"
            [[registry.mirror]]
            location = "mirror.local"
            pull-from-mirror = "digest-only"
            "#,
        );
        assert_eq!(
            conf.sources(&qualified("example.com/app:1")).unwrap().len(),
            1
        );
        let digest = format!("example.com/app@sha256:{}", "a".repeat(64));
        assert_eq!(conf.sources(&qualified(&digest)).unwrap().len(), 2);
    }

    #[test]
    fn short_names_use_search_registries_then_aliases() {
        let conf = conf(
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\n[aliases]\n\"pause\" = \"registry.k8s.io/pause\"\n",
        );
        let short = parse_ref("busybox:1").unwrap();
        let names: Vec<String> = conf
            .candidates(&short)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["quay.io/busybox:1", "docker.io/library/busybox:1"]);
        let names: Vec<String> = conf
            .candidates(&parse_ref("pause:3.9").unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["registry.k8s.io/pause:3.9"]);
        let default = RegistriesConf::default();
        let names: Vec<String> = default
            .candidates(&short)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["docker.io/library/busybox:1"]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;
        use crate::reference;

        proptest! {
            #[test]
            fn any_text_loads_or_is_refused(text in ".{0,200}") {
                let _ = parse(Path::new("registries.conf"), &text);
            }

            #[test]
            fn any_rewrite_gives_sources_or_an_error(
                prefix in "[a-z.*]{0,12}(/[a-z]{1,6})?",
                location in "[a-z.:0-9]{0,12}(/[a-z]{1,6})?",
                blocked in any::<bool>(),
                name in "[a-z]{1,8}(/[a-z]{1,8})?(:[a-z0-9]{1,6})?",
            ) {
                let text = format!(
                    "unqualified-search-registries = [\"a.example\", \"{location}\"]\n\
                     [[registry]]\nprefix = \"{prefix}\"\nlocation = \"{location}\"\nblocked = {blocked}\n"
                );
                let Ok(conf) = parse(Path::new("registries.conf"), &text) else {
                    return Ok(());
                };
                if let Ok(parsed) = reference::parse(&name) {
                    for candidate in conf.candidates(&parsed) {
                        let _ = conf.sources(&candidate);
                    }
                }
            }
        }
    }
}
