//! The oci-client clients pulls go through, kept from one pull to the next.
//!
//! Building a client builds its HTTP stack and loads the system's trust roots: 2–7 ms, a
//! fifth of pulling a small image from a registry on the node's network. A client also keeps
//! its connections open and the tokens it was given, so later pulls skip those steps too. But
//! it keeps the first credentials it was given for each registry and uses them for every
//! later request there: only anonymous pulls share clients, and a pull with credentials gets
//! a client of its own, so no token obtained with one request's credentials serves another.
//!
//! An insecure source is tried over HTTPS (without certificate checks), then plain HTTP, as
//! CRI-O and containerd do; the cache remembers the registries that answered in plain HTTP
//! and tries that first for them next time (any failure of it then tries HTTPS again).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use oci_client::{
    Client,
    client::{ClientConfig, ClientProtocol},
};

use crate::registry::RegistryTimeouts;

/// What tells anonymous clients apart: plain HTTP or not, and whether certificates are
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKind {
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Certificates are not checked (an insecure source).
    pub insecure: bool,
}

impl ClientKind {
    /// The kinds to try for a source, in order: HTTPS, then (for an insecure source) plain
    /// HTTP.
    pub fn for_source(insecure: bool) -> Vec<ClientKind> {
        let https = ClientKind {
            plain_http: false,
            insecure,
        };
        match insecure {
            true => vec![
                https,
                ClientKind {
                    plain_http: true,
                    insecure,
                },
            ],
            false => vec![https],
        }
    }
}

/// The anonymous clients, and the insecure registries that answered in plain HTTP.
#[derive(Default)]
pub struct RegistryClients {
    anonymous: Mutex<HashMap<ClientKind, Arc<Client>>>,
    plain_http: Mutex<HashSet<String>>,
}

impl RegistryClients {
    /// A client of `kind` with `timeouts`: a kept one for an anonymous pull, a new one for a
    /// pull with credentials.
    pub fn client(
        &self,
        kind: ClientKind,
        timeouts: RegistryTimeouts,
        anonymous: bool,
    ) -> Arc<Client> {
        if !anonymous {
            return Arc::new(build(kind, timeouts));
        }
        lock(&self.anonymous)
            .entry(kind)
            .or_insert_with(|| Arc::new(build(kind, timeouts)))
            .clone()
    }

    /// `kinds` (as [`ClientKind::for_source`] gives them for `registry`), with plain HTTP
    /// first if `registry` answered in it last time.
    pub fn in_order(&self, registry: &str, mut kinds: Vec<ClientKind>) -> Vec<ClientKind> {
        if lock(&self.plain_http).contains(registry) {
            kinds.sort_by_key(|kind| !kind.plain_http);
        }
        kinds
    }

    /// Notes which kind `registry` answered with.
    pub fn answered(&self, registry: &str, kind: ClientKind) {
        let mut plain_http = lock(&self.plain_http);
        if kind.plain_http {
            plain_http.insert(registry.to_string());
        } else {
            plain_http.remove(registry);
        }
    }
}

fn build(kind: ClientKind, timeouts: RegistryTimeouts) -> Client {
    Client::new(ClientConfig {
        protocol: match kind.plain_http {
            true => ClientProtocol::Http,
            false => ClientProtocol::Https,
        },
        accept_invalid_certificates: kind.insecure,
        connect_timeout: Some(timeouts.connect),
        read_timeout: Some(timeouts.read),
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TIMEOUTS: RegistryTimeouts = RegistryTimeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(1),
    };

    fn install_crypto() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn anonymous_pulls_share_a_client_of_their_kind_and_others_get_their_own() {
        install_crypto();
        let clients = RegistryClients::default();
        let [https, plain] = [false, true].map(|plain_http| ClientKind {
            plain_http,
            insecure: true,
        });
        let first = clients.client(https, TIMEOUTS, true);
        assert!(Arc::ptr_eq(&first, &clients.client(https, TIMEOUTS, true)));
        assert!(!Arc::ptr_eq(&first, &clients.client(plain, TIMEOUTS, true)));
        let secure = ClientKind {
            plain_http: false,
            insecure: false,
        };
        assert!(!Arc::ptr_eq(
            &first,
            &clients.client(secure, TIMEOUTS, true)
        ));
        let with_credentials = clients.client(https, TIMEOUTS, false);
        assert!(!Arc::ptr_eq(&first, &with_credentials));
        assert!(!Arc::ptr_eq(
            &with_credentials,
            &clients.client(https, TIMEOUTS, false)
        ));
    }

    #[test]
    fn a_registry_that_answered_in_plain_http_is_tried_so_first() {
        let clients = RegistryClients::default();
        let kinds = ClientKind::for_source(true);
        assert!(!clients.in_order("mirror:5000", kinds.clone())[0].plain_http);
        clients.answered("mirror:5000", kinds[1]);
        let ordered = clients.in_order("mirror:5000", kinds.clone());
        assert!(ordered[0].plain_http && !ordered[1].plain_http);
        assert!(!clients.in_order("other:5000", kinds.clone())[0].plain_http);
        clients.answered("mirror:5000", kinds[0]);
        assert!(!clients.in_order("mirror:5000", kinds)[0].plain_http);
    }

    #[test]
    fn a_secure_source_is_only_tried_over_https() {
        assert_eq!(
            ClientKind::for_source(false),
            [ClientKind {
                plain_http: false,
                insecure: false
            }]
        );
    }
}
