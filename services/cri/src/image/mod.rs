//! `runtime.v1.ImageService`: routed to crimson-image (records, pulls) and crimson-storage
//! (filesystem usage).

mod convert;
mod fs_info;
mod list;
mod pull;
mod remove;
mod status;
mod stream;

use k8s_cri::v1::{
    ImageFsInfoRequest, ImageFsInfoResponse, ImageStatusRequest, ImageStatusResponse,
    ListImagesRequest, ListImagesResponse, PullImageRequest, PullImageResponse, RemoveImageRequest,
    RemoveImageResponse, image_service_server::ImageService,
};
use tonic::{Request, Response, Status};

use crate::FrontDoor;

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ImageService for FrontDoor {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> RpcResult<ListImagesResponse> {
        list::list_images(&self.backends, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> RpcResult<ImageStatusResponse> {
        status::image_status(&self.backends, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn pull_image(&self, request: Request<PullImageRequest>) -> RpcResult<PullImageResponse> {
        pull::pull_image(&self.backends, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> RpcResult<RemoveImageResponse> {
        remove::remove_image(&self.backends, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn image_fs_info(
        &self,
        _: Request<ImageFsInfoRequest>,
    ) -> RpcResult<ImageFsInfoResponse> {
        fs_info::image_fs_info(&self.backends)
            .await
            .map(Response::new)
    }
}

/// The image reference of a request's `ImageSpec`, which must be set.
fn image_reference(spec: Option<&k8s_cri::v1::ImageSpec>) -> Result<&str, Status> {
    spec.map(|s| s.image.as_str())
        .filter(|image| !image.is_empty())
        .ok_or_else(|| crate::error::missing("image.image"))
}
