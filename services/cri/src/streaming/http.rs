//! HTTP side of the streaming server: routes `/exec|attach|portforward/<token>`, checks the
//! token, negotiates the upgrade (WebSocket or SPDY/3.1) and hands the connection over.

use std::{convert::Infallible, path::Path, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

use super::{
    StreamRequest, StreamingServer,
    relay::ProcessKind,
    spdy::{self, remote},
    tunnel,
    websocket::{self, Protocol},
};
use crate::CriError;

type Reply = Response<Full<Bytes>>;

/// Port-forward over WebSocket: SPDY tunnelled in binary messages, or the channel protocol.
const PORT_FORWARD_OVER_WEBSOCKET: &[&str] = &[
    tunnel::SPDY_PORT_FORWARD,
    websocket::PORT_FORWARD[0],
    websocket::PORT_FORWARD[1],
];

fn reply(status: StatusCode, body: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A TLS acceptor for the PEM certificate chain and key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, CriError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let fail = |e: String| CriError::Streaming(format!("stream TLS: {e}"));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(format!("{}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("{}: {e}", cert.display())))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| fail(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| fail(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections forever.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    server: Arc<StreamingServer>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tls, server) = (tls.clone(), server.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, server).await;
                    }
                }
                None => serve_connection(stream, server).await,
            }
        });
    }
}

async fn serve_connection<IO>(io: IO, server: Arc<StreamingServer>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(route(request, server)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn route(request: Request<Incoming>, server: Arc<StreamingServer>) -> Reply {
    if request.method() != Method::GET && request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let mut parts = request.uri().path().trim_start_matches('/').splitn(2, '/');
    let (Some(kind), Some(token)) = (parts.next(), parts.next()) else {
        return reply(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    // The token is used up even when the path does not match it.
    let Some(granted) = server
        .tokens
        .take(token)
        .filter(|granted| path_matches(kind, granted))
    else {
        return reply(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let headers = request.headers().clone();
    let upgrade = header_values(&headers, "upgrade")
        .join(",")
        .to_ascii_lowercase();
    if upgrade.contains("websocket") {
        upgrade_websocket(request, &headers, granted, server)
    } else if upgrade.contains("spdy/3.1") {
        upgrade_spdy(request, &headers, granted, server)
    } else {
        reply(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request\n",
        )
    }
}

fn path_matches(kind: &str, granted: &StreamRequest) -> bool {
    matches!(
        (kind, granted),
        ("exec", StreamRequest::Exec(_))
            | ("attach", StreamRequest::Attach(_))
            | ("portforward", StreamRequest::PortForward(_))
    )
}

fn switching(upgrade: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(upgrade));
    response
}

fn upgrade_websocket(
    request: Request<Incoming>,
    headers: &HeaderMap,
    granted: StreamRequest,
    server: Arc<StreamingServer>,
) -> Reply {
    let Some(key) = headers.get("sec-websocket-key") else {
        return reply(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    let offered = header_values(headers, "sec-websocket-protocol");
    let supported = if matches!(granted, StreamRequest::PortForward(_)) {
        PORT_FORWARD_OVER_WEBSOCKET
    } else {
        websocket::REMOTE_COMMAND
    };
    let Some(chosen) = websocket::choose(&offered, supported) else {
        return reply(
            StatusCode::FORBIDDEN,
            &format!("unable to upgrade: no supported protocol in {offered:?}\n"),
        );
    };
    let mut response = switching("websocket");
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    response.headers_mut().insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&accept).expect("base64 is a valid header"),
    );
    if !chosen.is_empty() {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(chosen).expect("a known protocol name"),
        );
    }
    let protocol = Protocol::parse(chosen);
    let tunnelled = chosen == tunnel::SPDY_PORT_FORWARD;
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let backends = server.backends.clone();
        match granted {
            StreamRequest::Exec(streams) => {
                websocket::serve_process(socket, protocol, backends, ProcessKind::Exec, streams)
                    .await
            }
            StreamRequest::Attach(streams) => {
                websocket::serve_process(socket, protocol, backends, ProcessKind::Attach, streams)
                    .await
            }
            StreamRequest::PortForward(target) if tunnelled => {
                spdy::port_forward::serve(tunnel::byte_stream(socket), backends, target).await
            }
            StreamRequest::PortForward(target) => {
                websocket::serve_port_forward(socket, protocol, backends, target).await
            }
        }
    });
    response
}

fn upgrade_spdy(
    request: Request<Incoming>,
    headers: &HeaderMap,
    granted: StreamRequest,
    server: Arc<StreamingServer>,
) -> Reply {
    let offered = header_values(headers, "x-stream-protocol-version");
    if offered.is_empty() {
        return reply(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: X-Stream-Protocol-Version is required\n",
        );
    }
    let supported: &[&str] = if matches!(granted, StreamRequest::PortForward(_)) {
        &[spdy::port_forward::PROTOCOL]
    } else {
        remote::PROTOCOLS
    };
    let Some(chosen) = offered
        .iter()
        .find(|p| supported.contains(p))
        .map(|p| p.to_string())
    else {
        let mut response = reply(
            StatusCode::FORBIDDEN,
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}\n"
            ),
        );
        for protocol in supported {
            response.headers_mut().append(
                "x-accepted-stream-protocol-versions",
                HeaderValue::from_static(protocol),
            );
        }
        return response;
    };
    let mut response = switching("SPDY/3.1");
    response.headers_mut().insert(
        "x-stream-protocol-version",
        HeaderValue::from_str(&chosen).expect("a known protocol name"),
    );
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let backends = server.backends.clone();
        let version = remote::version_of(&chosen);
        match granted {
            StreamRequest::Exec(streams) => {
                remote::serve(io, version, backends, ProcessKind::Exec, streams).await
            }
            StreamRequest::Attach(streams) => {
                remote::serve(io, version, backends, ProcessKind::Attach, streams).await
            }
            StreamRequest::PortForward(target) => {
                spdy::port_forward::serve(io, backends, target).await
            }
        }
    });
    response
}
