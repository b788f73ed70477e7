//! Registry credentials: per request (CRI `AuthConfig`) or from the global auth file in Docker
//! `config.json` format. Secrets never reach logs: [`Credential`]'s `Debug` hides them.

use std::{collections::BTreeMap, fmt, path::Path};

use base64::Engine;
use crimson_api::image::v1::Credentials;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::reference::{DOCKER_HUB, Reference};

/// What to present to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (HTTP Basic, or exchanged for a token at the Bearer realm).
    Basic {
        /// User.
        username: String,
        /// Password or personal token.
        password: String,
    },
    /// A registry bearer token used as is.
    Bearer(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credential {
    /// As oci-client wants it.
    pub fn to_registry_auth(credential: Option<&Credential>) -> RegistryAuth {
        match credential {
            None => RegistryAuth::Anonymous,
            Some(Credential::Basic { username, password }) => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Some(Credential::Bearer(token)) => RegistryAuth::Bearer(token.clone()),
        }
    }
}

/// Why credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `auth` is not base64 of `user:password`.
    #[error("credentials: the `auth` field is not base64(\"username:password\")")]
    MalformedAuth,
    /// An OAuth2 identity token was given; exchanging it is not supported.
    #[error(
        "credentials: identity tokens (OAuth2 refresh tokens) are not supported; use username/password or registry_token"
    )]
    IdentityToken,
    /// The auth file could not be read or parsed.
    #[error("auth file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong (never the file's content).
        message: String,
    },
}

/// Credentials from a CRI request, if it carries any.
pub fn from_request(credentials: Option<&Credentials>) -> Result<Option<Credential>, AuthError> {
    let Some(c) = credentials else {
        return Ok(None);
    };
    from_fields(
        &c.username,
        &c.password,
        &c.auth,
        &c.identity_token,
        &c.registry_token,
    )
}

fn from_fields(
    username: &str,
    password: &str,
    auth: &str,
    identity_token: &str,
    registry_token: &str,
) -> Result<Option<Credential>, AuthError> {
    if !registry_token.is_empty() {
        return Ok(Some(Credential::Bearer(registry_token.to_string())));
    }
    if !username.is_empty() || !password.is_empty() {
        return Ok(Some(Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    if !auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| AuthError::MalformedAuth)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::MalformedAuth)?;
        let (username, password) = decoded.split_once(':').ok_or(AuthError::MalformedAuth)?;
        return Ok(Some(Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    if !identity_token.is_empty() {
        return Err(AuthError::IdentityToken);
    }
    Ok(None)
}

/// A Docker `config.json`-format auth file (`{"auths": {"host": {"auth": "..."}}}`).
#[derive(Default, Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

impl AuthFile {
    /// Loads the file; a missing file has no credentials.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let fail = |message: String| AuthError::File {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read(path) {
            Ok(raw) => serde_json::from_slice(&raw)
                .map_err(|e| fail(format!("not valid auth JSON (line {})", e.line()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// The most specific entry for `reference`: `host/namespace/repo`, then shorter
    /// namespaces, then `host`.
    pub fn lookup(&self, reference: &Reference) -> Result<Option<Credential>, AuthError> {
        let by_key: BTreeMap<String, &AuthEntry> = self
            .auths
            .iter()
            .map(|(key, entry)| (normalize_key(key), entry))
            .collect();
        let mut scope = reference.name();
        loop {
            if let Some(entry) = by_key.get(&scope) {
                return from_fields(
                    &entry.username,
                    &entry.password,
                    &entry.auth,
                    &entry.identitytoken,
                    &entry.registrytoken,
                );
            }
            match scope.rfind('/') {
                Some(i) => scope.truncate(i),
                None => return Ok(None),
            }
        }
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key = key
        .strip_suffix("/v1/")
        .or_else(|| key.strip_suffix("/v2/"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    match key {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{ParsedReference, parse};

    fn reference(text: &str) -> Reference {
        match parse(text).unwrap() {
            ParsedReference::Qualified(r) => r,
            ParsedReference::Short(s) => s.on_registry(DOCKER_HUB),
        }
    }

    #[test]
    fn request_fields_in_priority_order() {
        let basic = from_fields("u", "p", "", "", "").unwrap();
        assert_eq!(
            basic,
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode("user:pa:ss");
        let from_auth = from_fields("", "", &encoded, "", "").unwrap();
        assert_eq!(
            from_auth,
            Some(Credential::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            from_fields("", "", "", "", "tok").unwrap(),
            Some(Credential::Bearer("tok".into()))
        );
        assert!(from_fields("", "", "!!", "", "").is_err());
        assert_eq!(from_fields("", "", "", "", "").unwrap(), None);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = format!(
            "{:?}",
            Credential::Basic {
                username: "u".into(),
                password: "hunter2".into()
            }
        );
        assert!(!shown.contains("hunter2"));
        assert!(
            !format!("{:?}", Credential::Bearer("secret-token".into())).contains("secret-token")
        );
    }

    #[test]
    fn auth_file_lookup_prefers_the_most_specific_key() {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "127.0.0.1:5000": {{"auth": "{}"}},
                "127.0.0.1:5000/team": {{"auth": "{}"}}
            }}}}"#,
            encode("hub:1"),
            encode("host:2"),
            encode("team:3")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, json).unwrap();
        let file = AuthFile::load(&path).unwrap();
        let user = |r: &str| match file.lookup(&reference(r)).unwrap() {
            Some(Credential::Basic { username, .. }) => username,
            other => format!("{other:?}"),
        };
        assert_eq!(user("busybox"), "hub");
        assert_eq!(user("127.0.0.1:5000/team/app:1"), "team");
        assert_eq!(user("127.0.0.1:5000/other/app:1"), "host");
        assert_eq!(user("elsewhere.io/app"), "None");
    }
}
