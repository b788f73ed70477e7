//! The container's mounts: the usual /proc, /dev, /sys set, the pod's /dev/shm,
//! /etc/resolv.conf, /etc/hosts and /etc/hostname, the global mounts.conf binds, then kubelet's
//! mounts (which win over any of the above at the same destination).

use std::path::{Path, PathBuf};

use crimson_api::sandbox::v1::{Mount as CriMount, Propagation};
use oci_spec::runtime::{Mount, MountBuilder};

use crate::{Result, SandboxError, runtime::features::RuntimeFeatures};

/// The mounts and the root filesystem propagation they need.
pub struct MountPlan {
    /// Every mount of the container, in order.
    pub mounts: Vec<Mount>,
    /// `rslave` or `rshared` when a kubelet mount asks for propagation.
    pub rootfs_propagation: Option<String>,
}

/// What the pod provides to every container.
pub struct PodFiles<'a> {
    /// The pod's /dev/shm.
    pub shm: &'a Path,
    /// The pod's /etc/resolv.conf.
    pub resolv_conf: &'a Path,
    /// The pod's /etc/hosts.
    pub hosts: &'a Path,
    /// The pod's /etc/hostname, when it has a UTS namespace of its own.
    pub hostname: Option<&'a Path>,
}

fn mount(destination: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("a complete mount")
}

/// Builds the mount list; `features` are those of the container's runtime handler.
pub fn plan(
    pod: &PodFiles<'_>,
    cri_mounts: &[CriMount],
    global_mounts: &[(PathBuf, PathBuf)],
    privileged: bool,
    readonly_rootfs: bool,
    features: RuntimeFeatures,
) -> Result<MountPlan> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let file_mode = if readonly_rootfs { "ro" } else { "rw" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
        mount(
            "/dev/shm",
            "bind",
            pod.shm,
            &["rbind", "nosuid", "noexec", "nodev", "rw"],
        ),
        mount(
            "/etc/resolv.conf",
            "bind",
            pod.resolv_conf,
            &["rbind", "rprivate", file_mode],
        ),
        mount(
            "/etc/hosts",
            "bind",
            pod.hosts,
            &["rbind", "rprivate", file_mode],
        ),
    ];
    if let Some(hostname) = pod.hostname {
        mounts.push(mount(
            "/etc/hostname",
            "bind",
            hostname,
            &["rbind", "rprivate", file_mode],
        ));
    }
    for (host, container) in global_mounts {
        if host.exists() {
            mounts.push(mount(
                &container.display().to_string(),
                "bind",
                host,
                &["rbind", "rprivate", "ro"],
            ));
        }
    }
    let mut propagation = None::<&str>;
    for cri in cri_mounts {
        if cri.container_path.is_empty() || !cri.container_path.starts_with('/') {
            return Err(SandboxError::InvalidArgument(format!(
                "mount destination {:?} must be an absolute path",
                cri.container_path
            )));
        }
        let source = host_source(&cri.host_path)?;
        let mode = match Propagation::try_from(cri.propagation).unwrap_or(Propagation::Private) {
            Propagation::Private => "rprivate",
            Propagation::HostToContainer => {
                propagation = propagation.or(Some("rslave"));
                "rslave"
            }
            Propagation::Bidirectional => {
                propagation = Some("rshared");
                "rshared"
            }
        };
        mounts.retain(|m| m.destination() != Path::new(&cri.container_path));
        let access = if cri.readonly { "ro" } else { "rw" };
        let mut options = vec!["rbind", mode, access];
        if cri.recursive_read_only {
            check_recursive_read_only(cri, features)?;
            options.push("rro");
        }
        mounts.push(mount(&cri.container_path, "bind", source, &options));
    }
    Ok(MountPlan {
        mounts,
        rootfs_propagation: propagation.map(str::to_string),
    })
}

/// A recursive read-only mount must be read-only, privately propagated (a submount arriving
/// later could not be made read-only) and on a runtime that can make it so.
fn check_recursive_read_only(cri: &CriMount, features: RuntimeFeatures) -> Result<()> {
    let refused = if !cri.readonly {
        "it must also be readonly"
    } else if cri.propagation != Propagation::Private as i32 {
        "its propagation must be private"
    } else if !features.recursive_read_only {
        "this runtime handler (or kernel) does not support them"
    } else {
        return Ok(());
    };
    Err(SandboxError::InvalidArgument(format!(
        "recursive read-only mount at {}: {refused}",
        cri.container_path
    )))
}

