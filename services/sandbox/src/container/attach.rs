//! Attach: the stdio of a container's main process, through conmon's attach socket
//! (SOCK_SEQPACKET; each packet from conmon is one stream byte, 2 stdout or 3 stderr, then
//! data; what we send is stdin as is) and its control fifo for terminal sizes.

use std::{io::Write, sync::Arc, time::Duration};

use bytes::Bytes;
use crimson_api::sandbox::v1::{StreamInput, stream_input::Part};
use tokio::net::UnixDatagram;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::{
    attach_socket::connect_seqpacket,
    exec_stream::{OutputStream, read_start},
    refresh::current,
    stream_io::{Output, chunk, end, output_channel},
};
use crate::{Result, SandboxError, records::ContainerPhase, state::State};

/// conmon's stream ids in attach packets.
const STDOUT_PACKET: u8 = 2;
const STDERR_PACKET: u8 = 3;
/// conmon's largest packet: one stream byte and 8 KiB of data.
const PACKET: usize = 8193;

/// Connects to the container's attach socket and returns the output stream.
pub async fn attach(state: Arc<State>, mut input: Streaming<StreamInput>) -> Result<OutputStream> {
    let start = read_start(&mut input).await?;
    let record = current(&state, &start.container_id).await?;
    if record.phase != ContainerPhase::Running {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {} is not running",
            record.id
        )));
    }
    if start.stdin && !record.spec.stdin {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {} was not created with stdin",
            record.id
        )));
    }
    let fd = connect_seqpacket(&state.layout.attach_sockets().join(&record.id), "attach")
        .map_err(|e| SandboxError::runtime("connecting to conmon's attach socket", e))?;
    // A connected SOCK_SEQPACKET socket reads and writes like a datagram socket: one packet per
    // call, a zero-length read at the end.
    let socket = Arc::new(
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::from(fd))
            .map_err(|e| SandboxError::runtime("attach", e))?,
    );
    let (tx, rx) = output_channel();
    let ctl = state.layout.bundle(&record.id).join("ctl");
    tokio::spawn(forward_input(socket.clone(), input, ctl));
    tokio::spawn(forward_output(
        state,
        record.id.clone(),
        socket,
        tx,
        start.stdout,
        start.stderr,
    ));
    Ok(ReceiverStream::new(rx))
}

async fn forward_output(
    state: Arc<State>,
    id: String,
    socket: Arc<UnixDatagram>,
    tx: Output,
    stdout: bool,
    stderr: bool,
) {
    let mut buffer = vec![0u8; PACKET];
    loop {
        let received = tokio::select! {
            received = socket.recv(&mut buffer) => received,
            () = tx.closed() => return,
        };
        match received {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let (wanted, is_stderr) = match buffer[0] {
                    STDOUT_PACKET => (stdout, false),
                    STDERR_PACKET => (stderr, true),
                    _ => (false, false),
                };
                if wanted
                    && tx
                        .send(Ok(chunk(is_stderr, Bytes::copy_from_slice(&buffer[1..n]))))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    }
    // conmon closed the socket: the container ended. Report its exit code once recorded.
    let mut exit_code = 0;
    for _ in 0..100 {
        match current(&state, &id).await {
            Ok(record) if record.phase == ContainerPhase::Exited => {
                exit_code = record.exit_code;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break,
        }
    }
    let _ = tx.send(Ok(end(exit_code, String::new()))).await;
}

async fn forward_input(
    socket: Arc<UnixDatagram>,
    mut input: Streaming<StreamInput>,
    ctl: std::path::PathBuf,
) {
    loop {
        match input.message().await {
            Ok(Some(StreamInput {
                part: Some(Part::Stdin(data)),
            })) => {
                // conmon reads up to 32 KiB per packet.
                for piece in data.chunks(32 * 1024) {
                    if socket.send(piece).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Some(StreamInput {
                part: Some(Part::StdinClosed(_)),
            })) => {
                let _ = socket.shutdown(std::net::Shutdown::Write);
            }
            Ok(Some(StreamInput {
                part: Some(Part::Resize(size)),
            })) => {
                // conmon's control message: type 1 (resize), height, width.
                if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&ctl) {
                    let _ = writeln!(fifo, "1 {} {}", size.height, size.width);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}
