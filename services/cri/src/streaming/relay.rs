//! The backend side of a stream: a bidirectional gRPC call to the daemon that owns the work
//! (crimson-sandbox for exec and attach, crimson-network for port-forward). Both directions go
//! through bounded channels, so a slow reader slows the process instead of growing a buffer.

use crimson_api::{
    network::v1::{
        PortForwardInput, PortForwardOutput, PortForwardStart, network_client::NetworkClient,
        port_forward_input,
    },
    sandbox::v1::{
        StreamInput, StreamOutput, StreamStart, sandbox_client::SandboxClient, stream_input,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::tokens::ProcessStreams;
use crate::Backends;

/// Messages in flight towards the backend at most.
const INPUT_BUFFER: usize = 16;

/// Which process stream to open.
#[derive(Debug, Clone, Copy)]
pub enum ProcessKind {
    /// A command run for the stream.
    Exec,
    /// The container's main process.
    Attach,
}

/// Opens an exec or attach stream: returns where to send input and where output arrives.
pub async fn open_process(
    backends: &Backends,
    kind: ProcessKind,
    streams: &ProcessStreams,
) -> Result<(mpsc::Sender<StreamInput>, Streaming<StreamOutput>), Status> {
    let (tx, rx) = mpsc::channel(INPUT_BUFFER);
    let start = StreamInput {
        part: Some(stream_input::Part::Start(StreamStart {
            container_id: streams.container_id.clone(),
            cmd: streams.cmd.clone(),
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        })),
    };
    tx.send(start)
        .await
        .map_err(|_| Status::internal("stream closed"))?;
    let mut client = SandboxClient::new(backends.sandbox.channel());
    let request = ReceiverStream::new(rx);
    let response = match kind {
        ProcessKind::Exec => client.exec(request).await,
        ProcessKind::Attach => client.attach(request).await,
    };
    Ok((tx, response?.into_inner()))
}

/// Opens a port-forward stream to `port` of the pod.
pub async fn open_port(
    backends: &Backends,
    pod_id: &str,
    port: u16,
    host_network: bool,
) -> Result<(mpsc::Sender<PortForwardInput>, Streaming<PortForwardOutput>), Status> {
    let (tx, rx) = mpsc::channel(INPUT_BUFFER);
    let start = PortForwardInput {
        part: Some(port_forward_input::Part::Start(PortForwardStart {
            pod_id: pod_id.to_string(),
            port: port.into(),
            host_network,
        })),
    };
    tx.send(start)
        .await
        .map_err(|_| Status::internal("stream closed"))?;
    let response = NetworkClient::new(backends.network.channel())
        .port_forward(ReceiverStream::new(rx))
        .await?;
    Ok((tx, response.into_inner()))
}

/// How a remote command ended, as the error stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The process exited with this code.
    Exited(i32),
    /// The stream failed.
    Failed(String),
}

/// The v4+ error-stream message: a JSON `metav1.Status`.
pub fn status_json(outcome: &Outcome) -> Vec<u8> {
    let status = match outcome {
        Outcome::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [...], exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(message) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {message}"),
            "reason": "InternalError",
            "code": 500,
        }),
    };
    status.to_string().into_bytes()
}

/// The pre-v4 error-stream message: nothing on success, else plain text.
pub fn status_text(outcome: &Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Exited(0) => Vec::new(),
        Outcome::Exited(code) => {
            format!("command terminated with non-zero exit code: exit status {code}").into_bytes()
        }
        Outcome::Failed(message) => message.clone().into_bytes(),
    }
}

/// A resize message (`{"Width":..,"Height":..}`) as a stream input.
pub fn resize_input(width: u16, height: u16) -> StreamInput {
    StreamInput {
        part: Some(stream_input::Part::Resize(
            crimson_api::sandbox::v1::TerminalSize {
                width: width.into(),
                height: height.into(),
            },
        )),
    }
}

/// Decodes every complete `{"Width","Height"}` object in `buffer`, keeping a partial tail.
pub fn take_resizes(buffer: &mut Vec<u8>) -> Vec<(u16, u16)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let mut sizes = Vec::new();
    let mut consumed = 0;
    let mut stream = serde_json::Deserializer::from_slice(buffer).into_iter::<Size>();
    while let Some(Ok(size)) = stream.next() {
        sizes.push((size.width, size.height));
        consumed = stream.byte_offset();
    }
    buffer.drain(..consumed);
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages() {
        let failure: serde_json::Value =
            serde_json::from_slice(&status_json(&Outcome::Exited(3))).unwrap();
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        let success: serde_json::Value =
            serde_json::from_slice(&status_json(&Outcome::Exited(0))).unwrap();
        assert_eq!(success["status"], "Success");
        assert!(status_text(&Outcome::Exited(0)).is_empty());
    }

    #[test]
    fn resizes_across_chunks() {
        let mut buffer = br#"{"Width":80,"Height":24}{"Width":100,"He"#.to_vec();
        assert_eq!(take_resizes(&mut buffer), vec![(80, 24)]);
        buffer.extend_from_slice(br#"ight":40}"#);
        assert_eq!(take_resizes(&mut buffer), vec![(100, 40)]);
        assert!(buffer.is_empty());
    }
}
