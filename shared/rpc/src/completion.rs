use std::future::Future;

use tracing::Instrument;

/// Runs `work` in its own task and waits for it. A caller that goes away (its connection
/// broke, its daemon died, its deadline passed) then never stops a change half-way: the work
/// finishes, and the caller's retry finds it done.
pub async fn to_completion<T, F>(work: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(work.in_current_span()).await {
        Ok(done) => done,
        // The task is never aborted, so this is its panic, passed on.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_work_finishes_when_its_caller_goes_away() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn(to_completion(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = done.send(());
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        caller.abort();
        tokio::time::timeout(Duration::from_secs(5), finished)
            .await
            .expect("the work went on")
            .unwrap();
    }
}
