//! ListImages → crimson-image.

use crimson_api::image::v1::{
    ListImagesRequest as InternalList, ListImagesResponse as InternalListed,
    images_client::ImagesClient,
};
use crimson_rpc::{ChangeReport, PeerChannel};
use crimson_store::Footprint;
use k8s_cri::v1::{ListImagesRequest, ListImagesResponse};
use tonic::Status;

use super::convert::to_cri_image;
use crate::Backends;

/// The read behind ListImages, cached under [`LIST_IMAGES`].
async fn list(
    mut client: ImagesClient<PeerChannel>,
    request: InternalList,
) -> Result<tonic::Response<InternalListed>, Status> {
    client.list_images(request).await
}

/// The cache's name of [`list`].
const LIST_IMAGES: &str = "ListImages";

/// Keeps `listed`, which a write answered with (`report` on its answer) as every image at
/// write count `read_at`, for the next ListImages without a filter, as having read everything
/// (the write's footprint leaves the list out); a write that could not list them leaves that
/// ListImages to ask.
pub fn keep(
    backends: &Backends,
    listed: Option<InternalListed>,
    report: Option<&ChangeReport>,
    read_at: u64,
) {
    if let (Some(listed), Some(report)) = (listed, report) {
        let report = ChangeReport {
            reads: Footprint::everything(),
            ..report.clone()
        };
        backends.image_cache.keep(
            LIST_IMAGES,
            &InternalList::default(),
            listed,
            &report,
            read_at,
        );
    }
}

/// Every image, or the one the filter's image spec names.
pub async fn list_images(
    backends: &Backends,
    request: ListImagesRequest,
) -> Result<ListImagesResponse, Status> {
    let reference = request
        .filter
        .and_then(|filter| filter.image)
        .map(|spec| spec.image)
        .unwrap_or_default();
    let listed = backends
        .image_cache
        .read(LIST_IMAGES, InternalList { reference }, list)
        .await?;
    Ok(ListImagesResponse {
        images: listed.images.iter().map(to_cri_image).collect(),
    })
}
