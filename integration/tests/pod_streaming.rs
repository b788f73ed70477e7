//! Exec and attach through the streaming server with SPDY/3.1 and WebSocket clients written
//! from the protocol documents (every frame is checked, not only the bytes); tokens, TLS, and
//! clients that go away or read slowly. Port-forward is in `pod_port_forward.rs`.

use std::{sync::Arc, time::Duration};

use crimson_integration::{
    eventually,
    pods::{PodEnv, read_log},
    require_root,
    stack::StackOptions,
    stream_sessions::{
        assert_well_formed, exec_request, exec_url, fin_seen, next_message, running_container,
        spdy, websocket,
    },
    streams::{SpdyEvent, stream_bytes, upgrade},
};
use futures::SinkExt;
use k8s_cri::v1::{AttachRequest, ContainerState, ExecSyncRequest};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

#[tokio::test(flavor = "multi_thread")]
async fn spdy_exec_streams_stdio_and_reports_the_exit_code() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "spdy-exec", &["sleep", "300"]).await;
    let command = [
        "sh",
        "-c",
        "echo out; echo err >&2; read line; echo got $line; exit 3",
    ];
    let url = exec_url(&env, exec_request(&id, &command, false, true, true, true)).await;

    let (mut client, protocol) = spdy(
        &url,
        &["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"],
    )
    .await;
    assert_eq!(protocol, "v4.channel.k8s.io");
    let error = client.open(&[("streamtype", "error")]).await;
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let stderr = client.open(&[("streamtype", "stderr")]).await;
    client.ping(1).await;
    client.send(stdin, b"hi\n", true).await;
    let events = client.drain().await;

    assert_well_formed(&client, &events, &[error, stdin, stdout, stderr]);
    assert!(events.contains(&SpdyEvent::Ping(1)), "PING is echoed");
    assert_eq!(
        String::from_utf8_lossy(&stream_bytes(&events, stdout)),
        "out\ngot hi\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&stream_bytes(&events, stderr)),
        "err\n"
    );
    assert!(fin_seen(&events, stdout) && fin_seen(&events, stderr) && fin_seen(&events, error));
    let status: serde_json::Value = serde_json::from_slice(&stream_bytes(&events, error)).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_exec_url_works_at_once_after_a_front_door_restart() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "after-restart", &["sleep", "300"]).await;
    env.stack.restart(crimson_config::Daemon::Cri).await;
    let url = exec_url(
        &env,
        exec_request(&id, &["echo", "served"], false, false, true, false),
    )
    .await;
    let (mut client, _) = spdy(&url, &["v4.channel.k8s.io"]).await;
    let _error = client.open(&[("streamtype", "error")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let events = client.drain().await;
    assert_eq!(
        String::from_utf8_lossy(&stream_bytes(&events, stdout)),
        "served\n"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spdy_exec_on_a_terminal_follows_resizes() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "tty", &["sleep", "300"]).await;
    let command = ["sh", "-c", "read a; stty size; read b; stty size"];
    let url = exec_url(&env, exec_request(&id, &command, true, true, true, false)).await;

    let (mut client, _) = spdy(&url, &["v4.channel.k8s.io"]).await;
    let error = client.open(&[("streamtype", "error")]).await;
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let resize = client.open(&[("streamtype", "resize")]).await;
    let mut events = Vec::new();
    client
        .send(resize, b"{\"Width\":100,\"Height\":40}\n", false)
        .await;
    client.send(stdin, b"a\r", false).await;
    while !String::from_utf8_lossy(&stream_bytes(&events, stdout)).contains("40 100") {
        // A size the command did not see shows as output that never comes: fail, not hang.
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), client.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no \"40 100\" in {:?}",
                    String::from_utf8_lossy(&stream_bytes(&events, stdout))
                )
            });
        assert!(
            event.is_some(),
            "output before the end: {}",
            String::from_utf8_lossy(&stream_bytes(&events, error))
        );
        events.push(event.unwrap());
    }
    client
        .send(resize, b"{\"Width\":80,\"Height\":20}\n", false)
        .await;
    client.send(stdin, b"b\r", false).await;
    events.extend(client.drain().await);

    let output = String::from_utf8_lossy(&stream_bytes(&events, stdout)).to_string();
    assert!(
        output.contains("40 100") && output.contains("20 80"),
        "{output:?}"
    );
    assert_well_formed(&client, &events, &[error, stdin, stdout, resize]);
    let status: serde_json::Value = serde_json::from_slice(&stream_bytes(&events, error)).unwrap();
    assert_eq!(status["status"], "Success");
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_exec_v5_v4_and_base64() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "ws-exec", &["sleep", "300"]).await;

    // v5: stdin ends with the close signal [255, 0].
    let url = exec_url(&env, exec_request(&id, &["cat"], false, true, true, false)).await;
    let mut socket = websocket(&url, "v5.channel.k8s.io").await;
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(vec![1].into()),
        "the initial empty stdout frame"
    );
    socket
        .send(Message::Binary(b"\x00hello".to_vec().into()))
        .await
        .unwrap();
    socket
        .send(Message::Binary(vec![255, 0].into()))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(b"\x01hello".to_vec().into())
    );
    let Message::Binary(status) = next_message(&mut socket).await else {
        panic!("a status frame")
    };
    assert_eq!(status[0], 3, "on the error channel");
    let status: serde_json::Value = serde_json::from_slice(&status[1..]).unwrap();
    assert_eq!(status["status"], "Success");
    let Message::Close(Some(frame)) = next_message(&mut socket).await else {
        panic!("a close frame")
    };
    assert_eq!(frame.code, CloseCode::Normal);

    // v4: a non-zero exit code.
    let url = exec_url(
        &env,
        exec_request(
            &id,
            &["sh", "-c", "echo -n x; exit 7"],
            false,
            false,
            true,
            false,
        ),
    )
    .await;
    let mut socket = websocket(&url, "v4.channel.k8s.io").await;
    let mut frames = Vec::new();
    loop {
        match next_message(&mut socket).await {
            Message::Binary(data) => frames.push(data.to_vec()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(frames[0], vec![1]);
    assert!(frames.contains(&b"\x01x".to_vec()), "{frames:?}");
    let status: serde_json::Value = serde_json::from_slice(&frames.last().unwrap()[1..]).unwrap();
    assert_eq!(status["details"]["causes"][0]["message"], "7");

    // v4.base64: text frames, channel digit then base64.
    let url = exec_url(
        &env,
        exec_request(&id, &["echo", "b64"], false, false, true, false),
    )
    .await;
    let mut socket = websocket(&url, "v4.base64.channel.k8s.io").await;
    assert_eq!(next_message(&mut socket).await, Message::Text("1".into()));
    assert_eq!(
        next_message(&mut socket).await,
        Message::Text("1YjY0Cg==".into()),
        "base64 of \"b64\\n\""
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_reaches_the_main_process() {
    require_root!();
    attach_under(StackOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_works_when_the_socket_path_passes_the_unix_limit() {
    require_root!();
    let options = StackOptions {
        run_dir_name: "a-run-root-long-enough-to-push-the-attach-socket-path-past-108".into(),
        ..Default::default()
    };
    attach_under(options).await;
}

/// Attach to a reading and echoing main process, on a stack made with `options`.
async fn attach_under(options: StackOptions) {
    let env = PodEnv::start_with(false, options).await;
    let pod = env.pod_config("attach");
    let pod_id = env.run_pod(&pod).await;
    let mut config = env.container_config(
        "echoer",
        &["sh", "-c", "while read line; do echo \"echo: $line\"; done"],
    );
    config.stdin = true;
    let id = env.run_container(&pod_id, &pod, config).await;
    env.wait_for(&id, ContainerState::ContainerRunning).await;
    let url = env
        .stack
        .runtime()
        .attach(AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url;

    let (mut client, _) = spdy(&url, &["v4.channel.k8s.io"]).await;
    let _error = client.open(&[("streamtype", "error")]).await;
    let stdin = client.open(&[("streamtype", "stdin")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let _stderr = client.open(&[("streamtype", "stderr")]).await;
    client.send(stdin, b"ping\n", false).await;
    let mut events = Vec::new();
    while !String::from_utf8_lossy(&stream_bytes(&events, stdout)).contains("echo: ping") {
        events.push(
            tokio::time::timeout(Duration::from_secs(30), client.next())
                .await
                .unwrap()
                .expect("attached output"),
        );
    }
    drop(client);
    assert_eq!(
        env.status(&id).await.state,
        ContainerState::ContainerRunning as i32,
        "detaching leaves it running"
    );
    let log = read_log(&env.status(&id).await.log_path.into());
    assert!(
        log.iter().any(|l| l.text == "echo: ping"),
        "attached output is logged too"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_single_use_expire_and_guard_the_port() {
    require_root!();
    let env = PodEnv::start_with(
        false,
        StackOptions {
            stream_token_ttl_secs: 2,
            ..Default::default()
        },
    )
    .await;
    let (pod_id, id, _) = running_container(&env, "tokens", &["sleep", "300"]).await;
    let headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
    ];

    let url = exec_url(
        &env,
        exec_request(&id, &["true"], false, false, true, false),
    )
    .await;
    assert_eq!(upgrade(&url, &headers).await.status, 101);
    assert_eq!(
        upgrade(&url, &headers).await.status,
        404,
        "a used token is refused"
    );

    let made_up = format!("{}/exec/not-a-token", url.rsplit_once("/exec/").unwrap().0);
    assert_eq!(upgrade(&made_up, &headers).await.status, 404);
    let url = exec_url(
        &env,
        exec_request(&id, &["true"], false, false, true, false),
    )
    .await;
    assert_eq!(
        upgrade(&url.replace("/exec/", "/attach/"), &headers)
            .await
            .status,
        404,
        "an exec token is no attach token"
    );

    let url = exec_url(
        &env,
        exec_request(&id, &["true"], false, false, true, false),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        upgrade(&url, &headers).await.status,
        404,
        "an expired token is refused"
    );

    let url = exec_url(
        &env,
        exec_request(&id, &["true"], false, false, true, false),
    )
    .await;
    let refused = upgrade(
        &url,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v9.channel.k8s.io"),
        ],
    )
    .await;
    assert_eq!(refused.status, 403, "no common protocol");

    let mut runtime = env.stack.runtime();
    let both = runtime
        .exec(exec_request(&id, &["true"], true, false, true, true))
        .await
        .unwrap_err();
    assert_eq!(both.code(), tonic::Code::InvalidArgument);
    let missing = runtime
        .exec(exec_request(
            &"a".repeat(64),
            &["true"],
            false,
            false,
            true,
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_leaves_no_process_behind() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "reap", &["sleep", "300"]).await;
    let url = exec_url(
        &env,
        exec_request(&id, &["sleep", "1000"], false, false, true, false),
    )
    .await;
    let mut socket = websocket(&url, "v4.channel.k8s.io").await;
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(vec![1].into())
    );
    let runtime = env.stack.runtime();
    let probe = ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "ps | grep 'sleep 1000' | grep -v grep || true".into(),
        ],
        timeout: 10,
    };
    // The session's process may take a moment to appear after the stream opened.
    eventually(30, "the exec session to run", || {
        let mut runtime = runtime.clone();
        let probe = probe.clone();
        async move {
            let running = runtime.exec_sync(probe).await.ok()?.into_inner();
            (!running.stdout.is_empty()).then_some(())
        }
    })
    .await;

    drop(socket);

    eventually(30, "the exec process to be killed", || {
        let mut runtime = runtime.clone();
        let probe = probe.clone();
        async move {
            runtime
                .exec_sync(probe)
                .await
                .ok()
                .filter(|r| r.get_ref().stdout.is_empty())
                .map(|_| ())
        }
    })
    .await;
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spdy_v2_reports_failures_as_plain_text() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "spdy-v2", &["sleep", "300"]).await;
    let url = exec_url(
        &env,
        exec_request(&id, &["sh", "-c", "exit 5"], false, false, true, false),
    )
    .await;

    let (mut client, protocol) = spdy(&url, &["v2.channel.k8s.io"]).await;
    assert_eq!(protocol, "v2.channel.k8s.io");
    let error = client.open(&[("streamtype", "error")]).await;
    let stdout = client.open(&[("streamtype", "stdout")]).await;
    let events = client.drain().await;

    assert_well_formed(&client, &events, &[error, stdout]);
    let text = String::from_utf8_lossy(&stream_bytes(&events, error)).to_string();
    assert!(
        text.contains("exit") && text.contains('5') && !text.starts_with('{'),
        "{text:?}"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_holds_the_command_back() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, id, _) = running_container(&env, "slow", &["sleep", "300"]).await;
    let flood = [
        "sh",
        "-c",
        "dd if=/dev/zero bs=65536 count=1000000 2>/dev/null; echo done",
    ];
    let url = exec_url(&env, exec_request(&id, &flood, false, false, true, false)).await;
    let mut socket = websocket(&url, "v4.channel.k8s.io").await;
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(vec![1].into())
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut runtime = env.stack.runtime();
    let probe = ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "ps | grep 'dd if' | grep -v grep || true".into(),
        ],
        timeout: 10,
    };
    let running = runtime.exec_sync(probe).await.unwrap().into_inner();
    assert!(
        !running.stdout.is_empty(),
        "64 GB cannot have been buffered: the writer waits for the reader"
    );
    let cri_pid = env.stack.pid(crimson_config::Daemon::Cri).unwrap();
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{cri_pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        rss_kib < 256 * 1024,
        "the front door holds no backlog: {rss_kib} KiB"
    );
    drop(socket);
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_can_be_served_over_tls() {
    require_root!();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let env = PodEnv::start_with(
        false,
        StackOptions {
            configure: Some(Arc::new(move |config| {
                config.cri.stream_tls_cert = Some(cert.clone());
                config.cri.stream_tls_key = Some(key.clone());
            })),
            ..Default::default()
        },
    )
    .await;
    let (pod_id, id, _) = running_container(&env, "tls", &["sleep", "300"]).await;
    let url = exec_url(
        &env,
        exec_request(&id, &["echo", "secure"], false, false, true, false),
    )
    .await;
    assert!(url.starts_with("https://"), "{url}");

    let output = std::process::Command::new("curl")
        .args(["-sk", "--http1.1", "--max-time", "5", "-i", "-X", "POST"])
        .args([
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
        ])
        .args([
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H",
            "Sec-WebSocket-Protocol: v4.channel.k8s.io",
        ])
        .arg(&url)
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer:?}");
    assert!(
        answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the RFC 6455 accept key: {answer:?}"
    );
    env.remove_pod_and_check(pod_id).await;
}
