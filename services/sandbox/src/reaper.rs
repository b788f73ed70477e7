//! This daemon is a child subreaper: conmon monitors (double-forked) and detached exec
//! processes become its children. The reaper collects every child that exits (whatever its
//! container's phase; tokio's own children excepted, see [`crate::runtime::children`]) and
//! notices container exits (conmon's exit files) so that events are published even when
//! nobody asks for a container's status.

use std::{sync::Arc, time::Duration};

use crate::{
    container::{refresh::refresh, remove::finish_in_background},
    records::ContainerPhase,
    runtime::children::children,
    state::State,
};

/// How often exits are looked for without a SIGCHLD.
const PERIOD: Duration = Duration::from_secs(1);
/// Least time between two sweeps, so a burst of SIGCHLDs costs one sweep.
const SETTLE: Duration = Duration::from_millis(50);

/// Makes this process a subreaper (so orphaned monitors are reaped here, not by a slow PID 1).
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "could not become a child subreaper");
    }
}

/// Runs the loop: on SIGCHLD or every [`PERIOD`].
pub fn spawn(state: Arc<State>) {
    tokio::spawn(async move {
        let mut sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGCHLD stream; polling only");
                None
            }
        };
        loop {
            match &mut sigchld {
                Some(signal) => {
                    let _ = tokio::time::timeout(PERIOD, signal.recv()).await;
                }
                None => tokio::time::sleep(PERIOD).await,
            }
            tokio::time::sleep(SETTLE).await;
            match tokio::task::spawn_blocking(|| children().reap()).await {
                Ok(reaped) if !reaped.is_empty() => {
                    tracing::debug!(count = reaped.len(), "reaped children")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaping children"),
            }
            if let Err(e) = sweep(&state).await {
                tracing::debug!(error = %e, "reaper sweep");
            }
        }
    });
}

/// Refreshes every container that may have ended since it was last looked at, and takes up
/// removals that failed or that a restart interrupted.
async fn sweep(state: &Arc<State>) -> crate::Result<()> {
    for record in state.containers.values()? {
        if record.phase == ContainerPhase::Removing {
            finish_in_background(state, &record.id);
            continue;
        }
        if !matches!(
            record.phase,
            ContainerPhase::Created | ContainerPhase::Running
        ) {
            continue;
        }
        let _guard = state.container_locks.lock(&record.id).await;
        if let Some(latest) = state.containers.get(&record.id)? {
            refresh(state, latest).await?;
        }
    }
    Ok(())
}
