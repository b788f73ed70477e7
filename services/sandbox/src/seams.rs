//! The side effects crimson-sandbox's logic goes through, each behind a small trait: the real
//! processes in the daemon, a recording fake (`fakes`) in unit tests.

use std::sync::Arc;

use crate::{
    host_ops::{HostOps, NodeHost},
    peers::Neighbours,
    runtime::{
        conmon::{Conmon, Monitor},
        oci_runtime::{RuntimeBinary, RuntimeRunner},
    },
};

/// The daemon's side effects.
#[derive(Clone)]
pub struct Seams {
    /// Runs the OCI runtime's command lines.
    pub runtime: Arc<dyn RuntimeRunner>,
    /// Creates containers under their monitor.
    pub monitor: Arc<dyn Monitor>,
    /// Namespaces, mounts and cgroups of pods.
    pub host: Arc<dyn HostOps>,
    /// The neighbour daemons; `None`: their gRPC clients on the configured sockets.
    pub neighbours: Option<Arc<dyn Neighbours>>,
}

impl Seams {
    /// The real ones: the runtime binary and conmon.
    pub fn real() -> Self {
        Self {
            runtime: Arc::new(RuntimeBinary),
            monitor: Arc::new(Conmon),
            host: Arc::new(NodeHost),
            neighbours: None,
        }
    }
}
