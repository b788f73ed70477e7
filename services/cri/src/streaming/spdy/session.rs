//! A server-side SPDY/3 session: the client opens streams (SYN_STREAM, odd ids); we answer
//! each with SYN_REPLY or RST_STREAM, exchange DATA, echo PINGs and end with GOAWAY.
//! No flow-control windows are kept: Kubernetes' spdystream clients never send WINDOW_UPDATE,
//! so back-pressure is the TCP connection's (the reader waits when a stream's consumer does).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

use super::{
    frame::{self, FLAG_FIN, Frame},
    headers::{HeaderCompressor, HeaderDecompressor, decode, encode},
};

/// Largest DATA frame we send.
const DATA_CHUNK: usize = 32 * 1024;

/// A stream the client opened.
pub struct IncomingStream {
    /// The stream id.
    pub id: u32,
    /// Header names are lowercase.
    pub headers: HashMap<String, String>,
    /// Its data; ends when the client sends FIN or resets the stream.
    pub data: mpsc::Receiver<Bytes>,
}

enum Command {
    Reply(u32),
    Data(u32, Bytes),
    Fin(u32),
    Reset(u32, u32),
    Pong(u32),
    GoAway,
}

/// Writes to the session; cheap to clone.
#[derive(Clone)]
pub struct Writer(mpsc::Sender<Command>);

impl Writer {
    /// Accepts a stream (empty header block).
    pub async fn reply(&self, id: u32) {
        let _ = self.0.send(Command::Reply(id)).await;
    }

    /// Sends data on a stream.
    pub async fn data(&self, id: u32, data: Bytes) {
        let _ = self.0.send(Command::Data(id, data)).await;
    }

    /// Ends our side of a stream.
    pub async fn fin(&self, id: u32) {
        let _ = self.0.send(Command::Fin(id)).await;
    }

    /// Refuses or abandons a stream.
    pub async fn reset(&self, id: u32, status: u32) {
        let _ = self.0.send(Command::Reset(id, status)).await;
    }

    /// Ends the session (the last frame: clients stop reading at GOAWAY).
    pub async fn goaway(&self) {
        let _ = self.0.send(Command::GoAway).await;
    }
}

/// Starts a session on `io`: answers the writer and the streams the client opens.
pub fn start<IO>(io: IO) -> (Writer, mpsc::Receiver<IncomingStream>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (commands, mut queue) = mpsc::channel::<Command>(64);
    let (streams_tx, streams_rx) = mpsc::channel(16);
    let last_stream = Arc::new(AtomicU32::new(0));
    let last_seen = last_stream.clone();
    let pongs = commands.clone();
    tokio::spawn(async move {
        let mut decompressor = HeaderDecompressor::default();
        let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
        while let Ok(Some(frame)) = frame::read_frame(&mut reader).await {
            match frame {
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    if !data.is_empty()
                        && let Some(sender) = open.get(&stream_id)
                        && sender.send(data).await.is_err()
                    {
                        open.remove(&stream_id);
                    }
                    if flags & FLAG_FIN != 0 {
                        open.remove(&stream_id);
                    }
                }
                Frame::Control {
                    kind: frame::SYN_STREAM,
                    payload,
                    ..
                } if payload.len() >= 10 => {
                    let id = frame::stream_id_of(&payload).unwrap_or(0);
                    let Some(pairs) = decompressor
                        .decompress(&payload[10..])
                        .as_deref()
                        .and_then(decode)
                    else {
                        break;
                    };
                    last_seen.fetch_max(id, Ordering::Relaxed);
                    let (sender, data) = mpsc::channel(16);
                    open.insert(id, sender);
                    let stream = IncomingStream {
                        id,
                        headers: pairs.into_iter().collect(),
                        data,
                    };
                    if streams_tx.send(stream).await.is_err() {
                        break;
                    }
                }
                Frame::Control {
                    kind: frame::RST_STREAM,
                    payload,
                    ..
                } => {
                    if let Some(id) = frame::stream_id_of(&payload) {
                        open.remove(&id);
                    }
                }
                Frame::Control {
                    kind: frame::PING,
                    payload,
                    ..
                } => {
                    if let Some(id) = frame::stream_id_of(&payload) {
                        let _ = pongs.send(Command::Pong(id)).await;
                    }
                }
                Frame::Control {
                    kind: frame::GOAWAY,
                    ..
                } => break,
                // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do.
                Frame::Control { .. } => {}
            }
        }
        // Dropping the senders ends every stream and the stream channel: the session is over.
    });
    tokio::spawn(async move {
        let mut compressor = HeaderCompressor::default();
        while let Some(command) = queue.recv().await {
            let bytes = match command {
                Command::Reply(id) => frame::syn_reply(id, &compressor.compress(&encode(&[]))),
                Command::Data(id, data) => data
                    .chunks(DATA_CHUNK)
                    .flat_map(|piece| frame::data(id, 0, piece))
                    .collect(),
                Command::Fin(id) => frame::data(id, FLAG_FIN, &[]),
                Command::Reset(id, status) => frame::rst_stream(id, status),
                Command::Pong(id) => frame::ping(id),
                Command::GoAway => {
                    let _ = writer
                        .write_all(&frame::goaway(last_stream.load(Ordering::Relaxed)))
                        .await;
                    let _ = writer.shutdown().await;
                    break;
                }
            };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    (Writer(commands), streams_rx)
}
