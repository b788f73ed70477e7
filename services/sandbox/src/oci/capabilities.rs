//! Container capabilities: CRI-O's default set, CRI add/drop (with "ALL"), and privileged
//! containers. "All" means what this runtime itself holds, not every capability the kernel
//! knows: runc cannot grant more than it has (../shared/DESIGN.md §9).

use std::{collections::HashSet, str::FromStr};

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::{Result, SandboxError};

/// The default set, as CRI-O's `default_capabilities`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
];

/// Capability names by bit number (linux/capability.h).
pub(crate) const BY_BIT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities in this process's bounding set.
pub fn held_by_runtime() -> Capabilities {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    BY_BIT
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .filter_map(|(_, name)| Capability::from_str(name).ok())
        .collect()
}

fn parse(name: &str) -> Result<Capability> {
    let bare = name.trim().to_ascii_uppercase();
    let bare = bare.strip_prefix("CAP_").unwrap_or(&bare);
    Capability::from_str(bare)
        .map_err(|_| SandboxError::InvalidArgument(format!("unknown capability {name:?}")))
}

/// The container's capability set. Non-root processes get no effective or permitted
/// capabilities (they keep the bounding set, for setuid binaries), as containerd does;
/// inheritable is always empty.
pub fn container_capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
    held: &Capabilities,
    uid: u32,
) -> Result<LinuxCapabilities> {
    let is_all = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case("ALL"));
    let mut set: HashSet<Capability> = if privileged || is_all(add) {
        held.clone()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .filter_map(|c| Capability::from_str(c).ok())
            .collect()
    };
    if !privileged {
        if is_all(drop) {
            set.clear();
        }
        for name in drop.iter().filter(|n| !n.eq_ignore_ascii_case("ALL")) {
            set.remove(&parse(name)?);
        }
        for name in add.iter().filter(|n| !n.eq_ignore_ascii_case("ALL")) {
            let capability = parse(name)?;
            if held.contains(&capability) {
                set.insert(capability);
            } else {
                tracing::warn!(capability = %name, "the runtime does not hold this capability; not granted");
            }
        }
    }
    let running = if uid == 0 {
        set.clone()
    } else {
        HashSet::new()
    };
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(set));
    capabilities.set_effective(Some(running.clone()));
    capabilities.set_permitted(Some(running));
    capabilities.set_inheritable(Some(HashSet::new()));
    capabilities.set_ambient(Some(HashSet::new()));
    Ok(capabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &Option<Capabilities>) -> Vec<String> {
        let mut names: Vec<String> = set.iter().flatten().map(|c| c.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn defaults_add_drop_and_all() {
        let held = held_by_runtime();
        let default = container_capabilities(false, &[], &[], &held, 0).unwrap();
        assert!(!names(default.bounding()).contains(&"NET_ADMIN".to_string()));
        assert!(names(default.bounding()).contains(&"CHOWN".to_string()));

        let add = container_capabilities(false, &["NET_ADMIN".into()], &["KILL".into()], &held, 0)
            .unwrap();
        assert!(names(add.effective()).contains(&"NET_ADMIN".to_string()));
        assert!(!names(add.effective()).contains(&"KILL".to_string()));

        let none = container_capabilities(false, &[], &["ALL".into()], &held, 0).unwrap();
        assert!(names(none.bounding()).is_empty());
        let all = container_capabilities(false, &["ALL".into()], &[], &held, 0).unwrap();
        assert_eq!(all.bounding().as_ref().unwrap(), &held);
        assert!(container_capabilities(false, &["BOGUS".into()], &[], &held, 0).is_err());
    }

    #[test]
    fn non_root_processes_have_no_effective_capabilities() {
        let caps = container_capabilities(false, &[], &[], &held_by_runtime(), 1000).unwrap();
        assert!(names(caps.effective()).is_empty());
        assert!(!names(caps.bounding()).is_empty());
    }
}
