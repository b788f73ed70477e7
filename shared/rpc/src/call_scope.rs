//! A tower layer around every served call: it makes the caller's gRPC deadline known to the
//! handler (so retries towards a peer stop in time), answers DEADLINE_EXCEEDED when it passes
//! (tonic's own timeout answers CANCELLED, which gRPC reserves for a caller that gave up),
//! counts the calls in flight (so a shutting-down daemon knows when it has drained), stamps
//! each answer with the daemon's write count before and after the call ([`ChangeStamp`]) and
//! records each call's code and latency in the daemon's metrics.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use crimson_metrics::RpcOutcome;
use tokio::sync::watch;

use crimson_store::ReadRecorder;

use crate::change_stamp::{
    CHANGE_STAMP_HEADER, ChangeStamp, DaemonChanges, READS_HEADER, WRITES_HEADER, footprint_header,
};

tokio::task_local! {
    static CALLER_DEADLINE: Option<Instant>;
}

/// The deadline the caller of the call being served sent (`grpc-timeout`), if any. Outside a
/// served call (spawned tasks, background work) there is none.
pub fn caller_deadline() -> Option<Instant> {
    CALLER_DEADLINE
        .try_with(|deadline| *deadline)
        .ok()
        .flatten()
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The gRPC code of a response, by its Go name (as other gRPC servers' metrics call it): a
/// failure is answered in the headers (trailers-only); a handler that answered has OK there
/// (a stream that fails later still counts as OK).
fn code_name(headers: &http::HeaderMap) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or("OK", |code| NAMES.get(code).copied().unwrap_or("Unknown"))
}

/// How much earlier than tonic's own timeout this layer answers, so its answer is the one sent.
const BEFORE_TONIC: Duration = Duration::from_millis(1);

/// How many calls are being answered; a daemon that stops waits for zero.
#[derive(Clone)]
pub(crate) struct InFlight(watch::Sender<usize>);

impl InFlight {
    pub(crate) fn new() -> Self {
        Self(watch::Sender::new(0))
    }

    fn enter(&self) -> InFlightGuard {
        self.0.send_modify(|n| *n += 1);
        InFlightGuard(self.0.clone())
    }

    /// Waits until no call is in flight, for at most `limit`; false if some still were.
    pub(crate) async fn drained(&self, limit: Duration) -> bool {
        let mut count = self.0.subscribe();
        tokio::time::timeout(limit, count.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }
}

struct InFlightGuard(watch::Sender<usize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The layer; see the module docs.
#[derive(Clone)]
pub(crate) struct CallScopeLayer {
    pub(crate) in_flight: InFlight,
    /// The daemon's write count, for daemons that keep a database.
    pub(crate) changes: Option<DaemonChanges>,
}

impl<S> tower::Layer<S> for CallScopeLayer {
    type Service = CallScope<S>;

    fn layer(&self, inner: S) -> CallScope<S> {
        CallScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CallScopeLayer`] makes.
#[derive(Clone)]
pub(crate) struct CallScope<S> {
    inner: S,
    layer: CallScopeLayer,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for CallScope<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|timeout| Instant::now() + timeout);
        let guard = self.layer.in_flight.enter();
        let changes = self.layer.changes.clone();
        let before = changes.as_ref().map(DaemonChanges::current);
        let (path, started) = (request.uri().path().to_string(), Instant::now());
        let recorder = ReadRecorder::default();
        let answer = recorder.scope(recorder.enter(|| self.inner.call(request)));
        Box::pin(CALLER_DEADLINE.scope(deadline, async move {
            let response = match deadline {
                None => answer.await,
                Some(deadline) => {
                    let answer_by = deadline.checked_sub(BEFORE_TONIC).unwrap_or(deadline);
                    tokio::time::timeout_at(answer_by.into(), answer)
                        .await
                        .unwrap_or_else(|_| {
                            let late =
                                tonic::Status::deadline_exceeded("the caller's deadline passed");
                            Ok(late.into_http())
                        })
                }
            };
            drop(guard);
            let mut response = response;
            if let (Some(changes), Some(before), Ok(answered)) = (changes, before, &mut response) {
                let stamp = ChangeStamp {
                    run: changes.run,
                    before,
                    after: changes.current(),
                };
                let headers = answered.headers_mut();
                if let Some(value) = stamp.header_value() {
                    headers.insert(CHANGE_STAMP_HEADER, value);
                }
                if let Some(value) = footprint_header(&recorder.footprint()) {
                    headers.insert(READS_HEADER, value);
                }
                if stamp.after > stamp.before {
                    let written = changes.changes.written_between(stamp.before, stamp.after);
                    if let Some(value) = footprint_header(&written) {
                        headers.insert(WRITES_HEADER, value);
                    }
                }
            }
            if let (Some(metrics), Ok(answered)) = (crimson_metrics::get(), &response) {
                metrics.record_rpc(RpcOutcome {
                    path: &path,
                    code: code_name(answered.headers()),
                    elapsed: started.elapsed(),
                });
            }
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::Layer;

    /// The layer of a daemon without a database.
    fn untracked(in_flight: InFlight) -> CallScopeLayer {
        CallScopeLayer {
            in_flight,
            changes: None,
        }
    }

    #[tokio::test]
    async fn answers_carry_the_write_count_and_what_the_call_read_and_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = crimson_store::Store::open(dir.path(), 1, &[]).unwrap();
        let tree = store.tree::<u32>("pods").unwrap();
        tree.put("old", &1).unwrap();
        let changes = DaemonChanges::new(store.changes().clone());
        let run = changes.run;
        let inner = tower::service_fn(move |_: http::Request<()>| {
            let _ = tree.get("read");
            tree.put("a", &2).unwrap();
            tree.put("b", &3).unwrap();
            async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
        });
        let mut service = CallScopeLayer {
            in_flight: InFlight::new(),
            changes: Some(changes),
        }
        .layer(inner);
        let response = tower::Service::call(&mut service, http::Request::new(()))
            .await
            .unwrap();
        let metadata = tonic::metadata::MetadataMap::from_headers(response.headers().clone());
        assert_eq!(
            ChangeStamp::from_metadata(&metadata),
            Some(ChangeStamp {
                run,
                before: 1,
                after: 3
            })
        );
        let footprint = |header| {
            let found = crate::footprint_from_metadata(&metadata, header);
            found
                .keys
                .into_iter()
                .map(|(_, key)| key)
                .collect::<Vec<_>>()
        };
        assert_eq!(footprint(READS_HEADER), ["read"]);
        assert_eq!(footprint(WRITES_HEADER), ["a", "b"]);
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_bad_ones_do_not() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "10x", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_answers_deadline_exceeded() {
        let inner = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
        let mut service = untracked(InFlight::new()).layer(inner);
        let request = http::Request::builder()
            .header("grpc-timeout", "20m")
            .body(())
            .unwrap();
        let response = tower::Service::call(&mut service, request).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(code_name(response.headers()), "DeadlineExceeded");
        assert_eq!(code_name(&http::HeaderMap::new()), "OK");
    }

    #[tokio::test]
    async fn the_deadline_is_seen_inside_the_call_only() {
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(caller_deadline()))
        });
        let mut service = untracked(InFlight::new()).layer(inner);
        let request = http::Request::builder()
            .header("grpc-timeout", "5S")
            .body(())
            .unwrap();
        let before = Instant::now();
        let seen = tower::Service::call(&mut service, request).await.unwrap();
        let deadline = seen.into_body().expect("the deadline inside the call");
        assert!(deadline >= before + Duration::from_secs(5));
        assert!(deadline <= Instant::now() + Duration::from_secs(5));
        let without = tower::Service::call(&mut service, http::Request::new(()))
            .await
            .unwrap();
        assert_eq!(without.into_body(), None);
        assert_eq!(caller_deadline(), None);
    }

    #[tokio::test]
    async fn drained_waits_for_the_calls_in_flight() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = std::sync::Mutex::new(Some(released));
        let inner = tower::service_fn(move |_: http::Request<()>| {
            let released = released.lock().unwrap().take();
            async move {
                if let Some(released) = released {
                    let _ = released.await;
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        });
        let in_flight = InFlight::new();
        let mut service = untracked(in_flight.clone()).layer(inner);
        let call = tokio::spawn(tower::Service::call(&mut service, http::Request::new(())));
        assert!(!in_flight.drained(Duration::from_millis(50)).await);
        release.send(()).unwrap();
        call.await.unwrap().unwrap();
        assert!(in_flight.drained(Duration::from_millis(50)).await);
    }
}
