//! SPDY/3 frames as Kubernetes clients (moby/spdystream) write and read them. Integers are
//! big-endian; control frames start with `0x80 0x03`, then type, flags and a 24-bit length.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Control frame types.
/// Control frame type SYN_STREAM: the peer opens a stream.
pub const SYN_STREAM: u16 = 1;
/// Control frame type SYN_REPLY: the answer to a SYN_STREAM.
pub const SYN_REPLY: u16 = 2;
/// Control frame type RST_STREAM: a stream ends abnormally.
pub const RST_STREAM: u16 = 3;
/// Control frame type SETTINGS.
pub const SETTINGS: u16 = 4;
/// Control frame type PING.
pub const PING: u16 = 6;
/// Control frame type GOAWAY: no new streams.
pub const GOAWAY: u16 = 7;
/// Control frame type HEADERS.
pub const HEADERS: u16 = 8;
/// Control frame type WINDOW_UPDATE.
pub const WINDOW_UPDATE: u16 = 9;

/// FIN: the sender's side of the stream is done.
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status CANCEL.
pub const CANCEL: u32 = 5;
/// RST_STREAM status PROTOCOL_ERROR.
pub const PROTOCOL_ERROR: u32 = 1;

/// Largest frame payload accepted.
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// One frame as read from the wire (header blocks still compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A control frame: type, flags and payload.
    Control {
        /// The control frame type (SYN_STREAM, PING, …).
        kind: u16,
        /// The frame's flags.
        flags: u8,
        /// The frame's payload.
        payload: Bytes,
    },
    /// A data frame.
    Data {
        /// The stream it belongs to.
        stream_id: u32,
        /// The frame's flags (FIN).
        flags: u8,
        /// The bytes carried.
        data: Bytes,
    },
}

/// Reads the next frame; `None` at a clean end of the connection.
pub async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let flags = header[4];
    let length = u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
    if length > MAX_PAYLOAD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "SPDY frame too large",
        ));
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    let payload = Bytes::from(payload);
    Ok(Some(if header[0] & 0x80 != 0 {
        Frame::Control {
            kind: u16::from_be_bytes([header[2], header[3]]),
            flags,
            payload,
        }
    } else {
        Frame::Data {
            stream_id: u32::from_be_bytes([header[0], header[1], header[2], header[3]])
                & 0x7fff_ffff,
            flags,
            data: payload,
        }
    }))
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&[0x80, 0x03]);
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(payload);
    frame
}

/// A SYN_REPLY with an already compressed header block.
pub fn syn_reply(stream_id: u32, block: &[u8]) -> Vec<u8> {
    let mut payload = stream_id.to_be_bytes().to_vec();
    payload.extend_from_slice(block);
    control(SYN_REPLY, 0, &payload)
}

/// A SYN_STREAM (used by test clients) with an already compressed header block.
pub fn syn_stream(stream_id: u32, block: &[u8]) -> Vec<u8> {
    let mut payload = stream_id.to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    payload.extend_from_slice(&[0, 0]);
    payload.extend_from_slice(block);
    control(SYN_STREAM, 0, &payload)
}

/// A RST_STREAM.
pub fn rst_stream(stream_id: u32, status: u32) -> Vec<u8> {
    let mut payload = stream_id.to_be_bytes().to_vec();
    payload.extend_from_slice(&status.to_be_bytes());
    control(RST_STREAM, 0, &payload)
}

/// A PING answer (the same id).
pub fn ping(id: u32) -> Vec<u8> {
    control(PING, 0, &id.to_be_bytes())
}

/// A GOAWAY with status OK.
pub fn goaway(last_good_stream: u32) -> Vec<u8> {
    let mut payload = last_good_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    control(GOAWAY, 0, &payload)
}

/// A DATA frame.
pub fn data(stream_id: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(data);
    frame
}

/// The stream id at the start of a SYN_STREAM, SYN_REPLY, RST_STREAM or HEADERS payload.
pub fn stream_id_of(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) & 0x7fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let bytes = [data(3, FLAG_FIN, b"hello"), ping(7), rst_stream(5, CANCEL)].concat();
        let mut reader = &bytes[..];
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some(Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello")
            })
        );
        let Some(Frame::Control { kind, payload, .. }) = read_frame(&mut reader).await.unwrap()
        else {
            panic!()
        };
        assert_eq!((kind, stream_id_of(&payload)), (PING, Some(7)));
        let Some(Frame::Control { kind, payload, .. }) = read_frame(&mut reader).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (kind, &payload[4..]),
            (RST_STREAM, &CANCEL.to_be_bytes()[..])
        );
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
    }

    #[test]
    fn control_header_layout() {
        assert_eq!(
            &ping(1)[..8],
            &[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04]
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn read_all(bytes: &[u8]) -> Vec<Frame> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut reader = bytes;
                let mut frames = Vec::new();
                while let Ok(Some(frame)) = read_frame(&mut reader).await {
                    frames.push(frame);
                }
                frames
            })
        }

        proptest! {
            #[test]
            fn any_bytes_read_as_frames_or_stop(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
                let _ = read_all(&bytes);
            }

            #[test]
            fn data_frames_read_back(
                frames in prop::collection::vec(
                    (0u32..0x8000_0000, any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)),
                    0..6,
                ),
            ) {
                let bytes: Vec<u8> = frames.iter().flat_map(|(id, flags, d)| data(*id, *flags, d)).collect();
                let expected: Vec<Frame> = frames
                    .into_iter()
                    .map(|(stream_id, flags, d)| Frame::Data { stream_id, flags, data: Bytes::from(d) })
                    .collect();
                prop_assert_eq!(read_all(&bytes), expected);
            }
        }
    }
}
