//! RemoveImage → crimson-image (which releases the layers in crimson-storage).

use crimson_api::image::v1::RemoveImageRequest as InternalRemove;
use k8s_cri::v1::{RemoveImageRequest, RemoveImageResponse};
use tonic::Status;

use crate::Backends;

/// Removes the image with all its names; succeeds when it is already gone.
pub async fn remove_image(
    backends: &Backends,
    request: RemoveImageRequest,
) -> Result<RemoveImageResponse, Status> {
    let reference = super::image_reference(request.image.as_ref())?.to_string();
    let (removed, report) = backends
        .image_cache
        .write_stamped(|mut client| {
            let reference = reference.clone();
            async move { client.remove_image(InternalRemove { reference }).await }
        })
        .await?;
    super::list::keep(backends, removed.listed, report.as_ref(), removed.read_at);
    Ok(RemoveImageResponse {})
}
