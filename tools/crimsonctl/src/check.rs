//! `check [--repair]`: objects one daemon holds that their owner does not know: root
//! filesystems of no container, network attachments and namespaces of no pod, images whose
//! layers storage lost, layers held for images that are gone. Repairs go through the daemon
//! that holds the object.
//!
//! Each daemon writes its record before it asks another daemon for anything, so the held
//! objects are listed first and their owners second: an object made in between has its owner
//! recorded by the time the owners are listed, and nothing in flight is taken for an orphan.

use std::{collections::HashSet, process::ExitCode};

use crimson_api::{
    image::v1::{
        ListImagesRequest, ReleaseUnrecordedOwnersRequest, RemoveImageRequest,
        images_client::ImagesClient,
    },
    network::v1::{
        ListPodsRequest as ListAttachmentsRequest, TearDownPodRequest,
        network_client::NetworkClient,
    },
    sandbox::v1::{ListContainersRequest, ListPodsRequest, sandbox_client::SandboxClient},
    storage::v1::{
        GetLayerRequest, ListOwnersRequest, ListRootfsRequest, ReleaseOwnerRequest,
        RemoveRootfsRequest, storage_client::StorageClient,
    },
};
use crimson_config::{Config, Daemon};
use tonic::transport::Channel;

/// What the daemons hold, as far as the check needs it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Root filesystem ids storage holds.
    pub rootfs: Vec<String>,
    /// Owners storage holds layers for (image ids and root filesystem ids).
    pub layer_owners: Vec<String>,
    /// Pod ids network holds an attachment for.
    pub attachments: Vec<String>,
    /// Files in network's namespace directory (named by pod id).
    pub netns_files: Vec<String>,
    /// Image ids with the layers (chain ids) they stack.
    pub images: Vec<(String, Vec<String>)>,
    /// Chain ids storage does not hold.
    pub missing_layers: HashSet<String>,
    /// Pod ids sandbox knows (creations in flight included).
    pub pods: HashSet<String>,
    /// Container ids sandbox knows (infra and creations in flight included).
    pub containers: HashSet<String>,
}

/// How an inconsistency is repaired, through the daemon holding the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// crimson-storage RemoveRootfs.
    RemoveRootfs(String),
    /// crimson-network TearDownPod (DEL, then the namespace and the record go).
    TearDownPod(String),
    /// crimson-image RemoveImage (its layers are released).
    RemoveImage(String),
    /// crimson-storage ReleaseOwner (a root filesystem's layers).
    ReleaseOwner(String),
    /// crimson-image ReleaseUnrecordedOwners: it releases the layers of image ids it has no
    /// record of, except those of pulls in flight (which a listing cannot tell).
    ReleaseImageOwners,
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong, for the operator.
    pub problem: String,
    /// How `--repair` fixes it.
    pub repair: Repair,
}

/// Layer owners that are images: their ids are digests.
const IMAGE_OWNER_PREFIX: &str = "sha256:";

/// Layer owners that are root filesystems: `rootfs:<id>`.
const ROOTFS_OWNER_PREFIX: &str = "rootfs:";

/// The container a root filesystem belongs to: its own, or the one an image volume
/// (`<container>-image-<n>`) is mounted into.
fn rootfs_owner(rootfs: &str) -> &str {
    rootfs
        .split_once("-image-")
        .map_or(rootfs, |(container, _)| container)
}

