//! CRI streaming sessions as tests open them: Exec/PortForward URLs from the front door, SPDY
//! and WebSocket upgrades of them, and checks on the frames that came back.

use std::time::Duration;

use futures::StreamExt;
use k8s_cri::v1::{ContainerState, ExecRequest, PortForwardRequest};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::{
    pods::PodEnv,
    streams::{SpdyClient, SpdyEvent, upgrade},
};

/// An ExecRequest for `cmd` in container `id` with the given streams.
pub fn exec_request(
    id: &str,
    cmd: &[&str],
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> ExecRequest {
    ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout,
        stderr,
    }
}

/// Exec through the front door; answers the streaming URL.
pub async fn exec_url(env: &PodEnv, request: ExecRequest) -> String {
    env.stack
        .runtime()
        .exec(request)
        .await
        .expect("Exec")
        .into_inner()
        .url
}

/// PortForward of port 80 of `pod_id` through the front door; answers the streaming URL.
pub async fn port_forward_url(env: &PodEnv, pod_id: &str) -> String {
    env.stack
        .runtime()
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_id.to_string(),
            port: vec![80],
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url
}

/// A SPDY/3.1 upgrade of `url` offering `protocols`; answers the client and the chosen one.
pub async fn spdy(url: &str, protocols: &[&str]) -> (SpdyClient, String) {
    let mut headers = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
    headers.extend(protocols.iter().map(|p| ("X-Stream-Protocol-Version", *p)));
    let upgraded = upgrade(url, &headers).await;
    assert_eq!(
        upgraded.status,
        101,
        "{}",
        String::from_utf8_lossy(&upgraded.body)
    );
    assert!(upgraded.headers["upgrade"].eq_ignore_ascii_case("SPDY/3.1"));
    (
        SpdyClient::new(upgraded.stream),
        upgraded.headers["x-stream-protocol-version"].clone(),
    )
}

/// Every opened stream got its SYN_REPLY before any data; GOAWAY came last; version 3 throughout.
pub fn assert_well_formed(client: &SpdyClient, events: &[SpdyEvent], opened: &[u32]) {
    assert!(
        client.versions.iter().all(|v| *v == 3),
        "control frames are SPDY/3: {:?}",
        client.versions
    );
    for id in opened {
        let reply = events
            .iter()
            .position(|e| *e == SpdyEvent::Reply(*id))
            .unwrap_or_else(|| panic!("a SYN_REPLY for stream {id}: {events:?}"));
        let first_data = events
            .iter()
            .position(|e| matches!(e, SpdyEvent::Data { stream, .. } if stream == id));
        assert!(
            first_data.is_none_or(|d| d > reply),
            "stream {id} data came before its SYN_REPLY"
        );
    }
    assert_eq!(
        events.last(),
        Some(&SpdyEvent::GoAway),
        "GOAWAY ends the session: {events:?}"
    );
}

/// Whether stream `id` ended (a DATA frame with FIN).
pub fn fin_seen(events: &[SpdyEvent], id: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(e, SpdyEvent::Data { stream, fin: true, .. } if *stream == id))
}

/// A pod with one running container `name` running `command`: (pod id, container id, pod).
pub async fn running_container(
    env: &PodEnv,
    name: &str,
    command: &[&str],
) -> (String, String, k8s_cri::v1::PodSandboxConfig) {
    let pod = env.pod_config(name);
    let pod_id = env.run_pod(&pod).await;
    let id = env
        .run_container(&pod_id, &pod, env.container_config(name, command))
        .await;
    env.wait_for(&id, ContainerState::ContainerRunning).await;
    (pod_id, id, pod)
}

/// A WebSocket upgrade of `url` with sub-protocol `protocol`, which the server must choose.
pub async fn websocket(
    url: &str,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let ws_url = url.replace("http://", "ws://");
    let mut request = ws_url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let (socket, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

/// The next WebSocket message (30 s at most).
pub async fn next_message(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Message {
    tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("valid")
}
