//! The Kubernetes channel protocols over WebSocket: every message is one channel byte and a
//! payload (`base64.` variants: an ASCII digit and base64 text). Remote command: stdin 0,
//! stdout 1, stderr 2, error 3, resize 4; v5 adds the close signal `[255, channel]`.
//! Port forward: for the i-th port, data on channel 2i and errors on 2i+1, each opened with
//! the port in two little-endian bytes.

use base64::Engine;
use bytes::Bytes;
use crimson_api::{
    network::v1::{PortForwardInput, port_forward_input, port_forward_output},
    sandbox::v1::{StreamInput, stream_input, stream_output},
};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

use super::{
    relay::{self, Outcome, ProcessKind},
    tokens::{PortForwardTarget, ProcessStreams},
};
use crate::Backends;

/// The upgraded connection.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Remote-command subprotocols, preferred first.
pub const REMOTE_COMMAND: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
/// Port-forward subprotocols.
pub const PORT_FORWARD: &[&str] = &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE_SIGNAL: u8 = 255;

/// The negotiated protocol: its encoding and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    base64: bool,
    /// 1 (plain-text errors), 4 (JSON status) or 5 (adds the close signal).
    version: u8,
}

impl Protocol {
    /// Parses a subprotocol name ("" is binary v1).
    pub fn parse(name: &str) -> Self {
        Self {
            base64: name.contains("base64"),
            version: if name.starts_with("v5.") {
                5
            } else if name.starts_with("v4.") {
                4
            } else {
                1
            },
        }
    }

    fn frame(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let text = format!(
                "{}{}",
                (b'0' + channel) as char,
                base64::engine::general_purpose::STANDARD.encode(data)
            );
            Message::Text(text.into())
        } else {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(data);
            Message::Binary(frame.into())
        }
    }

    fn decode(self, message: Message) -> Option<(u8, Vec<u8>)> {
        match message {
            Message::Binary(data) if !data.is_empty() => Some((data[0], data[1..].to_vec())),
            Message::Text(text) if !text.is_empty() => {
                let bytes = text.as_bytes();
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(&bytes[1..])
                    .ok()?;
                Some((bytes[0].wrapping_sub(b'0'), payload))
            }
            _ => None,
        }
    }
}

/// The subprotocol to answer with: the first of the client's list this server supports; the
/// binary v1 protocol when the client offers none. `None` when nothing matches.
pub fn choose<'a>(offered: &[&'a str], supported: &[&str]) -> Option<&'a str> {
    if offered.is_empty() {
        return Some("");
    }
    offered.iter().copied().find(|p| supported.contains(p))
}

/// A writer task owning the sink; everything that writes goes through it.
fn spawn_writer(mut sink: futures::stream::SplitSink<Socket, Message>) -> mpsc::Sender<Message> {
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    tx
}

fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Serves exec or attach on an upgraded WebSocket.
pub async fn serve_process(
    socket: Socket,
    protocol: Protocol,
    backends: std::sync::Arc<Backends>,
    kind: ProcessKind,
    streams: ProcessStreams,
) {
    let (sink, mut incoming) = socket.split();
    let out = spawn_writer(sink);
    let first = if streams.stdout {
        STDOUT
    } else if streams.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = out.send(protocol.frame(first, &[])).await;
    let (input, mut output) = match relay::open_process(&backends, kind, &streams).await {
        Ok(opened) => opened,
        Err(status) => {
            finish(
                &out,
                protocol,
                &Outcome::Failed(status.message().to_string()),
            )
            .await;
            return;
        }
    };
    let (gone_tx, mut gone) = oneshot::channel::<()>();
    let stdin_wanted = streams.stdin;
    tokio::spawn(async move {
        let mut resize_buffer = Vec::new();
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
            let Some((channel, data)) = protocol.decode(message) else {
                continue;
            };
            let sent = match channel {
                STDIN if stdin_wanted => {
                    input
                        .send(StreamInput {
                            part: Some(stream_input::Part::Stdin(data.into())),
                        })
                        .await
                }
                RESIZE => {
                    resize_buffer.extend_from_slice(&data);
                    let mut result = Ok(());
                    for (width, height) in relay::take_resizes(&mut resize_buffer) {
                        result = input.send(relay::resize_input(width, height)).await;
                    }
                    result
                }
                CLOSE_SIGNAL if protocol.version >= 5 && data.first() == Some(&STDIN) => {
                    input
                        .send(StreamInput {
                            part: Some(stream_input::Part::StdinClosed(Default::default())),
                        })
                        .await
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = gone_tx.send(());
    });
    let outcome = loop {
        tokio::select! {
            message = output.message() => match message {
                Ok(Some(message)) => match message.part {
                    Some(stream_output::Part::Stdout(data)) => { let _ = out.send(protocol.frame(STDOUT, &data)).await; }
                    Some(stream_output::Part::Stderr(data)) => { let _ = out.send(protocol.frame(STDERR, &data)).await; }
                    Some(stream_output::Part::End(end)) if end.error.is_empty() => break Outcome::Exited(end.exit_code),
                    Some(stream_output::Part::End(end)) => break Outcome::Failed(end.error),
                    None => {}
                },
                Ok(None) => break Outcome::Failed("the stream ended early".into()),
                Err(status) => break Outcome::Failed(status.message().to_string()),
            },
            // The client left: dropping `output` cancels the backend call, which kills the command.
            _ = &mut gone => return,
        }
    };
    finish(&out, protocol, &outcome).await;
}

async fn finish(out: &mpsc::Sender<Message>, protocol: Protocol, outcome: &Outcome) {
    let status = if protocol.version >= 4 {
        relay::status_json(outcome)
    } else {
        relay::status_text(outcome)
    };
    if !status.is_empty() {
        let _ = out.send(protocol.frame(ERROR, &status)).await;
    }
    let _ = out.send(normal_close()).await;
}

/// Serves port-forward on an upgraded WebSocket: one connection per requested port.
pub async fn serve_port_forward(
    socket: Socket,
    protocol: Protocol,
    backends: std::sync::Arc<Backends>,
    target: PortForwardTarget,
) {
    let (sink, mut incoming) = socket.split();
    let out = spawn_writer(sink);
    let mut inputs = Vec::new();
    let mut relays = Vec::new();
    for (index, port) in target.ports.iter().enumerate() {
        let (data, error) = ((2 * index) as u8, (2 * index + 1) as u8);
        let prefix = port.to_le_bytes();
        let _ = out.send(protocol.frame(data, &prefix)).await;
        let _ = out.send(protocol.frame(error, &prefix)).await;
        match relay::open_port(&backends, &target.pod_id, *port, target.host_network).await {
            Ok((input, mut output)) => {
                inputs.push(Some(input));
                let out = out.clone();
                relays.push(tokio::spawn(async move {
                    while let Ok(Some(message)) = output.message().await {
                        match message.part {
                            Some(port_forward_output::Part::Data(bytes)) => {
                                let _ = out.send(protocol.frame(data, &bytes)).await;
                            }
                            Some(port_forward_output::Part::Error(text)) => {
                                let _ = out.send(protocol.frame(error, text.as_bytes())).await;
                            }
                            None => {}
                        }
                    }
                }));
            }
            Err(status) => {
                inputs.push(None);
                let text = format!(
                    "error forwarding port {port} to pod {}: {}",
                    target.pod_id,
                    status.message()
                );
                let _ = out.send(protocol.frame(error, text.as_bytes())).await;
            }
        }
    }
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
            let Some((channel, data)) = protocol.decode(message) else {
                continue;
            };
            let index = usize::from(channel / 2);
            if channel % 2 == 0
                && let Some(Some(input)) = inputs.get(index)
            {
                let message = PortForwardInput {
                    part: Some(port_forward_input::Part::Data(Bytes::from(data))),
                };
                if input.send(message).await.is_err() {
                    inputs[index] = None;
                }
            }
        }
    });
    tokio::select! {
        _ = futures::future::join_all(relays) => {}
        _ = reader => {}
    }
    let _ = out.send(normal_close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_clients_order() {
        assert_eq!(
            choose(&["v4.channel.k8s.io", "v5.channel.k8s.io"], REMOTE_COMMAND),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            choose(&["bogus", "v5.channel.k8s.io"], REMOTE_COMMAND),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(choose(&[], REMOTE_COMMAND), Some(""));
        assert_eq!(choose(&["bogus"], REMOTE_COMMAND), None);
        assert_eq!(choose(&["channel.k8s.io"], PORT_FORWARD), None);
    }

    #[test]
    fn frames_in_both_encodings() {
        let binary = Protocol::parse("v4.channel.k8s.io");
        assert_eq!(
            binary.frame(STDOUT, b"hi"),
            Message::Binary(vec![1, b'h', b'i'].into())
        );
        assert_eq!(
            binary.decode(Message::Binary(vec![0, b'x'].into())),
            Some((0, b"x".to_vec()))
        );
        let text = Protocol::parse("v4.base64.channel.k8s.io");
        assert_eq!(text.frame(STDERR, b"hi"), Message::Text("2aGk=".into()));
        assert_eq!(
            text.decode(Message::Text("0aGk=".into())),
            Some((0, b"hi".to_vec()))
        );
        assert_eq!(Protocol::parse("v5.channel.k8s.io").version, 5);
        assert_eq!(Protocol::parse("").version, 1);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_subprotocol_and_message_is_handled(
                name in ".{0,40}",
                text in ".{0,80}",
                binary in prop::collection::vec(any::<u8>(), 0..80),
            ) {
                let protocol = Protocol::parse(&name);
                let _ = protocol.decode(Message::Text(text.into()));
                let _ = protocol.decode(Message::Binary(binary.into()));
            }

            #[test]
            fn frames_read_back_in_both_encodings(
                base64 in any::<bool>(),
                channel in 0u8..10,
                data in prop::collection::vec(any::<u8>(), 0..300),
            ) {
                let name = if base64 { "v5.base64.channel.k8s.io" } else { "v5.channel.k8s.io" };
                let protocol = Protocol::parse(name);
                let framed = protocol.frame(channel, &data);
                prop_assert_eq!(protocol.decode(framed), Some((channel, data)));
            }

            #[test]
            fn the_chosen_subprotocol_is_offered_and_supported(
                offered in prop::collection::vec("(v[1-5]\\.)?(base64\\.)?channel\\.k8s\\.io|bogus", 1..5),
            ) {
                let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
                if let Some(chosen) = choose(&offered, REMOTE_COMMAND) {
                    prop_assert!(offered.contains(&chosen) && REMOTE_COMMAND.contains(&chosen));
                }
            }
        }
    }
}
