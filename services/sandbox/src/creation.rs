//! Creating a pod or container exactly once per kubelet name, even across kubelet retries.
//!
//! kubelet gives RunPodSandbox and CreateContainer a deadline and repeats the same request when
//! it expires. The work runs in its own task, holding the name's lock, so it finishes whatever
//! happens to the call. If the caller is still there, it gets the result; if it went away, the
//! result is parked under the name and the next identical request gets it. An identical request
//! finding the object made and still usable (a ready pod, a created or running container) gets
//! it too: its answer may have been lost with a daemon killed after saving it. A request for a
//! name whose object is no longer usable fails with ALREADY_EXISTS. A request that finds an
//! earlier creation of its name still running waits at most [`NAME_WAIT`], then answers
//! UNAVAILABLE, so kubelet's retries never pile up behind a slow one (every step of a creation
//! has its own time limit, so the name is always released).

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::oneshot;
use tracing::Instrument;

use crate::{Result, SandboxError, state::State};

/// How long a request waits for an earlier creation of the same name.
pub const NAME_WAIT: Duration = Duration::from_secs(30);

/// What already exists under a kubelet name.
pub enum Existing {
    /// Nothing: the creation runs.
    Nothing,
    /// The object, made and usable: the answer to an identical request.
    Usable(String),
    /// An object no longer usable (a stopped pod, an exited container): ALREADY_EXISTS.
    Spent,
}

/// Runs `work` for `key` unless a parked result or an existing object answers first.
/// `existing` looks the name up (under the name's lock).
pub async fn once<W, Fut, E>(state: Arc<State>, key: String, existing: E, work: W) -> Result<String>
where
    W: FnOnce(Arc<State>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<String>> + Send + 'static,
    E: FnOnce(&State) -> Result<Existing> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let task_state = state.clone();
    // Its reads count as the call's (the front door keeps what the call answers by them).
    let reads = crimson_store::ReadRecorder::current().unwrap_or_default();
    tokio::spawn(reads.scope(
        async move {
            let Ok(_name) = tokio::time::timeout(NAME_WAIT, task_state.name_locks.lock(&key)).await
            else {
                let _ = reply.send(Err(SandboxError::Busy(key)));
                return;
            };
            let result = match task_state.parked.claim(&key).await {
                Ok(Some(id)) => Ok(id),
                Ok(None) => match existing(&task_state) {
                    Ok(Existing::Nothing) => work(task_state.clone()).await,
                    Ok(Existing::Usable(id)) => Ok(id),
                    Ok(Existing::Spent) => Err(SandboxError::AlreadyExists(key.clone())),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if let Err(Ok(id)) = reply.send(result) {
                match task_state.parked.park(&key, &id).await {
                    Ok(()) => tracing::info!(%key, %id, "caller went away; result kept for its retry"),
                    Err(error) => {
                        tracing::warn!(%key, %id, %error, "caller went away; could not keep the result")
                    }
                }
            }
        }
        .instrument(tracing::Span::current()),
    ));
    answer.await.map_err(|_| {
        SandboxError::runtime("creating", "the creation task ended without an answer")
    })?
}
