//! The streaming server: exec, attach and port-forward URLs handed out by the CRI calls of
//! the same names, served here over SPDY/3.1, WebSocket or SPDY tunnelled in WebSocket (optionally TLS). Each URL carries a
//! single-use token that expires; anything else on this port gets 404.

pub mod relay;
pub mod spdy;
pub mod tokens;
pub mod tunnel;
pub mod websocket;

mod http;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crimson_config::CriConfig;
use tokio::net::TcpListener;
use tonic::Status;

use crate::{Backends, CriError};
pub use tokens::{PortForwardTarget, ProcessStreams, StreamRequest};

/// The running server.
pub struct StreamingServer {
    tokens: tokens::Tokens,
    base_url: String,
    backends: Arc<Backends>,
}

impl StreamingServer {
    /// Binds the configured address and serves in the background.
    pub async fn start(config: &CriConfig, backends: Arc<Backends>) -> Result<Arc<Self>, CriError> {
        let bind_error = |e: std::io::Error| {
            CriError::Streaming(format!(
                "binding {}:{}: {e}",
                config.stream_address, config.stream_port
            ))
        };
        let listener = TcpListener::bind((config.stream_address.as_str(), config.stream_port))
            .await
            .map_err(bind_error)?;
        let local: SocketAddr = listener.local_addr().map_err(bind_error)?;
        let tls = match (&config.stream_tls_cert, &config.stream_tls_key) {
            (Some(cert), Some(key)) => Some(http::tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(CriError::Streaming(
                    "stream_tls_cert and stream_tls_key go together".into(),
                ));
            }
        };
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            local.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = Arc::new(Self {
            tokens: tokens::Tokens::new(Duration::from_secs(config.stream_token_ttl_secs)),
            base_url: format!("{scheme}://{host}:{}", local.port()),
            backends,
        });
        tracing::info!(url = %server.base_url, "streaming server listening");
        tokio::spawn(http::accept_loop(listener, tls, server.clone()));
        Ok(server)
    }

    /// A URL serving `request` once.
    pub fn url_for(&self, request: StreamRequest) -> Result<String, Status> {
        let path = match &request {
            StreamRequest::Exec(_) => "exec",
            StreamRequest::Attach(_) => "attach",
            StreamRequest::PortForward(_) => "portforward",
        };
        let token = self.tokens.issue(request)?;
        Ok(format!("{}/{path}/{token}", self.base_url))
    }
}
