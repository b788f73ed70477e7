//! What an OCI runtime handler can do, asked once at start-up (before the reaper runs).

use std::path::Path;

use serde_json::Value;

use crate::runtime::oci_runtime::RuntimeRunner;

/// The optional features of one runtime handler, as CRI's `RuntimeHandlerFeatures` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeFeatures {
    /// Recursive read-only bind mounts: the runtime knows the `rro` mount option (runc 1.1+)
    /// and the kernel has `mount_setattr` (5.12+).
    pub recursive_read_only: bool,
    /// Pods in user namespaces of their own: the runtime knows user namespaces and the node
    /// can mount root filesystems on idmapped layers (`idmapped_layers`, probed once).
    pub user_namespaces: bool,
    /// The runtime is runc, which keeps a created container's init waiting on
    /// `<root>/<id>/exec.fifo`: the daemon starts it by reading the fifo itself
    /// ([`crate::runtime::exec_fifo`]).
    pub exec_fifo: bool,
}

impl RuntimeFeatures {
    /// Asks `<runtime> features` (through `runner`) and the running kernel; `idmapped_layers`
    /// says whether overlays on idmapped layers work on this node.
    pub fn probe(runner: &dyn RuntimeRunner, runtime: &Path, idmapped_layers: bool) -> Self {
        let features = runner.features(runtime);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            recursive_read_only: knows_mount_option(&features, "rro")
                && release_at_least(&kernel, 5, 12),
            user_namespaces: idmapped_layers && knows_namespace(&features, "user"),
            exec_fifo: is_runc(&features),
        }
    }
}

/// Whether `runc features` output lists `option` among its mount options.
fn knows_mount_option(features: &Value, option: &str) -> bool {
    features["mountOptions"]
        .as_array()
        .is_some_and(|options| options.iter().any(|o| o == option))
}

/// Whether `runc features` output lists the `namespace` type.
fn knows_namespace(features: &Value, namespace: &str) -> bool {
    features["linux"]["namespaces"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k == namespace))
}

/// Whether `features` output is runc's (it names runc's version).
fn is_runc(features: &Value) -> bool {
    features["annotations"]["org.opencontainers.runc.version"].is_string()
}

/// Whether a kernel release ("6.1.0-18-amd64") is at least `major.minor`.
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rro_needs_the_option_and_a_recent_kernel() {
        let runc = serde_json::json!({"mountOptions": ["ro", "rro", "rbind"]});
        let old = serde_json::json!({"mountOptions": ["ro", "rbind"]});
        assert!(knows_mount_option(&runc, "rro"));
        assert!(!knows_mount_option(&old, "rro"));
        assert!(!knows_mount_option(&Value::Null, "rro"));
        assert!(release_at_least("6.1.0-18-amd64", 5, 12));
        assert!(release_at_least("5.12.0", 5, 12));
        assert!(!release_at_least("5.10.209-1", 5, 12));
        assert!(!release_at_least("", 5, 12));
    }

    #[test]
    fn user_namespaces_need_the_runtime_to_know_them() {
        let runc = serde_json::json!({"linux": {"namespaces": ["mount", "user", "uts"]}});
        assert!(knows_namespace(&runc, "user"));
        assert!(!knows_namespace(
            &serde_json::json!({"linux": {"namespaces": ["mount"]}}),
            "user"
        ));
        assert!(!knows_namespace(&Value::Null, "user"));
    }

    #[test]
    fn runc_is_told_by_its_version_annotation() {
        let runc = serde_json::json!({"annotations": {"org.opencontainers.runc.version": "1.1.5"}});
        let crun =
            serde_json::json!({"annotations": {"io.github.seccomp.libseccomp.version": "2.5.4"}});
        assert!(is_runc(&runc));
        assert!(!is_runc(&crun));
        assert!(!is_runc(&Value::Null));
    }
}
