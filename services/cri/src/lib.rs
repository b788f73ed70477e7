//! crimson-cri as a library: the CRI v1 services over the backend daemons.
//!
//! The front door owns no state. Each RPC validates its request, calls the daemon that owns
//! the work through a [`crimson_rpc::Peer`] (which turns a daemon that is down into a bounded
//! wait, then UNAVAILABLE naming it), and translates the answer. The status and list reads
//! kubelet polls are answered from the daemons' last answers while nothing changed there
//! (`read_cache`). RPCs whose capability has not been built yet answer UNIMPLEMENTED naming
//! the RPC.

#![warn(missing_docs)]

mod backends;
mod cached_peer;
mod change_feed;
pub mod cli;
mod error;
mod image;
mod list_parts;
mod merged;
pub mod metrics_endpoint;
mod read_cache;
mod runtime;
pub mod streaming;

use std::sync::Arc;

use crimson_api::cri as added;
use crimson_config::Config;
use k8s_cri::v1::{
    image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer,
};
use merged::Merged;
use tonic::service::Routes;

pub use backends::Backends;
pub use error::{CriError, Result};

/// The CRI front door; cheap to clone.
#[derive(Clone)]
pub struct FrontDoor {
    backends: Arc<Backends>,
    streaming: Arc<streaming::StreamingServer>,
    metrics: Arc<metrics_endpoint::MetricsEndpoint>,
}

impl FrontDoor {
    /// A front door over the daemons `config` names, with its streaming server (and metrics
    /// endpoint, when configured) started.
    /// Nothing but the change streams of crimson-image and crimson-sandbox connects to the
    /// daemons until the first call.
    pub async fn start(config: &Config) -> Result<Self> {
        let backends = Arc::new(Backends::new(config));
        backends.follow_changes();
        let streaming = streaming::StreamingServer::start(&config.cri, backends.clone()).await?;
        let metrics = Arc::new(metrics_endpoint::MetricsEndpoint::new(backends.clone()));
        metrics.serve_at(config.metrics.address.as_deref()).await?;
        Ok(Self {
            backends,
            streaming,
            metrics,
        })
    }

    /// What the front door takes on SIGHUP: `[metrics]` (the endpoint switched on, off or
    /// moved).
    pub fn reload(&self) -> crimson_rpc::Reload {
        let metrics = self.metrics.clone();
        crimson_rpc::Reload {
            applies: |key| key.starts_with("metrics."),
            apply: Box::new(move |config| {
                let metrics = metrics.clone();
                Box::pin(async move {
                    metrics
                        .serve_at(config.metrics.address.as_deref())
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        }
    }

    /// Both CRI services as tonic routes, each with the RPCs of cri-api v0.36 that k8s-cri
    /// lacks merged in.
    pub fn into_routes(self) -> Routes {
        let runtime = Merged::new(
            RuntimeServiceServer::new(self.clone()),
            added::runtime_service_server::RuntimeServiceServer::new(self.clone()),
            &added::RUNTIME_SERVICE_PATHS,
        );
        let image = Merged::new(
            ImageServiceServer::new(self.clone()).max_decoding_message_size(16 * 1024 * 1024),
            added::image_service_server::ImageServiceServer::new(self),
            &added::IMAGE_SERVICE_PATHS,
        );
        Routes::new(runtime).add_service(image)
    }
}
