//! ImageFsInfo → crimson-storage.

use crimson_api::storage::v1::{FsInfoRequest, storage_client::StorageClient};
use k8s_cri::v1::{FilesystemIdentifier, FilesystemUsage, ImageFsInfoResponse, UInt64Value};
use tonic::Status;

use crate::Backends;

/// Usage of the filesystem that holds image layers.
pub async fn image_fs_info(backends: &Backends) -> Result<ImageFsInfoResponse, Status> {
    let usage = backends
        .storage
        .call(|channel| async move { StorageClient::new(channel).fs_info(FsInfoRequest {}).await })
        .await?;
    Ok(ImageFsInfoResponse {
        image_filesystems: vec![FilesystemUsage {
            timestamp: usage.timestamp_nanos,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: usage.mountpoint,
            }),
            used_bytes: Some(UInt64Value {
                value: usage.used_bytes,
            }),
            inodes_used: Some(UInt64Value {
                value: usage.inodes_used,
            }),
        }],
        container_filesystems: Vec::new(),
    })
}
