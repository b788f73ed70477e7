//! A pod in a user namespace of its own (KEP-127, `hostUsers: false`): the mappings it asks
//! for, checked; the namespace itself, pinned in the pod's directory with the pod's UTS and IPC
//! namespaces made owned by it (crimson-network does the same for the network namespace), so
//! the pod's root has its capabilities over all of them and runc can join them after joining
//! the user namespace.

use std::path::Path;

use crimson_api::sandbox::v1::{IdMapping as SpecMapping, NamespaceMode, PodSpec};
use crimson_sys::user_namespaces::{self, IdMapping};
use nix::sched::CloneFlags;

use crate::{Result, SandboxError};

/// A pod's user and group ID mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMappings {
    /// User IDs.
    pub uid: IdMapping,
    /// Group IDs.
    pub gid: IdMapping,
}

/// The mappings of `spec`'s own user namespace, checked (none: the host's user namespace).
pub fn mappings(spec: &PodSpec) -> Result<Option<PodMappings>> {
    if spec.uid_mappings.is_empty() && spec.gid_mappings.is_empty() {
        return Ok(None);
    }
    let one = |what: &str, mappings: &[SpecMapping]| -> Result<IdMapping> {
        let invalid = |message: String| Err(SandboxError::InvalidArgument(message));
        let [mapping] = mappings else {
            return invalid(format!(
                "a pod's user namespace takes exactly one {what} mapping, not {}",
                mappings.len()
            ));
        };
        if mapping.container_id != 0 {
            return invalid(format!(
                "the {what} mapping must map container ID 0 (it starts at {})",
                mapping.container_id
            ));
        }
        if mapping.length == 0 || mapping.host_id.checked_add(mapping.length).is_none() {
            return invalid(format!(
                "the {what} mapping {} {} {} is empty or passes the last ID",
                mapping.container_id, mapping.host_id, mapping.length
            ));
        }
        Ok(IdMapping {
            container_id: mapping.container_id,
            host_id: mapping.host_id,
            length: mapping.length,
        })
    };
    let mappings = PodMappings {
        uid: one("uid", &spec.uid_mappings)?,
        gid: one("gid", &spec.gid_mappings)?,
    };
    for (what, mode) in [
        ("network", spec.network),
        ("PID", spec.pid),
        ("IPC", spec.ipc),
    ] {
        if mode == NamespaceMode::Node as i32 {
            return Err(SandboxError::InvalidArgument(format!(
                "a pod in a user namespace of its own cannot use the host's {what} namespace"
            )));
        }
    }
    Ok(Some(mappings))
}

/// Creates the pod's user namespace pinned at `user`, and its UTS (with `hostname`) and IPC
/// namespaces owned by it, pinned at `uts` and `ipc`.
pub fn pin(
    mappings: &PodMappings,
    user: &Path,
    uts: Option<&Path>,
    ipc: Option<&Path>,
    hostname: &str,
) -> Result<()> {
    let failed = |what: &'static str| move |e: std::io::Error| SandboxError::runtime(what, e);
    let userns = user_namespaces::new_user_namespace(&[mappings.uid], &[mappings.gid])
        .map_err(failed("creating the pod's user namespace"))?;
    user_namespaces::pin(&userns, user).map_err(failed("pinning the pod's user namespace"))?;
    let owned: Vec<(CloneFlags, &Path)> = [
        (CloneFlags::CLONE_NEWUTS, uts),
        (CloneFlags::CLONE_NEWIPC, ipc),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.map(|p| (flag, p)))
    .collect();
    if owned.is_empty() {
        return Ok(());
    }
    user_namespaces::pin_owned_by(user, &owned, hostname)
        .map_err(failed("pinning the pod's UTS and IPC namespaces"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(container_id: u32, host_id: u32, length: u32) -> SpecMapping {
        SpecMapping {
            container_id,
            host_id,
            length,
        }
    }

    fn spec(uids: Vec<SpecMapping>, gids: Vec<SpecMapping>) -> PodSpec {
        PodSpec {
            uid_mappings: uids,
            gid_mappings: gids,
            ..Default::default()
        }
    }

    #[test]
    fn one_mapping_each_from_container_id_0_is_taken() {
        assert_eq!(mappings(&PodSpec::default()).unwrap(), None);
        let taken = mappings(&spec(
            vec![mapping(0, 1000, 100_000)],
            vec![mapping(0, 2000, 65_536)],
        ));
        let expected = PodMappings {
            uid: IdMapping {
                container_id: 0,
                host_id: 1000,
                length: 100_000,
            },
            gid: IdMapping {
                container_id: 0,
                host_id: 2000,
                length: 65_536,
            },
        };
        assert_eq!(taken.unwrap(), Some(expected));
    }

    #[test]
    fn what_kubelet_must_not_ask_is_refused() {
        let good = || vec![mapping(0, 1000, 100_000)];
        let refused = [
            spec(
                vec![mapping(0, 1000, 100_000), mapping(0, 2000, 100_000)],
                good(),
            ),
            spec(vec![mapping(1, 1000, 100_000)], good()),
            spec(good(), vec![]),
            spec(good(), vec![mapping(0, u32::MAX - 10, 100)]),
            spec(good(), vec![mapping(0, 1000, 0)]),
            PodSpec {
                network: NamespaceMode::Node as i32,
                ..spec(good(), good())
            },
        ];
        for spec in refused {
            let answer = mappings(&spec);
            assert!(
                matches!(answer, Err(SandboxError::InvalidArgument(_))),
                "{spec:?}: {answer:?}"
            );
        }
    }
}
