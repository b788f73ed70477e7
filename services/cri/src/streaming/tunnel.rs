//! SPDY tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`): client-go's tunneling
//! port-forward dialer (`crictl port-forward --transport websocket`, critest's
//! `--websocket-portforward`) carries the raw bytes of a SPDY/3.1 session in binary WebSocket
//! messages, with no channel byte. The socket is turned back into a byte stream and served by
//! the ordinary SPDY port-forward session.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::websocket::Socket;

/// The WebSocket subprotocol of the tunnel.
pub const SPDY_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

/// Bytes buffered between the socket and the SPDY session in each direction; a slow side
/// holds the other back instead of growing this.
const BUFFER: usize = 64 * 1024;

/// The socket as a byte stream: each binary message received is read in order, each write
/// leaves as one binary message. The stream ends when the client closes (or sends anything
/// but binary data); dropping it closes the socket normally.
pub fn byte_stream(socket: Socket) -> DuplexStream {
    let (session_side, socket_side) = tokio::io::duplex(BUFFER);
    let (mut from_session, mut to_session) = tokio::io::split(socket_side);
    let (mut sink, mut messages) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            match message {
                Message::Binary(data) => {
                    if to_session.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
                _ => break,
            }
        }
        let _ = to_session.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buffer = vec![0; BUFFER];
        while let Ok(read @ 1..) = from_session.read(&mut buffer).await {
            let data = Bytes::copy_from_slice(&buffer[..read]);
            if sink.send(Message::Binary(data)).await.is_err() {
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = sink.close().await;
    });
    session_side
}
