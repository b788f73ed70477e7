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

/// Binds `address` and serves scrapes in the background.
pub async fn start(address: &str, backends: Arc<Backends>) -> Result<(), CriError> {
    let failed = |e: std::io::Error| CriError::Metrics(format!("binding {address}: {e}"));
    match parse(address) {
        Address::Tcp(address) => {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .map_err(failed)?;
            tracing::info!(%address, "serving metrics");
            tokio::spawn(serve_all(TcpListenerStream::new(listener), backends));
        }
        Address::Unix(path) => {
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path).map_err(failed)?;
            tracing::info!(socket = %path.display(), "serving metrics");
            tokio::spawn(serve_all(UnixListenerStream::new(listener), backends));
        }
    }
    Ok(())
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
