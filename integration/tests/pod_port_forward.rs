//! Port-forward through the streaming server: SPDY (`portforward.k8s.io`), WebSocket
//! (`v4.channel.k8s.io`) and SPDY tunnelled in WebSocket, with refusals reported per port.

use std::time::Duration;

use crimson_integration::{
    eventually,
    pods::PodEnv,
    require_root,
    stream_sessions::{
        fin_seen, next_message, port_forward_url, running_container, spdy, websocket,
    },
    streams::{SpdyClient, SpdyEvent, stream_bytes, websocket_bytes},
};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const SERVE: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p /www /alt && echo forwarded > /www/index.html && echo second-port > /alt/index.html; \
     httpd -p 8080 -h /alt; exec httpd -f -p 80 -h /www",
];

#[tokio::test(flavor = "multi_thread")]
async fn spdy_port_forward_serves_parallel_connections_and_reports_refusals() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, _, _) = running_container(&env, "pf", SERVE).await;
    eventually(30, "both servers to listen", || async {
        let ip = env.pod_ip(&pod_id).await;
        crimson_integration::pods::http_get(&format!("{ip}:80"))?;
        crimson_integration::pods::http_get(&format!("{ip}:8080"))
    })
    .await;
    let url = port_forward_url(&env, &pod_id).await;

    let (mut client, protocol) = spdy(&url, &["portforward.k8s.io"]).await;
    assert_eq!(protocol, "portforward.k8s.io");
    let mut pairs = Vec::new();
    for (request, port) in [("0", "80"), ("1", "80"), ("2", "81"), ("3", "8080")] {
        let error = client
            .open(&[
                ("streamtype", "error"),
                ("port", port),
                ("requestid", request),
            ])
            .await;
        let data = client
            .open(&[
                ("streamtype", "data"),
                ("port", port),
                ("requestid", request),
            ])
            .await;
        client.send(error, b"", true).await;
        if port != "81" {
            client.send(data, b"GET / HTTP/1.0\r\n\r\n", false).await;
        }
        pairs.push((error, data, port));
    }
    let mut events = Vec::new();
    let done = |events: &[SpdyEvent]| {
        pairs
            .iter()
            .all(|(error, data, _)| fin_seen(events, *error) && fin_seen(events, *data))
    };
    while !done(&events) {
        events.push(
            tokio::time::timeout(Duration::from_secs(30), client.next())
                .await
                .unwrap()
                .expect("frames until every pair ends"),
        );
    }
    for (error, data, port) in &pairs {
        assert!(
            events.contains(&SpdyEvent::Reply(*error)) && events.contains(&SpdyEvent::Reply(*data))
        );
        let response = String::from_utf8_lossy(&stream_bytes(&events, *data)).to_string();
        let failure = String::from_utf8_lossy(&stream_bytes(&events, *error)).to_string();
        if *port == "80" {
            assert!(response.contains("forwarded"), "{response:?}");
            assert!(failure.is_empty(), "{failure:?}");
        } else if *port == "8080" {
            assert!(
                response.contains("second-port"),
                "a second port of the same pod: {response:?} {failure:?}"
            );
        } else {
            assert!(
                failure.contains("81"),
                "a refusal is reported on the error stream: {failure:?}"
            );
        }
    }
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_port_forward_with_channels_and_with_spdy_tunnelled() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_id, _, _) = running_container(&env, "wspf", SERVE).await;
    eventually(30, "httpd to listen", || async {
        let ip = env.pod_ip(&pod_id).await;
        crimson_integration::pods::http_get(&format!("{ip}:80"))
    })
    .await;
    let url = port_forward_url(&env, &pod_id).await;
    let mut socket = websocket(&url, "v4.channel.k8s.io").await;
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(vec![0, 80, 0].into()),
        "data channel announces port 80"
    );
    assert_eq!(
        next_message(&mut socket).await,
        Message::Binary(vec![1, 80, 0].into()),
        "error channel too"
    );
    socket
        .send(Message::Binary(
            b"\x00GET / HTTP/1.0\r\n\r\n".to_vec().into(),
        ))
        .await
        .unwrap();
    let mut response = Vec::new();
    while !String::from_utf8_lossy(&response).contains("forwarded") {
        match next_message(&mut socket).await {
            Message::Binary(data) if data[0] == 0 => response.extend_from_slice(&data[1..]),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(String::from_utf8_lossy(&response).contains("forwarded"));

    // client-go's tunneling dialer: a SPDY/3.1 session inside binary WebSocket messages.
    let url = port_forward_url(&env, &pod_id).await;
    let socket = websocket(&url, "SPDY/3.1+portforward.k8s.io").await;
    let mut client = SpdyClient::new(websocket_bytes(socket));
    let error = client
        .open(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")])
        .await;
    let data = client
        .open(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")])
        .await;
    client.send(error, b"", true).await;
    client.send(data, b"GET / HTTP/1.0\r\n\r\n", false).await;
    client.ping(1).await;
    let mut events = Vec::new();
    while !(fin_seen(&events, data) && events.contains(&SpdyEvent::Ping(1))) {
        events.push(
            tokio::time::timeout(Duration::from_secs(30), client.next())
                .await
                .unwrap()
                .expect("frames until the data stream ends"),
        );
    }
    assert!(events.contains(&SpdyEvent::Reply(error)) && events.contains(&SpdyEvent::Reply(data)));
    let response = String::from_utf8_lossy(&stream_bytes(&events, data)).to_string();
    assert!(response.contains("forwarded"), "{response:?}");
    assert!(stream_bytes(&events, error).is_empty());
    assert!(client.versions.iter().all(|v| *v == 3));
    drop(client);
    env.remove_pod_and_check(pod_id).await;
}
