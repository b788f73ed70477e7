//! ListImages → crimson-image.

use crimson_api::image::v1::ListImagesRequest as InternalList;
use k8s_cri::v1::{ListImagesRequest, ListImagesResponse};
use tonic::Status;

use super::convert::to_cri_image;
use crate::Backends;

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
        .image_cached(
            "ListImages",
            InternalList { reference },
            |mut client, request| async move { client.list_images(request).await },
        )
        .await?;
    Ok(ListImagesResponse {
        images: listed.images.iter().map(to_cri_image).collect(),
    })
}
