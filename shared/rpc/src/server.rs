use std::{os::unix::fs::PermissionsExt, path::Path};

use crimson_api::daemon::v1::daemon_server::DaemonServer;
use crimson_config::Daemon;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;

use crate::{RpcError, info::InfoService, socket::prepare_socket_path};

/// Serves `routes` plus health and daemon info on `socket` until SIGTERM or SIGINT, then
/// finishes in-flight requests and removes the socket.
pub async fn serve(daemon: Daemon, socket: &Path, routes: Routes) -> Result<(), RpcError> {
    prepare_socket_path(socket).await?;
    let listener = UnixListener::bind(socket).map_err(|source| RpcError::Bind {
        path: socket.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        RpcError::Bind {
            path: socket.to_path_buf(),
            source,
        }
    })?;
    let (_health, health_service) = tonic_health::server::health_reporter();
    let routes = routes
        .add_service(health_service)
        .add_service(DaemonServer::new(InfoService::new(daemon)));
    tracing::info!(socket = %socket.display(), "{daemon} serving");
    let result = tonic::transport::Server::builder()
        .trace_fn(crimson_telemetry::server_span)
        .add_routes(routes)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown_signal())
        .await
        .map_err(|source| RpcError::Serve {
            path: socket.to_path_buf(),
            source,
        });
    let _ = std::fs::remove_file(socket);
    tracing::info!("{daemon} stopped");
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
