//! The gRPC face of crimson-image: one operation per RPC, errors mapped to statuses.

use std::{sync::Arc, time::Duration};

use crimson_api::image::v1::{
    GetImageRequest, Image, ListImagesRequest, ListImagesResponse, PullImageRequest,
    PullImageResponse, ReleaseUnrecordedOwnersRequest, ReleaseUnrecordedOwnersResponse,
    RemoveImageRequest, RemoveImageResponse,
    images_server::{Images, ImagesServer},
};
use crimson_config::Config;
use crimson_store::ReadRecorder;
use tonic::{Request, Response, Status, service::Routes};

use crate::{
    ImageError, Result,
    image_lookup::find_image,
    image_pull, image_remove, reconcile,
    records::ImageRecord,
    state::{Seams, State},
};

/// How often layer owners are reconciled with storage.
const RECONCILE_PERIOD: Duration = Duration::from_secs(60);
/// How often registries.conf is looked at for edits, which change how names resolve.
const REGISTRIES_CONF_PERIOD: Duration = Duration::from_secs(1);

/// crimson-image's service; cheap to clone.
#[derive(Clone)]
pub struct ImageService {
    state: Arc<State>,
}

impl ImageService {
    /// Opens the database and starts the periodic reconciliation with storage and the watch
    /// on registries.conf.
    pub fn open(config: &Config) -> Result<Self> {
        let state = Arc::new(State::open(config, Seams::real(config))?);
        reconcile::spawn_periodic(state.clone(), RECONCILE_PERIOD);
        spawn_registries_conf_watch(state.clone());
        Ok(Self { state })
    }

    /// The service over `state` as it is (no reconcile), for unit tests.
    #[cfg(test)]
    pub(crate) fn over(state: Arc<State>) -> Self {
        Self { state }
    }

    /// The daemon's writes (their count and what the recent ones touched), which the front
    /// door follows.
    pub fn changes(&self) -> crimson_store::Changes {
        self.state.records.changes().clone()
    }

    /// What its database holds, for `crimsonctl status`.
    pub fn state_counts(&self) -> crimson_rpc::StateCounts {
        let state = self.state.clone();
        Arc::new(move || vec![state.records.object_count()])
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(ImagesServer::new(self))
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn respond<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(|e: ImageError| {
        tracing::warn!(error = %e, "request failed");
        Status::from(e)
    })
}

/// Counts an edit of registries.conf as a change of the daemon's answers (a short name may
/// resolve to another image), so that the front door drops the lookups it cached.
fn spawn_registries_conf_watch(state: Arc<State>) {
    tokio::spawn(async move {
        let mut last = state.registries.get(&state.registries_conf).ok();
        loop {
            tokio::time::sleep(REGISTRIES_CONF_PERIOD).await;
            let Ok(now) = state.registries.get(&state.registries_conf) else {
                continue;
            };
            if !last.as_ref().is_some_and(|last| Arc::ptr_eq(last, &now)) {
                state.records.changes().mark();
                last = Some(now);
            }
        }
    });
}

impl ImageService {
    /// Every image, as ListImages without a reference answers, for a write to answer with;
    /// none if they cannot be read. The read is left out of the write's footprint, which
    /// stands for what its `written` image read (the front door keeps the list as reading
    /// everything).
    async fn listed(&self) -> Option<ListImagesResponse> {
        let list = async {
            self.state
                .records
                .all()
                .ok()
                .map(|records| to_listed(&records))
        };
        ReadRecorder::default().scope(list).await
    }
}

/// `records` as ListImages answers them.
fn to_listed(records: &[ImageRecord]) -> ListImagesResponse {
    ListImagesResponse {
        images: records.iter().map(ImageRecord::to_proto).collect(),
    }
}

#[tonic::async_trait]
impl Images for ImageService {
    async fn pull_image(&self, request: Request<PullImageRequest>) -> RpcResult<PullImageResponse> {
        let request = request.into_inner();
        let started = std::time::Instant::now();
        let pulled = image_pull::pull_image(
            &self.state,
            &request.reference,
            request.credentials.as_ref(),
        )
        .await;
        if let Some(metrics) = crimson_metrics::get() {
            let outcome = pulled
                .as_ref()
                .map_or_else(ImageError::pull_failure_reason, |_| "ok");
            metrics.record_pull(outcome, started.elapsed());
        }
        let read_at = self.state.records.changes().count();
        let written = find_image(&self.state, &request.reference)
            .ok()
            .flatten()
            .map(|record| record.to_proto());
        let listed = match &pulled {
            Ok(_) => self.listed().await,
            Err(_) => None,
        };
        respond(pulled.map(|pulled| PullImageResponse {
            image_id: pulled.record.id,
            image_ref: pulled.name,
            written,
            read_at,
            listed,
        }))
    }

    async fn get_image(&self, request: Request<GetImageRequest>) -> RpcResult<Image> {
        let reference = request.into_inner().reference;
        respond(
            find_image(&self.state, &reference)
                .and_then(|found| found.ok_or(ImageError::NotFound(reference)))
                .map(|record| record.to_proto()),
        )
    }

    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> RpcResult<ListImagesResponse> {
        let reference = request.into_inner().reference;
        if reference.is_empty() {
            return respond(self.state.records.all().map(|records| to_listed(&records)));
        }
        respond(find_image(&self.state, &reference).map(|found| to_listed(found.as_slice())))
    }

    async fn release_unrecorded_owners(
        &self,
        _: Request<ReleaseUnrecordedOwnersRequest>,
    ) -> RpcResult<ReleaseUnrecordedOwnersResponse> {
        respond(
            reconcile::reconcile_owners(&self.state)
                .await
                .map(|released| ReleaseUnrecordedOwnersResponse {
                    released: released as u32,
                }),
        )
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> RpcResult<RemoveImageResponse> {
        let reference = request.into_inner().reference;
        let removed = image_remove::remove_image(&self.state, &reference).await;
        let read_at = self.state.records.changes().count();
        let listed = match &removed {
            Ok(()) => self.listed().await,
            Err(_) => None,
        };
        respond(removed.map(|()| RemoveImageResponse { listed, read_at }))
    }
}
