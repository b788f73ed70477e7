//! Who a container runs as: CRI's run_as_user / run_as_username / run_as_group /
//! supplemental_groups (and its policy: Merge adds the user's memberships in the image's
//! /etc/group, Strict does not), else the image's `User`, resolved in the image's /etc/passwd
//! and /etc/group.

use std::path::Path;

use crimson_api::sandbox::v1::Security;

use super::secure_path::resolve_in_root;
use crate::{Result, SandboxError};

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id of the process.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// Resolves the identity of a container whose root filesystem is at `rootfs`.
pub fn resolve(rootfs: &Path, security: &Security, image_user: &str) -> Result<Identity> {
    let passwd = read_passwd(rootfs);
    if security.run_as_group.is_some()
        && security.run_as_user.is_none()
        && security.run_as_username.is_empty()
    {
        return Err(SandboxError::InvalidArgument(
            "run_as_group is set without run_as_user or run_as_username".into(),
        ));
    }
    let (user_part, group_part) = match image_user.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (image_user, None),
    };
    let (uid, mut gid, username) = if let Some(uid) = security.run_as_user {
        let uid = to_id(uid, "run_as_user")?;
        let entry = passwd.iter().find(|e| e.uid == uid);
        (
            uid,
            entry.map_or(0, |e| e.gid),
            entry.map(|e| e.name.clone()),
        )
    } else if !security.run_as_username.is_empty() {
        let entry = passwd
            .iter()
            .find(|e| e.name == security.run_as_username)
            .ok_or_else(|| {
                SandboxError::InvalidArgument(format!(
                    "user {:?} is not in the image's /etc/passwd",
                    security.run_as_username
                ))
            })?;
        (entry.uid, entry.gid, Some(entry.name.clone()))
    } else if user_part.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if let Ok(uid) = user_part.parse::<u32>() {
        let entry = passwd.iter().find(|e| e.uid == uid);
        (
            uid,
            entry.map_or(0, |e| e.gid),
            entry.map(|e| e.name.clone()),
        )
    } else {
        let entry = passwd.iter().find(|e| e.name == user_part).ok_or_else(|| {
            SandboxError::InvalidArgument(format!(
                "image user {user_part:?} is not in the image's /etc/passwd"
            ))
        })?;
        (entry.uid, entry.gid, Some(entry.name.clone()))
    };
    let groups = read_groups(rootfs);
    if security.run_as_user.is_none()
        && security.run_as_username.is_empty()
        && let Some(group) = group_part.filter(|g| !g.is_empty())
    {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|(name, _, _)| name == group)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| {
                    SandboxError::InvalidArgument(format!(
                        "image group {group:?} is not in the image's /etc/group"
                    ))
                })?,
        };
    }
    if let Some(group) = security.run_as_group {
        gid = to_id(group, "run_as_group")?;
    }
    // The primary group is listed too, as CRI-O and containerd do.
    let mut additional_gids = vec![gid];
    if let Some(name) = username.filter(|_| !security.strict_supplemental_groups) {
        additional_gids.extend(
            groups
                .iter()
                .filter(|(_, _, members)| members.contains(&name))
                .map(|(_, gid, _)| *gid),
        );
    }
    for group in &security.supplemental_groups {
        additional_gids.push(to_id(*group, "supplemental_groups")?);
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(Identity {
        uid,
        gid,
        additional_gids,
    })
}

fn to_id(value: i64, field: &str) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| SandboxError::InvalidArgument(format!("{field} {value} is out of range")))
}

fn read_file(rootfs: &Path, path: &str) -> String {
    resolve_in_root(rootfs, Path::new(path))
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

fn read_passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    read_file(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// (name, gid, members) of each /etc/group line.
fn read_groups(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    read_file(rootfs, "/etc/group")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let members = fields.get(3).map_or_else(Vec::new, |m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            });
            Some((
                fields.first()?.to_string(),
                fields.get(2)?.parse().ok()?,
                members,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nvideo:x:44:app,other\nstaff:x:50:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn image_users_by_name_number_and_group() {
        let root = rootfs();
        let none = Security::default();
        assert_eq!(
            resolve(root.path(), &none, "").unwrap(),
            Identity {
                uid: 0,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert_eq!(
            resolve(root.path(), &none, "app").unwrap(),
            Identity {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![44, 1000]
            }
        );
        assert_eq!(resolve(root.path(), &none, "1000:staff").unwrap().gid, 50);
        assert_eq!(
            resolve(root.path(), &none, "4242").unwrap(),
            Identity {
                uid: 4242,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert!(resolve(root.path(), &none, "ghost").is_err());
    }

    #[test]
    fn cri_fields_override_the_image() {
        let root = rootfs();
        let security = Security {
            run_as_user: Some(1001),
            run_as_group: Some(1002),
            supplemental_groups: vec![1234, 5678],
            ..Default::default()
        };
        assert_eq!(
            resolve(root.path(), &security, "app").unwrap(),
            Identity {
                uid: 1001,
                gid: 1002,
                additional_gids: vec![1002, 1234, 5678]
            }
        );
        let by_name = Security {
            run_as_username: "nobody".into(),
            ..Default::default()
        };
        assert_eq!(resolve(root.path(), &by_name, "").unwrap().uid, 65534);
        let group_only = Security {
            run_as_group: Some(5),
            ..Default::default()
        };
        assert!(resolve(root.path(), &group_only, "").is_err());
    }

    #[test]
    fn strict_policy_leaves_out_the_images_memberships() {
        let root = rootfs();
        let merge = Security {
            run_as_user: Some(1000),
            supplemental_groups: vec![1234],
            ..Default::default()
        };
        assert_eq!(
            resolve(root.path(), &merge, "").unwrap().additional_gids,
            [44, 1000, 1234]
        );
        let strict = Security {
            strict_supplemental_groups: true,
            ..merge
        };
        assert_eq!(
            resolve(root.path(), &strict, "").unwrap().additional_gids,
            [1000, 1234]
        );
    }
}
