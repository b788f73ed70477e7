//! StreamImages (KEP-5825): what ListImages answers, in parts.

use crimson_api::cri::{
    StreamImagesRequest, StreamImagesResponse, image_service_server::ImageService,
};
use k8s_cri::v1::ListImagesRequest;
use tonic::{Request, Response, Status};

use crate::{
    FrontDoor,
    list_parts::{ListStream, in_parts},
};

#[tonic::async_trait]
impl ImageService for FrontDoor {
    type StreamImagesStream = ListStream<StreamImagesResponse>;

    async fn stream_images(
        &self,
        request: Request<StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let filter = request.into_inner().filter;
        let listed = super::list::list_images(&self.backends, ListImagesRequest { filter }).await?;
        Ok(Response::new(in_parts(listed.images, |images| {
            StreamImagesResponse { images }
        })))
    }
}
