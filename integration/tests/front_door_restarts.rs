//! The front door restarts without refusing a connection (its socket is held across the
//! restart by the holder `crimsonctl up` starts, or by systemd's socket activation), drains its calls in flight on SIGTERM, and bounds its retries of a backend that is
//! down by the caller's gRPC deadline.

use std::time::Duration;

use crimson_config::Daemon;
use crimson_integration::{
    require_root,
    stack::{Stack, StackOptions, uncached_image_status},
};
use k8s_cri::v1::{ListImagesRequest, ListPodSandboxRequest, VersionRequest};
use tonic::Code;

fn with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_made_while_the_front_door_is_down_are_answered_by_the_next_one() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    let mut kubelet = stack.runtime();
    kubelet.version(VersionRequest::default()).await.unwrap();

    stack.kill(Daemon::Cri);
    // The existing client notices its connection closed (a call racing that would fail, as
    // one sent on a dead connection does), then reconnects on its next call.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A new client and the existing one both call while nothing runs crimson-cri.
    let mut newcomer = stack.runtime();
    let fresh = tokio::spawn(async move {
        newcomer
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
    });
    let existing = tokio::spawn(async move { kubelet.version(VersionRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fresh.is_finished(),
        "with crimson-cri down a new connection waits in the socket's backlog: {:?}",
        fresh.await
    );
    assert!(
        !existing.is_finished(),
        "with crimson-cri down the existing client's call waits: {:?}",
        existing.await
    );

    stack.start_daemon(Daemon::Cri).await;
    fresh
        .await
        .unwrap()
        .expect("the call made while the front door was down is answered");
    existing
        .await
        .unwrap()
        .expect("the existing client's call is answered too");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_calls_in_flight_finish_then_the_next_front_door_serves() {
    require_root!();
    let stack = Stack::start(StackOptions {
        backend_wait_ms: 20_000,
        ..Default::default()
    })
    .await;
    let mut images = stack.images();
    images
        .list_images(ListImagesRequest::default())
        .await
        .unwrap();

    // A call held in flight: its backend is down, so the front door keeps retrying it.
    stack.kill(Daemon::Image);
    let in_flight =
        tokio::spawn(async move { images.image_status(uncached_image_status()).await.map(drop) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cri_pid = stack.pid(Daemon::Cri).unwrap();
    let terminating = tokio::task::spawn_blocking({
        let pid = nix::unistd::Pid::from_raw(cri_pid as i32);
        move || {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            while nix::sys::signal::kill(pid, None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z")
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !terminating.is_finished(),
        "crimson-cri waits for its call in flight"
    );
    // New connections during the drain wait for the next process.
    let mut later = stack.runtime();
    let waiting = tokio::spawn(async move { later.version(VersionRequest::default()).await });

    stack.start_daemon(Daemon::Image).await;
    in_flight
        .await
        .unwrap()
        .expect("the call in flight at SIGTERM is answered");
    terminating.await.unwrap();
    assert!(
        stack.terminate(Daemon::Cri).unwrap().success(),
        "a drained front door exits cleanly"
    );
    assert!(
        stack.socket(Daemon::Cri).exists(),
        "the held socket stays after crimson-cri exits"
    );
    stack.start_daemon(Daemon::Cri).await;
    waiting
        .await
        .unwrap()
        .expect("the call made during the drain is answered by the next front door");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_of_a_backend_that_is_down_last_as_long_as_the_callers_deadline() {
    require_root!();
    let stack = Stack::start(StackOptions {
        backend_wait_ms: 300,
        ..Default::default()
    })
    .await;
    let mut images = stack.images();
    images
        .list_images(ListImagesRequest::default())
        .await
        .unwrap();
    stack.kill(Daemon::Image);

    let short = images
        .image_status(with_deadline(
            uncached_image_status(),
            Duration::from_millis(800),
        ))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::Unavailable, "{short:?}");
    assert!(short.message().contains("crimson-image"), "{short:?}");

    // Down for longer than backend_wait_ms, yet within the caller's deadline: no failure.
    let long = tokio::spawn(async move {
        images
            .image_status(with_deadline(
                uncached_image_status(),
                Duration::from_secs(60),
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!long.is_finished(), "the call waits for crimson-image");
    stack.start_daemon(Daemon::Image).await;
    long.await
        .unwrap()
        .expect("the call succeeds once crimson-image is back");
}

/// crimson-cri as systemd starts it for `crimson-cri.socket`: the listening socket as fd 3,
/// `LISTEN_FDS=1` and `LISTEN_PID` naming the process (`exec` keeps the shell's pid).
fn socket_activated_front_door(
    stack: &Stack,
    socket: &std::path::Path,
    listener: &std::os::unix::net::UnixListener,
) -> std::process::Child {
    use std::os::{fd::AsRawFd, unix::process::CommandExt};
    let fd = listener.as_raw_fd();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(crimson_integration::stack::bin_dir().join(crimson_config::DAEMON_EXECUTABLE))
        .arg("cri")
        .arg("--config")
        .arg(stack.root().join("crimson.toml"))
        .arg("--socket")
        .arg(socket);
    // SAFETY: dup2 is async-signal-safe; the new fd 3 is inherited (no close-on-exec).
    unsafe {
        command.pre_exec(move || {
            if nix::libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().expect("starting crimson-cri")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_from_systemd_is_served_and_outlives_the_front_door() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    stack.kill(Daemon::Cri);
    let socket = stack.run_dir().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let client = || {
        k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(crimson_rpc::connect_unix(
            &socket,
        ))
    };

    let mut first = socket_activated_front_door(&stack, &socket, &listener);
    crimson_integration::eventually(30, "the activated front door", || async {
        client().version(VersionRequest::default()).await.ok()
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    let mut waiting_client = client();
    let waiting =
        tokio::spawn(async move { waiting_client.version(VersionRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the socket systemd holds queues the call"
    );
    let mut second = socket_activated_front_door(&stack, &socket, &listener);
    waiting
        .await
        .unwrap()
        .expect("the next front door answers the queued call");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(second.wait().unwrap().success());
    assert!(
        socket.exists(),
        "the socket is systemd's: crimson-cri leaves it"
    );
}
