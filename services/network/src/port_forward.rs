//! PortForward: a TCP connection to localhost inside the pod's network namespace, with its
//! bytes streamed both ways. The connection is opened by a short-lived thread that enters the
//! namespace (a socket stays in the namespace it was created in).

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    os::fd::AsFd,
    time::Duration,
};

use bytes::Bytes;
use crimson_api::network::v1::{
    PortForwardInput, PortForwardOutput, PortForwardStart, port_forward_input::Part as In,
    port_forward_output::Part as Out,
};
use nix::sched::{CloneFlags, setns};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{NetworkError, Result, state::State};

/// The response stream.
pub type ForwardStream = ReceiverStream<std::result::Result<PortForwardOutput, Status>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CHUNK: usize = 32 * 1024;

/// Connects and starts relaying; a refused connection is reported on the stream.
pub async fn port_forward(
    state: &State,
    mut input: Streaming<PortForwardInput>,
) -> Result<ForwardStream> {
    let start = match input.message().await {
        Ok(Some(PortForwardInput {
            part: Some(In::Start(start)),
        })) => start,
        _ => {
            return Err(NetworkError::InvalidArgument(
                "the first message must be `start`".into(),
            ));
        }
    };
    let port = u16::try_from(start.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| NetworkError::InvalidArgument(format!("invalid port {}", start.port)))?;
    let netns = namespace_of(state, &start)?;
    let (tx, rx) = mpsc::channel(16);
    let connected = tokio::task::spawn_blocking(move || connect(netns, port))
        .await
        .map_err(|e| NetworkError::InvalidArgument(e.to_string()))?;
    match connected {
        Ok(stream) => {
            stream.set_nonblocking(true).ok();
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => {
                    tokio::spawn(relay(stream, input, tx));
                }
                Err(e) => {
                    let _ = tx.send(Ok(error(format!("port {port}: {e}")))).await;
                }
            }
        }
        Err(e) => {
            let _ = tx
                .send(Ok(error(format!(
                    "error forwarding port {port} to pod {}: {e}",
                    start.pod_id
                ))))
                .await;
        }
    }
    Ok(ReceiverStream::new(rx))
}

/// The namespace to connect in: the pod's, or none (this process's) for host-network pods.
fn namespace_of(state: &State, start: &PortForwardStart) -> Result<Option<String>> {
    if start.host_network {
        return Ok(None);
    }
    let attachment = state
        .pods
        .get(&start.pod_id)?
        .ok_or_else(|| NetworkError::NotFound(start.pod_id.clone()))?;
    Ok(Some(attachment.netns_path))
}

fn error(message: String) -> PortForwardOutput {
    PortForwardOutput {
        part: Some(Out::Error(message)),
    }
}

/// Connects to localhost:`port` (IPv4, then IPv6) inside `netns`.
fn connect(netns: Option<String>, port: u16) -> std::io::Result<TcpStream> {
    let attempt = move || {
        if let Some(path) = &netns {
            let file = std::fs::File::open(path)?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        }
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT).or_else(|_| {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
                CONNECT_TIMEOUT,
            )
        })
    };
    // A thread of its own: setns changes only the calling thread, which ends right after.
    std::thread::spawn(attempt)
        .join()
        .map_err(|_| std::io::Error::other("connect thread panicked"))?
}

async fn relay(
    stream: tokio::net::TcpStream,
    mut input: Streaming<PortForwardInput>,
    tx: mpsc::Sender<std::result::Result<PortForwardOutput, Status>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let outbound = tx.clone();
    let reading = tokio::spawn(async move {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = tokio::select! {
                read = reader.read(&mut buffer) => read,
                () = outbound.closed() => return,
            };
            match read {
                Ok(0) => return,
                Ok(n) => {
                    let data = PortForwardOutput {
                        part: Some(Out::Data(Bytes::copy_from_slice(&buffer[..n]))),
                    };
                    if outbound.send(Ok(data)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = outbound.send(Ok(error(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let writing = tokio::spawn(async move {
        loop {
            match input.message().await {
                Ok(Some(PortForwardInput {
                    part: Some(In::Data(data)),
                })) => {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Some(_)) => {}
                // The client finished sending (or went away): half-close towards the pod.
                Ok(None) | Err(_) => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    // The connection is over once the pod side closes it (the client learns by the end of
    // this stream), whatever the client still sends.
    let _ = reading.await;
    writing.abort();
}
