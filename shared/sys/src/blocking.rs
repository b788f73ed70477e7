use std::time::Duration;

/// Why blocking work gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    /// It did not finish within its limit. The thread may still be running it; the caller
    /// stops waiting and fails its request.
    #[error("{what}: no answer within {after:?}")]
    TimedOut {
        /// What was being done.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// It panicked.
    #[error("{what}: the blocking task panicked")]
    Panicked {
        /// What was being done.
        what: &'static str,
    },
}

/// Runs `work` on tokio's blocking pool and waits at most `limit` for its answer; a time-out
/// or panic becomes the caller's error type.
pub async fn blocking<T, E, F>(what: &'static str, limit: Duration, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<BlockingError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(BlockingError::Panicked { what }.into()),
        Err(_) => Err(BlockingError::TimedOut { what, after: limit }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_within_the_limit() {
        let answer: Result<i32, BlockingError> =
            blocking("adding", Duration::from_secs(5), || Ok(2 + 2)).await;
        assert_eq!(answer.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_hung_step_times_out_and_a_panic_is_reported() {
        let hung: Result<(), BlockingError> =
            blocking("sleeping", Duration::from_millis(20), || {
                std::thread::sleep(Duration::from_millis(500));
                Ok(())
            })
            .await;
        assert!(
            matches!(
                hung,
                Err(BlockingError::TimedOut {
                    what: "sleeping",
                    ..
                })
            ),
            "{hung:?}"
        );
        let panicked: Result<(), BlockingError> =
            blocking("panicking", Duration::from_secs(5), || panic!("boom")).await;
        assert!(
            matches!(panicked, Err(BlockingError::Panicked { .. })),
            "{panicked:?}"
        );
    }
}
