//! ListImages → crimson-image.

use crimson_api::image::v1::{
    ListImagesRequest as InternalList, ListImagesResponse as InternalListed,
    images_client::ImagesClient,
};
use crimson_rpc::PeerChannel;
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

/// Lists every image in the background, for the next ListImages without a filter.
pub fn prefetch(backends: &Backends) {
    backends
        .image_cache
        .prefetch(LIST_IMAGES, InternalList::default(), list);
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
