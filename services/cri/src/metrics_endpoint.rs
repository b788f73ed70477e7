//! The node's Prometheus endpoint (`[metrics] address`, off by default): `GET /metrics`
//! answers the front door's families and each backend's (fetched over `crimson.daemon.v1`
//! at every scrape), merged into one exposition, with `crimson_daemon_up` saying which
//! daemons answered. A backend that is down is `crimson_daemon_up{daemon=...} 0`, never a
//! failed scrape.

use std::{convert::Infallible, path::PathBuf, sync::Arc};

use bytes::Bytes;
use crimson_api::daemon::v1::{GetMetricsRequest, daemon_client::DaemonClient};
use crimson_config::Daemon;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{TcpListenerStream, UnixListenerStream},
};

use crate::{Backends, CriError};

/// Where the endpoint listens.
enum Address {
    Tcp(String),
    Unix(PathBuf),
}

fn parse(address: &str) -> Address {
    match address.strip_prefix("unix:") {
        Some(path) => Address::Unix(path.into()),
        None if address.starts_with('/') => Address::Unix(address.into()),
        None => Address::Tcp(address.to_string()),
    }
}

/// The endpoint: off, or serving at one address; moved or switched on SIGHUP.
pub struct MetricsEndpoint {
    backends: Arc<Backends>,
    serving: tokio::sync::Mutex<Option<Serving>>,
}

/// The accept loop at one address; stopped (its unix socket removed) when dropped.
struct Serving {
    address: String,
    accepting: tokio::task::JoinHandle<()>,
    socket: Option<PathBuf>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.accepting.abort();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(address = %self.address, "metrics endpoint stopped");
    }
}

impl MetricsEndpoint {
    /// An endpoint that is off, answering scrapes from `backends` once started.
    pub fn new(backends: Arc<Backends>) -> Self {
        Self {
            backends,
            serving: tokio::sync::Mutex::new(None),
        }
    }

    /// Serves scrapes in the background at `address` (stopping the endpoint at another
    /// address first), or stops serving for `None`.
    pub async fn serve_at(&self, address: Option<&str>) -> Result<(), CriError> {
        let mut serving = self.serving.lock().await;
        if serving.as_ref().map(|s| s.address.as_str()) == address {
            return Ok(());
        }
        *serving = None;
        if let Some(address) = address {
            *serving = Some(self.bind(address).await?);
        }
        Ok(())
    }

    async fn bind(&self, address: &str) -> Result<Serving, CriError> {
        let failed = |e: std::io::Error| CriError::Metrics(format!("binding {address}: {e}"));
        let backends = self.backends.clone();
        let (accepting, socket) = match parse(address) {
            Address::Tcp(tcp) => {
                let listener = tokio::net::TcpListener::bind(&tcp).await.map_err(failed)?;
                let incoming = TcpListenerStream::new(listener);
                (tokio::spawn(serve_all(incoming, backends)), None)
            }
            Address::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let listener = tokio::net::UnixListener::bind(&path).map_err(failed)?;
                let incoming = UnixListenerStream::new(listener);
                (tokio::spawn(serve_all(incoming, backends)), Some(path))
            }
        };
        tracing::info!(%address, "serving metrics");
        Ok(Serving {
            address: address.to_string(),
            accepting,
            socket,
        })
    }
}

/// Serves each connection `incoming` accepts, until accepting fails.
async fn serve_all<IO>(
    mut incoming: impl Stream<Item = std::io::Result<IO>> + Unpin,
    backends: Arc<Backends>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(Ok(stream)) = incoming.next().await {
        tokio::spawn(serve_connection(stream, backends.clone()));
    }
}

async fn serve_connection<IO>(io: IO, backends: Arc<Backends>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let backends = backends.clone();
        async move { Ok::<_, Infallible>(answer(request, &backends).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn answer(request: Request<Incoming>, backends: &Backends) -> Response<Full<Bytes>> {
    let (status, content_type, body) =
        if request.method() == Method::GET && request.uri().path() == "/metrics" {
            (
                StatusCode::OK,
                crimson_metrics::CONTENT_TYPE,
                scrape(backends).await,
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "GET /metrics\n".into(),
            )
        };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// One exposition for the node.
pub async fn scrape(backends: &Backends) -> String {
    let own = crimson_metrics::init(Daemon::Cri).render();
    let peers = [
        &backends.image,
        &backends.storage,
        &backends.sandbox,
        &backends.network,
    ];
    let answers = futures::future::join_all(peers.map(|peer| async move {
        let answer = Backends::probe(peer, |channel| async move {
            DaemonClient::new(channel)
                .get_metrics(GetMetricsRequest {})
                .await
        })
        .await;
        (peer.daemon(), answer.map(|metrics| metrics.text))
    }))
    .await;
    let mut up = String::from(
        "# HELP crimson_daemon_up Whether the daemon answered this scrape (1) or not (0).\n\
         # TYPE crimson_daemon_up gauge\ncrimson_daemon_up{daemon=\"cri\"} 1\n",
    );
    let mut parts = vec![own];
    for (daemon, answer) in answers {
        let answered = answer.is_ok();
        up.push_str(&format!(
            "crimson_daemon_up{{daemon=\"{}\"}} {}\n",
            daemon.short_name(),
            u8::from(answered)
        ));
        if let Ok(text) = answer {
            parts.push(text);
        }
    }
    parts.push(up);
    crimson_metrics::merge(parts.iter().map(String::as_str))
}
