//! ImageStatus → crimson-image. An unknown image is an empty answer, not an error.

use std::collections::HashMap;

use crimson_api::image::v1::{
    GetImageRequest, Image as InternalImage, images_client::ImagesClient,
};
use crimson_rpc::{ChangeReport, PeerChannel};
use k8s_cri::v1::{ImageStatusRequest, ImageStatusResponse};
use tonic::{Code, Status};

use super::convert::to_cri_image;
use crate::Backends;

/// The read behind ImageStatus, cached under [`GET_IMAGE`].
async fn get_image(
    mut client: ImagesClient<PeerChannel>,
    request: GetImageRequest,
) -> Result<tonic::Response<InternalImage>, Status> {
    client.get_image(request).await
}

/// The cache's name of [`get_image`].
const GET_IMAGE: &str = "GetImage";

/// Keeps `image`, which a pull of `reference` answered with (`report` on its answer) as read at
/// write count `read_at`, as the status of `reference` kubelet looks at next.
pub fn keep(
    backends: &Backends,
    reference: String,
    image: InternalImage,
    report: &ChangeReport,
    read_at: u64,
) {
    let request = GetImageRequest { reference };
    backends
        .image_cache
        .keep(GET_IMAGE, &request, image, report, read_at);
}

/// The image `request` names, with the image config and layers as verbose info.
pub async fn image_status(
    backends: &Backends,
    request: ImageStatusRequest,
) -> Result<ImageStatusResponse, Status> {
    let reference = super::image_reference(request.image.as_ref())?.to_string();
    let found = backends
        .image_cache
        .read(GET_IMAGE, GetImageRequest { reference }, get_image)
        .await;
    let image = match found {
        Ok(image) => image,
        Err(status) if status.code() == Code::NotFound => return Ok(ImageStatusResponse::default()),
        Err(status) => return Err(status),
    };
    let info = if request.verbose {
        verbose_info(&image)
    } else {
        HashMap::new()
    };
    Ok(ImageStatusResponse {
        image: Some(to_cri_image(&image)),
        info,
    })
}

/// `info["info"]`: the image config and where the image came from, as JSON.
fn verbose_info(image: &InternalImage) -> HashMap<String, String> {
    let config: serde_json::Value = serde_json::from_slice(&image.config_json).unwrap_or_default();
    let info = serde_json::json!({
        "imageSpec": config,
        "manifestDigest": image.manifest_digest,
        "chainIDs": image.chain_ids,
        "pulledAt": image.pulled_at_unix,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