/// Every inconsistency in `snapshot`.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut found = Vec::new();
    for rootfs in &snapshot.rootfs {
        if !snapshot.containers.contains(rootfs_owner(rootfs)) {
            found.push(Finding {
                problem: format!("storage holds root filesystem {rootfs} of no container"),
                repair: Repair::RemoveRootfs(rootfs.clone()),
            });
        }
    }
    let attached: HashSet<&String> = snapshot.attachments.iter().collect();
    for pod in &snapshot.attachments {
        if !snapshot.pods.contains(pod) {
            found.push(Finding {
                problem: format!("network holds an attachment of no pod: {pod}"),
                repair: Repair::TearDownPod(pod.clone()),
            });
        }
    }
    for pod in &snapshot.netns_files {
        if !attached.contains(pod) && !snapshot.pods.contains(pod) {
            found.push(Finding {
                problem: format!("network namespace {pod} belongs to no pod or attachment"),
                repair: Repair::TearDownPod(pod.clone()),
            });
        }
    }
    let images: HashSet<&String> = snapshot.images.iter().map(|(id, _)| id).collect();
    for (image, layers) in &snapshot.images {
        if let Some(lost) = layers.iter().find(|l| snapshot.missing_layers.contains(*l)) {
            found.push(Finding {
                problem: format!("image {image} lacks its layer {lost} in storage"),
                repair: Repair::RemoveImage(image.clone()),
            });
        }
    }
    let rootfs: HashSet<&String> = snapshot.rootfs.iter().collect();
    for owner in &snapshot.layer_owners {
        let (known, repair) = match owner.strip_prefix(ROOTFS_OWNER_PREFIX) {
            Some(id) => (
                rootfs.contains(&id.to_string()),
                Repair::ReleaseOwner(owner.clone()),
            ),
            None if owner.starts_with(IMAGE_OWNER_PREFIX) => {
                (images.contains(owner), Repair::ReleaseImageOwners)
            }
            None => (false, Repair::ReleaseOwner(owner.clone())),
        };
        if !known {
            found.push(Finding {
                problem: format!("storage holds layers for {owner}, which no daemon knows"),
                repair,
            });
        }
    }
    found
}

fn channel(config: &Config, daemon: Daemon) -> Channel {
    crimson_rpc::connect_unix(config.socket(daemon))
}

