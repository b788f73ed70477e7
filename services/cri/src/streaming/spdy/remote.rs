//! Remote command (exec, attach) over SPDY: the client opens an error stream and, as asked,
//! stdin, stdout, stderr (not with a terminal) and resize (with a terminal, v3+). Output goes
//! out on stdout/stderr; the end is a status on the error stream, then GOAWAY.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use crimson_api::sandbox::v1::{StreamInput, stream_input, stream_output};

use super::{
    frame::CANCEL,
    session::{self, IncomingStream, Writer},
};
use crate::{
    Backends,
    streaming::{
        relay::{self, Outcome, ProcessKind},
        tokens::ProcessStreams,
    },
};

/// Remote-command protocols, preferred first. v5 is served as v4 over SPDY.
pub const PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How long the client may take to open all its streams.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Version number of a remote-command protocol name.
pub fn version_of(protocol: &str) -> u8 {
    protocol
        .strip_prefix('v')
        .and_then(|rest| rest.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Serves one exec or attach session on an upgraded connection.
pub async fn serve<IO>(
    io: IO,
    version: u8,
    backends: Arc<Backends>,
    kind: ProcessKind,
    streams: ProcessStreams,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (writer, mut incoming) = session::start(io);
    let mut expected = vec!["error"];
    for (wanted, name) in [
        (streams.stdin, "stdin"),
        (streams.stdout, "stdout"),
        (streams.stderr && !streams.tty, "stderr"),
        (streams.tty && version >= 3, "resize"),
    ] {
        if wanted {
            expected.push(name);
        }
    }
    let mut opened: HashMap<&'static str, IncomingStream> = HashMap::new();
    let collected = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while opened.len() < expected.len() {
            let Some(stream) = incoming.recv().await else {
                return false;
            };
            let kind = stream
                .headers
                .get("streamtype")
                .cloned()
                .unwrap_or_default();
            match expected.iter().find(|name| **name == kind) {
                Some(name) if !opened.contains_key(name) => {
                    writer.reply(stream.id).await;
                    opened.insert(name, stream);
                }
                _ => writer.reset(stream.id, CANCEL).await,
            }
        }
        true
    })
    .await;
    if !matches!(collected, Ok(true)) {
        writer.goaway().await;
        return;
    }
    let id = |name: &str| opened.get(name).map(|s| s.id);
    let (error, stdout, stderr, stdin_id, resize_id) = (
        id("error"),
        id("stdout"),
        id("stderr"),
        id("stdin"),
        id("resize"),
    );
    let outcome = match relay::open_process(&backends, kind, &streams).await {
        Ok((input, mut output)) => {
            tokio::spawn(forward_input(
                opened.remove("stdin"),
                opened.remove("resize"),
                input,
            ));
            loop {
                tokio::select! {
                    message = output.message() => match message {
                        Ok(Some(message)) => match message.part {
                            Some(stream_output::Part::Stdout(data)) => if let Some(id) = stdout { writer.data(id, data).await },
                            Some(stream_output::Part::Stderr(data)) => if let Some(id) = stderr.or(stdout) { writer.data(id, data).await },
                            Some(stream_output::Part::End(end)) if end.error.is_empty() => break Outcome::Exited(end.exit_code),
                            Some(stream_output::Part::End(end)) => break Outcome::Failed(end.error),
                            None => {}
                        },
                        Ok(None) => break Outcome::Failed("the stream ended early".into()),
                        Err(status) => break Outcome::Failed(status.message().to_string()),
                    },
                    // The connection ended: dropping `output` cancels the backend call, which
                    // kills the command.
                    None = incoming.recv() => return,
                }
            }
        }
        Err(status) => Outcome::Failed(status.message().to_string()),
    };
    finish(
        &writer,
        version,
        &outcome,
        [stdout, stderr],
        error,
        [stdin_id, resize_id],
    )
    .await;
}

async fn finish(
    writer: &Writer,
    version: u8,
    outcome: &Outcome,
    outputs: [Option<u32>; 2],
    error: Option<u32>,
    inputs: [Option<u32>; 2],
) {
    for id in outputs.into_iter().flatten() {
        writer.fin(id).await;
    }
    if let Some(id) = error {
        let status = match version {
            4.. => relay::status_json(outcome),
            2 | 3 => relay::status_text(outcome),
            _ => Vec::new(),
        };
        if !status.is_empty() {
            writer.data(id, status.into()).await;
        }
        writer.fin(id).await;
    }
    for id in inputs.into_iter().flatten() {
        writer.fin(id).await;
    }
    writer.goaway().await;
}

/// Stdin and resizes to the backend, in the order the client sent them: a terminal resized
/// before a keystroke has its new size when the keystroke's command runs. The session queues
/// frames in wire order, so when a stdin chunk is ready every earlier resize is too, and
/// resizes go first.
async fn forward_input(
    mut stdin: Option<IncomingStream>,
    mut resize: Option<IncomingStream>,
    input: tokio::sync::mpsc::Sender<StreamInput>,
) {
    let mut buffer = Vec::new();
    loop {
        let message = tokio::select! {
            biased;
            data = next_data(&mut resize), if resize.is_some() => match data {
                Some(data) => {
                    buffer.extend_from_slice(&data);
                    for (width, height) in relay::take_resizes(&mut buffer) {
                        if input.send(relay::resize_input(width, height)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                None => {
                    resize = None;
                    continue;
                }
            },
            data = next_data(&mut stdin), if stdin.is_some() => match data {
                Some(data) => stream_input::Part::Stdin(data),
                // FIN from the client: the end of stdin.
                None => {
                    stdin = None;
                    stream_input::Part::StdinClosed(Default::default())
                }
            },
            else => return,
        };
        let sent = input.send(StreamInput {
            part: Some(message),
        });
        if sent.await.is_err() {
            return;
        }
    }
}

/// The next chunk of `stream` (`None` at its end, or for no stream).
async fn next_data(stream: &mut Option<IncomingStream>) -> Option<Bytes> {
    stream.as_mut()?.data.recv().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions() {
        assert_eq!(version_of("v4.channel.k8s.io"), 4);
        assert_eq!(version_of("v2.channel.k8s.io"), 2);
        assert_eq!(version_of("channel.k8s.io"), 1);
    }
}
