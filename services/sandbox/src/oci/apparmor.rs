//! AppArmor: the profile a container's process runs under (`process.apparmorProfile`). Where
//! the host has AppArmor off the choice is ignored, as CRI-O does; privileged containers run
//! unconfined; a Localhost profile must already be loaded in the kernel. No default profile
//! is loaded by Crimson yet, so RuntimeDefault runs unconfined.

use std::path::PathBuf;

use crimson_api::sandbox::v1::{AppArmorProfile, app_armor_profile::Kind};

use crate::{Result, SandboxError};

const ENABLED_FILE: &str = "/sys/module/apparmor/parameters/enabled";
const PROFILES_FILE: &str = "/sys/kernel/security/apparmor/profiles";

/// The host's AppArmor.
#[derive(Debug, Clone)]
pub struct HostAppArmor {
    enabled: bool,
    profiles_file: PathBuf,
}

impl HostAppArmor {
    /// A host without AppArmor (golden specs that do not depend on the machine).
    #[cfg(test)]
    pub fn off() -> Self {
        Self {
            enabled: false,
            profiles_file: PathBuf::new(),
        }
    }

    /// Whether the kernel has AppArmor on, read once at start.
    pub fn detect() -> Self {
        Self {
            enabled: std::fs::read_to_string(ENABLED_FILE).is_ok_and(|v| v.trim() == "Y"),
            profiles_file: PROFILES_FILE.into(),
        }
    }

    /// Whether a profile of that name is loaded now (lines read `<name> (<mode>)`).
    fn is_loaded(&self, name: &str) -> Result<bool> {
        let profiles = std::fs::read_to_string(&self.profiles_file)
            .map_err(SandboxError::io("reading", &self.profiles_file))?;
        Ok(profiles
            .lines()
            .filter_map(|line| line.rsplit_once(" ("))
            .any(|(loaded, _)| loaded == name))
    }
}

/// The profile to set in the container's process, if any.
pub fn profile_for(
    choice: Option<&AppArmorProfile>,
    privileged: bool,
    host: &HostAppArmor,
) -> Result<Option<String>> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    if !host.enabled || privileged {
        return Ok(None);
    }
    match Kind::try_from(choice.kind).unwrap_or(Kind::RuntimeDefault) {
        Kind::RuntimeDefault | Kind::Unconfined => Ok(None),
        Kind::Localhost if host.is_loaded(&choice.localhost_name)? => {
            Ok(Some(choice.localhost_name.clone()))
        }
        Kind::Localhost => Err(SandboxError::FailedPrecondition(format!(
            "apparmor profile {:?} is not loaded on this node",
            choice.localhost_name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost(name: &str) -> AppArmorProfile {
        AppArmorProfile {
            kind: Kind::Localhost as i32,
            localhost_name: name.into(),
        }
    }

    #[test]
    fn localhost_profiles_must_be_loaded_where_apparmor_is_on() {
        let dir = tempfile::tempdir().unwrap();
        let profiles_file = dir.path().join("profiles");
        std::fs::write(
            &profiles_file,
            "deny-write (enforce)\n/usr/bin/man (enforce)\nlog only (complain)\n",
        )
        .unwrap();
        let host = HostAppArmor {
            enabled: true,
            profiles_file,
        };
        for name in ["deny-write", "log only"] {
            assert_eq!(
                profile_for(Some(&localhost(name)), false, &host).unwrap(),
                Some(name.to_string())
            );
        }
        let missing = profile_for(Some(&localhost("deny")), false, &host).unwrap_err();
        assert!(matches!(missing, SandboxError::FailedPrecondition(_)));
        assert_eq!(
            profile_for(Some(&localhost("deny-write")), true, &host).unwrap(),
            None,
            "privileged containers run unconfined"
        );
        let unconfined = AppArmorProfile {
            kind: Kind::Unconfined as i32,
            localhost_name: String::new(),
        };
        assert_eq!(profile_for(Some(&unconfined), false, &host).unwrap(), None);
    }

    #[test]
    fn profiles_are_ignored_where_apparmor_is_off() {
        let host = HostAppArmor {
            enabled: false,
            profiles_file: "/nonexistent".into(),
        };
        assert_eq!(
            profile_for(Some(&localhost("anything")), false, &host).unwrap(),
            None
        );
    }
}
