//! PullImage → crimson-image.

use crimson_api::image::v1::{Credentials, PullImageRequest as InternalPull};
use k8s_cri::v1::{PullImageRequest, PullImageResponse};
use tonic::Status;

use crate::Backends;

/// Pulls the image and answers its id as the image ref (kubelet keys containers by it).
pub async fn pull_image(
    backends: &Backends,
    request: PullImageRequest,
) -> Result<PullImageResponse, Status> {
    let reference = super::image_reference(request.image.as_ref())?.to_string();
    let credentials = request.auth.map(|auth| Credentials {
        username: auth.username,
        password: auth.password,
        auth: auth.auth,
        server_address: auth.server_address,
        identity_token: auth.identity_token,
        registry_token: auth.registry_token,
    });
    let internal = InternalPull {
        reference: reference.clone(),
        credentials,
    };
    let (pulled, report) = backends
        .image_cache
        .write_stamped(|mut client| {
            let request = internal.clone();
            async move { client.pull_image(request).await }
        })
        .await?;
    super::list::keep(backends, pulled.listed, report.as_ref(), pulled.read_at);
    if let (Some(image), Some(report)) = (pulled.written, report) {
        super::status::keep(backends, reference, image, &report, pulled.read_at);
    }
    Ok(PullImageResponse {
        image_ref: pulled.image_id,
    })
}
