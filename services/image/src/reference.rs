//! Image references: `[host[:port]/]namespace/.../repo[:tag][@digest]`, validated and
//! normalised the way Docker and containers/image do (`busybox` → `docker.io/library/busybox`).

use std::fmt;

/// The registry short names go to when no search registries are configured.
pub const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &[&str] = &["index.docker.io", "registry-1.docker.io"];
const DEFAULT_TAG: &str = "latest";

/// A fully qualified reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port ("docker.io", "127.0.0.1:5000").
    pub registry: String,
    /// Repository path ("library/busybox").
    pub repository: String,
    /// Tag, when the reference has one (or none and no digest: "latest").
    pub tag: Option<String>,
    /// `sha256:<hex>` digest, when the reference has one.
    pub digest: Option<String>,
}

/// A reference as written: qualified by a registry or a short name to be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedReference {
    /// Has a registry.
    Qualified(Reference),
    /// No registry: `busybox`, `library/busybox:1.36`. Registry left empty.
    Short(Reference),
}

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Reference {
    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag`, if tagged.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|tag| format!("{}:{tag}", self.name()))
    }

    /// `registry/repository@digest` for `digest`.
    pub fn digested_name(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }

    /// The same repository on another registry (short-name resolution), normalising the Docker
    /// Hub's implicit `library/` namespace.
    pub fn on_registry(&self, registry: &str) -> Reference {
        let registry = normalize_registry(registry);
        let repository = if registry == DOCKER_HUB && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        };
        Reference {
            registry,
            repository,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses `input`. A reference with neither tag nor digest gets the tag `latest`.
pub fn parse(input: &str) -> Result<ParsedReference, ReferenceError> {
    let fail = |reason| ReferenceError {
        reference: input.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(fail("empty"));
    }
    if input.len() > 4096 {
        return Err(fail("too long"));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            validate_digest(digest).map_err(fail)?;
            (rest, Some(digest.to_string()))
        }
        None => (input, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(rest[last_slash + i + 1..].to_string()),
        ),
        None => (rest, None),
    };
    if let Some(tag) = &tag {
        validate_tag(tag).map_err(fail)?;
    }
    let tag = tag.or_else(|| digest.is_none().then(|| DEFAULT_TAG.to_string()));
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if looks_like_registry(first) => (Some(first), rest),
        _ => (None, name),
    };
    validate_repository(repository).map_err(fail)?;
    let reference = Reference {
        registry: String::new(),
        repository: repository.to_string(),
        tag,
        digest,
    };
    Ok(match registry {
        Some(registry) => {
            validate_registry(registry).map_err(fail)?;
            ParsedReference::Qualified(reference.on_registry(registry))
        }
        None => ParsedReference::Short(reference),
    })
}

/// Docker's rule: the first component names a registry if it has a dot or a port, or is
/// `localhost`.
fn looks_like_registry(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn normalize_registry(registry: &str) -> String {
    if LEGACY_DOCKER_HUB.contains(&registry) {
        DOCKER_HUB.to_string()
    } else {
        registry.to_string()
    }
}

fn validate_registry(registry: &str) -> Result<(), &'static str> {
    let ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then_some(()).ok_or("malformed registry host")
}

/// Repository components: lowercase alphanumerics separated by `.`, `_`, `__` or dashes.
fn validate_repository(repository: &str) -> Result<(), &'static str> {
    if repository.is_empty() || repository.len() > 255 {
        return Err("repository name must have 1 to 255 characters");
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
            return Err(
                "repository components must start and end with a lowercase letter or digit",
            );
        }
        if !bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(
                "repository names may only hold lowercase letters, digits, '.', '_', '-' and '/'",
            );
        }
        if component.contains("..")
            || component.contains("___")
            || component.contains("._")
            || component.contains("_.")
        {
            return Err("malformed separator in repository name");
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then_some(()).ok_or("malformed tag")
}

fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    ok.then_some(())
        .ok_or("digest must be sha256:<64 lowercase hex digits>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qualified(input: &str) -> Reference {
        match parse(input).unwrap() {
            ParsedReference::Qualified(r) => r,
            ParsedReference::Short(r) => panic!("{input} parsed as short name {r:?}"),
        }
    }

    const DIGEST: &str = "sha256:817a12c32a39bbe394944ba49de563e085f1d3c5266eb8e9723256bc4448680e";

    #[test]
    fn qualified_references_keep_registry_port_and_nested_namespaces() {
        let r = qualified("127.0.0.1:5000/team/sub/app:v1.2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "team/sub/app")
        );
        assert_eq!(r.tag.as_deref(), Some("v1.2"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/sub/app:v1.2");
        let r = qualified("localhost/app");
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn digests_and_tags() {
        let r = qualified(&format!("registry.k8s.io/pause@{DIGEST}"));
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(DIGEST)));
        let r = qualified(&format!("registry.k8s.io/pause:3.9@{DIGEST}"));
        assert_eq!(r.tag.as_deref(), Some("3.9"));
        assert!(parse("busybox@sha256:abc").is_err());
    }

    #[test]
    fn short_names_normalise_to_docker_hub_library() {
        let ParsedReference::Short(short) = parse("busybox").unwrap() else {
            panic!()
        };
        assert_eq!(
            short.on_registry(DOCKER_HUB).to_string(),
            "docker.io/library/busybox:latest"
        );
        let ParsedReference::Short(short) = parse("someone/tool:1").unwrap() else {
            panic!()
        };
        assert_eq!(
            short.on_registry(DOCKER_HUB).to_string(),
            "docker.io/someone/tool:1"
        );
        assert_eq!(
            qualified("index.docker.io/library/busybox").registry,
            "docker.io"
        );
        assert_eq!(qualified("docker.io/busybox").repository, "library/busybox");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "busybox:",
            "busybox:-x",
            "bad host/x",
            "x/../y",
            ":tag",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_text_parses_or_is_refused(input in ".{0,80}") {
                let _ = parse(&input);
            }

            #[test]
            fn a_qualified_reference_reads_back_from_its_text(
                host in "[a-z][a-z0-9-]{0,10}\\.[a-z]{2,4}(:[1-9][0-9]{0,4})?",
                path in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
                tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
            ) {
                let text = format!("{host}/{path}:{tag}");
                let Ok(ParsedReference::Qualified(reference)) = parse(&text) else {
                    return Err(TestCaseError::fail(format!("{text} did not parse as qualified")));
                };
                prop_assert_eq!(reference.to_string(), text);
                prop_assert_eq!(parse(&reference.to_string()), Ok(ParsedReference::Qualified(reference)));
            }
        }
    }
}