/// Lists the held objects, then their owners (see the module comment).
async fn snapshot(config: &Config) -> anyhow::Result<Snapshot> {
    let mut storage = StorageClient::new(channel(config, Daemon::Storage));
    // Storage claims a root filesystem's layers before it records the root filesystem.
    let mut snapshot = Snapshot {
        layer_owners: storage
            .list_owners(ListOwnersRequest {})
            .await?
            .into_inner()
            .owners,
        ..Default::default()
    };
    snapshot.rootfs = storage
        .list_rootfs(ListRootfsRequest {})
        .await?
        .into_inner()
        .rootfs
        .into_iter()
        .map(|r| r.id)
        .collect();
    snapshot.netns_files = std::fs::read_dir(&config.network.netns_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    snapshot.attachments = NetworkClient::new(channel(config, Daemon::Network))
        .list_pods(ListAttachmentsRequest {})
        .await?
        .into_inner()
        .pods
        .into_iter()
        .map(|p| p.pod_id)
        .collect();
    let mut sandbox = SandboxClient::new(channel(config, Daemon::Sandbox));
    snapshot.pods = sandbox
        .list_pods(ListPodsRequest {
            include_unfinished: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .pods
        .into_iter()
        .map(|p| p.id)
        .collect();
    snapshot.containers = sandbox
        .list_containers(ListContainersRequest {
            include_internal: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect();
    // Images are recorded after their layers are stored: images first, then the layers.
    snapshot.images = ImagesClient::new(channel(config, Daemon::Image))
        .list_images(ListImagesRequest::default())
        .await?
        .into_inner()
        .images
        .into_iter()
        .map(|i| (i.id, i.chain_ids))
        .collect();
    let layers: HashSet<&String> = snapshot.images.iter().flat_map(|(_, l)| l).collect();
    for chain_id in layers {
        let held = storage
            .get_layer(GetLayerRequest {
                chain_id: chain_id.clone(),
            })
            .await;
        match held {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => {
                snapshot.missing_layers.insert(chain_id.clone());
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(snapshot)
}

async fn repair(config: &Config, repair: &Repair) -> Result<(), tonic::Status> {
    let ignore_gone = |result: Result<(), tonic::Status>| match result {
        Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
        other => other,
    };
    let storage = || StorageClient::new(channel(config, Daemon::Storage));
    let images = || ImagesClient::new(channel(config, Daemon::Image));
    ignore_gone(match repair {
        Repair::RemoveRootfs(id) => storage()
            .remove_rootfs(RemoveRootfsRequest { id: id.clone() })
            .await
            .map(drop),
        Repair::ReleaseOwner(owner) => storage()
            .release_owner(ReleaseOwnerRequest {
                owner: owner.clone(),
            })
            .await
            .map(drop),
        Repair::TearDownPod(pod_id) => NetworkClient::new(channel(config, Daemon::Network))
            .tear_down_pod(TearDownPodRequest {
                pod_id: pod_id.clone(),
            })
            .await
            .map(drop),
        Repair::RemoveImage(id) => images()
            .remove_image(RemoveImageRequest {
                reference: id.clone(),
            })
            .await
            .map(drop),
        Repair::ReleaseImageOwners => images()
            .release_unrecorded_owners(ReleaseUnrecordedOwnersRequest {})
            .await
            .map(drop),
    })
}

/// `crimsonctl check`: exits 1 while inconsistencies remain.
pub async fn check(config: &Config, with_repair: bool) -> anyhow::Result<ExitCode> {
    let found = findings(&snapshot(config).await?);
    if found.is_empty() {
        println!("consistent: every object's owner knows it");
        return Ok(ExitCode::SUCCESS);
    }
    let mut remaining = 0;
    let mut repaired = Vec::new();
    for finding in &found {
        if !with_repair {
            println!("{} (repair: {:?})", finding.problem, finding.repair);
            remaining += 1;
            continue;
        }
        if repaired.contains(&finding.repair) {
            println!("{}: repaired ({:?})", finding.problem, finding.repair);
            continue;
        }
        repaired.push(finding.repair.clone());
        match repair(config, &finding.repair).await {
            Ok(()) => println!("{}: repaired ({:?})", finding.problem, finding.repair),
            Err(status) => {
                println!("{}: repair failed: {}", finding.problem, status.message());
                remaining += 1;
            }
        }
    }
    if remaining > 0 && !with_repair {
        println!("{remaining} inconsistencies; `crimsonctl check --repair` fixes them");
    }
    Ok(if remaining == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn objects_without_owners_are_found_with_their_repair() {
        let snapshot = Snapshot {
            rootfs: vec![
                "c1".into(),
                "c1-image-0".into(),
                "gone".into(),
                "gone-image-1".into(),
            ],
            layer_owners: vec![
                "sha256:img".into(),
                "sha256:old".into(),
                "rootfs:c1".into(),
                "rootfs:lost".into(),
            ],
            attachments: vec!["p1".into(), "p-gone".into()],
            netns_files: vec!["p1".into(), "p-gone".into(), "p-stray".into()],
            images: vec![
                ("sha256:img".into(), vec!["l1".into()]),
                ("sha256:broken".into(), vec!["l1".into(), "l2".into()]),
            ],
            missing_layers: set(&["l2"]),
            pods: set(&["p1"]),
            containers: set(&["c1"]),
        };
        let repairs: Vec<Repair> = findings(&snapshot).into_iter().map(|f| f.repair).collect();
        assert_eq!(
            repairs,
            [
                Repair::RemoveRootfs("gone".into()),
                Repair::RemoveRootfs("gone-image-1".into()),
                Repair::TearDownPod("p-gone".into()),
                Repair::TearDownPod("p-stray".into()),
                Repair::RemoveImage("sha256:broken".into()),
                Repair::ReleaseImageOwners,
                Repair::ReleaseOwner("rootfs:lost".into()),
            ]
        );
    }

    #[test]
    fn a_consistent_node_has_no_findings() {
        let snapshot = Snapshot {
            rootfs: vec!["c1".into()],
            layer_owners: vec!["sha256:img".into(), "rootfs:c1".into()],
            attachments: vec!["p1".into()],
            netns_files: vec!["p1".into()],
            images: vec![("sha256:img".into(), vec!["l1".into()])],
            pods: set(&["p1"]),
            containers: set(&["c1"]),
            ..Default::default()
        };
        assert!(findings(&snapshot).is_empty());
    }
}