/// A kubelet host path: symlinks resolved; created as a directory when missing (as Docker's
/// `-v` does).
pub fn host_source(path: &str) -> Result<PathBuf> {
    if path.is_empty() || !path.starts_with('/') {
        return Err(SandboxError::InvalidArgument(format!(
            "mount source {path:?} must be an absolute path"
        )));
    }
    let path = Path::new(path);
    if std::fs::symlink_metadata(path).is_err() {
        std::fs::create_dir_all(path).map_err(SandboxError::io("creating mount source", path))?;
    }
    std::fs::canonicalize(path).map_err(SandboxError::io("resolving mount source", path))
}

/// containers-mounts.conf: one `host_path:container_path` per line, `#` comments.
pub fn read_mounts_conf(path: &Path) -> Vec<(PathBuf, PathBuf)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (host, container) = line.split_once(':')?;
            Some((PathBuf::from(host), PathBuf::from(container)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pod files that all live in `dir`.
    fn pod_files(dir: &Path) -> PodFiles<'_> {
        PodFiles {
            shm: dir,
            resolv_conf: dir,
            hosts: dir,
            hostname: None,
        }
    }

    #[test]
    fn kubelet_mounts_replace_defaults_and_set_propagation() {
        let dir = tempfile::tempdir().unwrap();
        let files = pod_files(dir.path());
        let cri = [
            CriMount {
                container_path: "/etc/hosts".into(),
                host_path: dir.path().display().to_string(),
                ..Default::default()
            },
            CriMount {
                container_path: "/data".into(),
                host_path: dir.path().join("new").display().to_string(),
                readonly: true,
                propagation: Propagation::HostToContainer as i32,
                ..Default::default()
            },
        ];
        let plan = plan(&files, &cri, &[], false, false, RuntimeFeatures::default()).unwrap();
        assert_eq!(
            plan.mounts
                .iter()
                .filter(|m| m.destination() == Path::new("/etc/hosts"))
                .count(),
            1
        );
        let data = plan
            .mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert!(
            dir.path().join("new").is_dir(),
            "a missing source is created"
        );
        assert_eq!(plan.rootfs_propagation.as_deref(), Some("rslave"));
        let relative = [CriMount {
            container_path: "data".into(),
            host_path: "/tmp".into(),
            ..Default::default()
        }];
        assert!(
            super::plan(
                &files,
                &relative,
                &[],
                false,
                false,
                RuntimeFeatures::default()
            )
            .is_err()
        );
    }

    #[test]
    fn recursive_read_only_mounts_are_checked_and_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let files = pod_files(dir.path());
        let rro = |readonly, propagation: Propagation| {
            [CriMount {
                container_path: "/data".into(),
                host_path: dir.path().display().to_string(),
                readonly,
                propagation: propagation as i32,
                recursive_read_only: true,
                ..Default::default()
            }]
        };
        let able = RuntimeFeatures {
            recursive_read_only: true,
            ..Default::default()
        };
        let plan = plan(
            &files,
            &rro(true, Propagation::Private),
            &[],
            false,
            false,
            able,
        )
        .unwrap();
        let data = plan
            .mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        let options = data.options().as_ref().unwrap();
        assert!(options.contains(&"ro".to_string()) && options.contains(&"rro".to_string()));
        for (mounts, features) in [
            (rro(false, Propagation::Private), able),
            (rro(true, Propagation::HostToContainer), able),
            (rro(true, Propagation::Bidirectional), able),
            (rro(true, Propagation::Private), RuntimeFeatures::default()),
        ] {
            let refused = super::plan(&files, &mounts, &[], false, false, features);
            assert!(
                matches!(refused, Err(SandboxError::InvalidArgument(_))),
                "{mounts:?}"
            );
        }
    }

    #[test]
    fn mounts_conf_lines() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mounts.conf");
        std::fs::write(&conf, "# comment\n/usr/share/rhel/secrets:/run/secrets\n\n").unwrap();
        assert_eq!(
            read_mounts_conf(&conf),
            vec![(
                PathBuf::from("/usr/share/rhel/secrets"),
                PathBuf::from("/run/secrets")
            )]
        );
        assert!(read_mounts_conf(&dir.path().join("missing")).is_empty());
    }
}
