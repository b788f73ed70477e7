use std::time::Duration;

use crimson_api::daemon::v1::daemon_server::DaemonServer;
use crimson_config::{Config, Daemon};
use tokio_stream::{StreamExt, wrappers::UnixListenerStream};
use tonic::service::Routes;

use crate::{
    AuthorityRepair, RpcError,
    call_scope::{CallScopeLayer, InFlight},
    change_stamp::DaemonChanges,
    info::{InfoService, StateCounts, count_start},
    listener::Listener,
};

/// How long a stopping daemon lets the calls in flight finish before it exits anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How long the last answers get to reach their callers once no call is in flight.
const LAST_ANSWERS: Duration = Duration::from_millis(200);

/// Serves `routes` on a fresh bind of `daemon`'s socket; see [`serve_on`].
pub async fn serve(
    daemon: Daemon,
    config: &Config,
    counts: StateCounts,
    changes: Option<crimson_store::Changes>,
    routes: Routes,
) -> Result<(), RpcError> {
    let listener = Listener::bind(&config.socket(daemon)).await?;
    serve_on(daemon, config, listener, counts, changes, routes).await
}

/// Serves `routes` plus health and daemon info (with `counts` of its state, how many times it
/// started on its state directory, the metrics of every call and the count of its database's
/// `changes`, if it keeps one) on `listener` until SIGTERM
/// or SIGINT. Then it
/// stops accepting (connections made from then on wait in the socket's backlog for the next
/// process when the socket is inherited), lets the calls in flight finish for at most
/// [`DRAIN_LIMIT`] (long-lived streams end with the process), and removes the socket unless it
/// is inherited.
pub async fn serve_on(
    daemon: Daemon,
    config: &Config,
    listener: Listener,
    counts: StateCounts,
    changes: Option<crimson_store::Changes>,
    routes: Routes,
) -> Result<(), RpcError> {
    let starts = count_start(&config.state_dir(daemon));
    crimson_metrics::init(daemon).set_starts(starts);
    let path = listener.path().to_path_buf();
    let inherited = listener.is_inherited();
    let changes = changes.map(DaemonChanges::new);
    let (_health, health_service) = tonic_health::server::health_reporter();
    let routes = routes
        .add_service(health_service)
        .add_service(DaemonServer::new(InfoService::new(
            daemon,
            starts,
            counts,
            changes.clone(),
        )));
    let in_flight = InFlight::new();
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = shutdown_signal()?;
    tracing::info!(socket = %path.display(), inherited, "{daemon} serving");
    let serving = tonic::transport::Server::builder()
        .layer(CallScopeLayer {
            in_flight: in_flight.clone(),
            changes,
        })
        .trace_fn(crimson_telemetry::server_span)
        .add_routes(routes)
        .serve_with_incoming_shutdown(repaired(listener), async move {
            shutdown.await;
            let _ = stopping.send(());
        });
    let drained = async {
        if stopped.await.is_err() {
            return std::future::pending().await;
        }
        if in_flight.drained(DRAIN_LIMIT).await {
            tokio::time::sleep(LAST_ANSWERS).await;
        } else {
            tracing::warn!("calls still in flight after {DRAIN_LIMIT:?}; exiting anyway");
        }
    };
    let result = tokio::select! {
        served = serving => served.map_err(|source| RpcError::Serve { path: path.clone(), source }),
        () = drained => Ok(()),
    };
    if !inherited {
        let _ = std::fs::remove_file(&path);
    }
    tracing::info!("{daemon} stopped");
    result
}

/// The connections accepted on `listener`, each behind an [`AuthorityRepair`].
fn repaired(
    listener: Listener,
) -> impl tokio_stream::Stream<Item = std::io::Result<AuthorityRepair<tokio::net::UnixStream>>> {
    UnixListenerStream::new(listener.into_inner())
        .map(|accepted| accepted.map(AuthorityRepair::new))
}

/// Installs the SIGTERM and SIGINT handlers at once (so a signal that arrives before the
/// answer is first awaited, while the first calls are already served, is not fatal) and
/// resolves at the first of them.
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()>, RpcError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(RpcError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RpcError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        }
    })
}
