//! Security profiles: which seccomp and AppArmor profile a container asks for, from the typed
//! CRI fields or, for older kubelets, the deprecated string forms.

use crimson_api::sandbox::v1 as sandbox;
use k8s_cri::v1::{self as cri, security_profile::ProfileType};
use tonic::Status;

/// A typed profile's type and reference; `what` names the profile kind in errors.
fn typed(profile: cri::SecurityProfile, what: &str) -> Result<(ProfileType, String), Status> {
    let profile_type = ProfileType::try_from(profile.profile_type).map_err(|_| {
        Status::invalid_argument(format!(
            "unknown {what} profile type {}",
            profile.profile_type
        ))
    })?;
    Ok((profile_type, profile.localhost_ref))
}

/// The seccomp choice: the typed field, else the deprecated path, else none (unconfined).
pub fn seccomp(
    profile: Option<cri::SecurityProfile>,
    legacy_path: &str,
) -> Result<sandbox::SeccompProfile, Status> {
    use sandbox::seccomp_profile::Kind;
    let (kind, path) = match profile {
        Some(p) => match typed(p, "seccomp")? {
            (ProfileType::RuntimeDefault, _) => (Kind::RuntimeDefault, String::new()),
            (ProfileType::Unconfined, _) => (Kind::Unconfined, String::new()),
            (ProfileType::Localhost, reference) => (Kind::Localhost, reference),
        },
        None => match legacy_path {
            "" | "unconfined" => (Kind::Unconfined, String::new()),
            "runtime/default" | "docker/default" => (Kind::RuntimeDefault, String::new()),
            other => match other.strip_prefix("localhost/") {
                Some(path) => (Kind::Localhost, path.to_string()),
                None => {
                    return Err(Status::invalid_argument(format!(
                        "unknown seccomp profile {other:?}"
                    )));
                }
            },
        },
    };
    if kind == Kind::Localhost && path.is_empty() {
        return Err(Status::invalid_argument(
            "a Localhost seccomp profile needs localhost_ref",
        ));
    }
    Ok(sandbox::SeccompProfile {
        kind: kind as i32,
        localhost_path: path,
    })
}

/// The AppArmor choice: the typed field, else the deprecated name (`runtime/default`,
/// `unconfined`, `localhost/<profile>`), else the runtime default.
pub fn apparmor(
    profile: Option<cri::SecurityProfile>,
    legacy_name: &str,
) -> Result<sandbox::AppArmorProfile, Status> {
    use sandbox::app_armor_profile::Kind;
    let (kind, name) = match profile {
        Some(p) => match typed(p, "apparmor")? {
            (ProfileType::RuntimeDefault, _) => (Kind::RuntimeDefault, String::new()),
            (ProfileType::Unconfined, _) => (Kind::Unconfined, String::new()),
            (ProfileType::Localhost, reference) => (Kind::Localhost, reference),
        },
        None => match legacy_name {
            "" | "runtime/default" => (Kind::RuntimeDefault, String::new()),
            "unconfined" => (Kind::Unconfined, String::new()),
            other if other.starts_with("localhost/") => (Kind::Localhost, other.to_string()),
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown apparmor profile {other:?}"
                )));
            }
        },
    };
    // kubelet sends the bare name; crictl and older callers the `localhost/` form.
    let name = name.strip_prefix("localhost/").unwrap_or(&name).to_string();
    if kind == Kind::Localhost && name.is_empty() {
        return Err(Status::invalid_argument(
            "a Localhost apparmor profile needs localhost_ref",
        ));
    }
    Ok(sandbox::AppArmorProfile {
        kind: kind as i32,
        localhost_name: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_choices() {
        use sandbox::seccomp_profile::Kind;
        assert_eq!(
            seccomp(None, "").unwrap().kind,
            Kind::Unconfined as i32,
            "nil means unconfined"
        );
        let runtime_default = cri::SecurityProfile::default();
        assert_eq!(
            seccomp(Some(runtime_default), "").unwrap().kind,
            Kind::RuntimeDefault as i32
        );
        assert_eq!(
            seccomp(None, "localhost//p.json").unwrap().localhost_path,
            "/p.json"
        );
        assert!(seccomp(None, "bogus").is_err());
    }

    #[test]
    fn apparmor_choices() {
        use sandbox::app_armor_profile::Kind;
        assert_eq!(
            apparmor(None, "").unwrap().kind,
            Kind::RuntimeDefault as i32,
            "nil means the runtime default"
        );
        assert_eq!(
            apparmor(None, "unconfined").unwrap().kind,
            Kind::Unconfined as i32
        );
        let localhost = |reference: &str| cri::SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: reference.into(),
        };
        for (typed, legacy) in [
            (Some(localhost("deny-write")), ""),
            (Some(localhost("localhost/deny-write")), ""),
            (None, "localhost/deny-write"),
        ] {
            let profile = apparmor(typed, legacy).unwrap();
            assert_eq!(
                (profile.kind, profile.localhost_name.as_str()),
                (Kind::Localhost as i32, "deny-write")
            );
        }
        assert!(apparmor(Some(localhost("")), "").is_err());
        assert!(apparmor(None, "localhost/").is_err());
        assert!(apparmor(None, "bogus").is_err());
    }
}
