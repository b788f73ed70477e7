//! Lets a client whose `:authority` the h2 server refuses still call a unix socket.
//!
//! gRPC C-core (Python, C++, Ruby, PHP) names a unix socket's authority after its path,
//! percent-encoded (`run%2Fcrimson%2Fcrimson.sock`), and grpc-java sends the raw path. The h2
//! server under tonic answers either with RST_STREAM PROTOCOL_ERROR before any service sees the
//! call. [`AuthorityRepair`] sits between the accepted socket and h2 and decodes the client's
//! first header block: when its authority is one h2 accepts (tonic and Go clients send one), the
//! connection is passed through untouched from then on; otherwise every header block of the
//! connection is decoded and encoded again with `:authority: localhost`, as a Go server would
//! take it. HPACK keeps state per connection, so it is all blocks or none.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, BufMut, BytesMut};
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's default, which the
/// server keeps).
const MAX_FRAME: usize = 16_384;
/// The dynamic table size of the protocol's default SETTINGS_HEADER_TABLE_SIZE.
const TABLE_SIZE: usize = 4_096;
/// A header block larger than this closes the connection (h2 refuses far smaller ones).
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// What a refused authority becomes.
const REPLACEMENT: &[u8] = b"localhost";

/// An accepted connection whose header blocks get an authority the h2 server accepts.
pub struct AuthorityRepair<S> {
    inner: S,
    rewriter: HeaderRewriter,
    input: BytesMut,
    output: BytesMut,
    eof: bool,
}

impl<S> AuthorityRepair<S> {
    /// Wraps a freshly accepted connection (before any byte of it was read).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: HeaderRewriter::default(),
            input: BytesMut::new(),
            output: BytesMut::new(),
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityRepair<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() {
                let n = buf.remaining().min(this.output.len());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.passes_through() && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.rewriter.step(&mut this.input, &mut this.output)? {
                continue;
            }
            if this.eof {
                // An unfinished frame at the end goes to h2 as it is; it reports it.
                this.output.extend_from_slice(&this.input.split());
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; MAX_FRAME];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
            }
            this.input.extend_from_slice(read.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityRepair<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for AuthorityRepair<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Where the rewriter is in the client's byte stream.
#[derive(Debug, Default, PartialEq)]
enum Mode {
    /// Before the 24-byte connection preface.
    #[default]
    Preface,
    /// Before the first header block, which decides between the two modes below.
    Undecided,
    /// Every header block is encoded again.
    Rewriting,
    /// Bytes go through untouched.
    PassingThrough,
}

/// The byte-stream logic of [`AuthorityRepair`], apart from any I/O.
struct HeaderRewriter {
    mode: Mode,
    /// Payload bytes of the frame being forwarded that are still to come.
    forwarding: usize,
    decoder: Decoder<'static>,
    encoder: Encoder<'static>,
}

impl Default for HeaderRewriter {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Self {
            mode: Mode::default(),
            forwarding: 0,
            decoder,
            encoder: Encoder::new(),
        }
    }
}

impl HeaderRewriter {
    /// Whether every byte from now on goes through untouched.
    fn passes_through(&self) -> bool {
        self.mode == Mode::PassingThrough
    }

    /// Moves what it can from `input` to `output`; false when it needs more input to go on.
    fn step(&mut self, input: &mut BytesMut, output: &mut BytesMut) -> io::Result<bool> {
        match self.mode {
            Mode::PassingThrough => {
                let all = input.len();
                Ok(forward(input, output, all))
            }
            _ if self.forwarding > 0 => {
                let n = self.forwarding.min(input.len());
                self.forwarding -= n;
                Ok(forward(input, output, n))
            }
            Mode::Preface => {
                let seen = input.len().min(PREFACE.len());
                if input[..seen] != PREFACE[..seen] {
                    self.mode = Mode::PassingThrough;
                    return Ok(true);
                }
                if seen < PREFACE.len() {
                    return Ok(false);
                }
                self.mode = Mode::Undecided;
                Ok(forward(input, output, PREFACE.len()))
            }
            Mode::Undecided | Mode::Rewriting => self.frame(input, output),
        }
    }

    /// Handles the frame at the start of `input`.
    fn frame(&mut self, input: &mut BytesMut, output: &mut BytesMut) -> io::Result<bool> {
        let Some(first) = FrameHeader::parse(input) else {
            return Ok(false);
        };
        if first.kind != HEADERS {
            output.extend_from_slice(&input.split_to(FRAME_HEADER));
            self.forwarding = first.length;
            return Ok(true);
        }
        let Some(block_end) = header_block_end(input)? else {
            return Ok(false);
        };
        let frames = input.split_to(block_end);
        let fragment = header_fragment(&frames)?;
        let headers = self.decoder.decode(&fragment).map_err(|error| {
            io::Error::new(io::ErrorKind::InvalidData, format!("HPACK: {error:?}"))
        })?;
        if self.mode == Mode::Undecided {
            if headers
                .iter()
                .all(|(name, value)| !refused_authority(name, value))
            {
                self.mode = Mode::PassingThrough;
                output.extend_from_slice(&frames);
                return Ok(true);
            }
            self.mode = Mode::Rewriting;
        }
        let repaired = headers.iter().map(|(name, value)| {
            let value = if refused_authority(name, value) {
                REPLACEMENT
            } else {
                value
            };
            (name.as_slice(), value)
        });
        let block = self.encoder.encode(repaired);
        write_header_block(output, first.stream, first.flags & END_STREAM, &block);
        Ok(true)
    }
}

/// Moves the first `n` bytes of `input` to `output`; whether there were any.
fn forward(input: &mut BytesMut, output: &mut BytesMut, n: usize) -> bool {
    output.extend_from_slice(&input.split_to(n));
    n > 0
}

/// Whether `name: value` is an `:authority` the h2 server refuses.
fn refused_authority(name: &[u8], value: &[u8]) -> bool {
    name == b":authority" && http::uri::Authority::try_from(value).is_err()
}

/// The fixed 9 bytes in front of every frame.
struct FrameHeader {
    length: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    /// The frame header at the start of `bytes`, if all of it is there.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let header = bytes.get(..FRAME_HEADER)?;
        Some(Self {
            length: usize::from(header[0]) << 16
                | usize::from(header[1]) << 8
                | usize::from(header[2]),
            kind: header[3],
            flags: header[4],
            stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
        })
    }
}

/// The length of the HEADERS frame and its CONTINUATION frames at the start of `input`, once
/// all of them are there.
fn header_block_end(input: &[u8]) -> io::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(frame) = FrameHeader::parse(&input[at..]) else {
            return Ok(None);
        };
        if at > 0 && frame.kind != CONTINUATION {
            return Err(invalid("a header block interrupted by another frame"));
        }
        at += FRAME_HEADER + frame.length;
        if at > MAX_HEADER_BLOCK {
            return Err(invalid("a header block over 1 MiB"));
        }
        if input.len() < at {
            return Ok(None);
        }
        if frame.flags & END_HEADERS != 0 {
            return Ok(Some(at));
        }
    }
}

/// The HPACK block carried by a HEADERS frame and its CONTINUATION frames, without padding
/// and priority fields.
fn header_fragment(frames: &[u8]) -> io::Result<Vec<u8>> {
    let mut fragment = Vec::with_capacity(frames.len());
    let mut at = 0;
    while at < frames.len() {
        let frame = FrameHeader::parse(&frames[at..]).ok_or_else(|| invalid("a cut frame"))?;
        let mut payload = &frames[at + FRAME_HEADER..at + FRAME_HEADER + frame.length];
        if frame.kind == HEADERS {
            let mut padding = 0;
            if frame.flags & PADDED != 0 {
                padding = usize::from(*payload.first().ok_or_else(|| invalid("no pad length"))?);
                payload = &payload[1..];
            }
            if frame.flags & PRIORITY != 0 {
                payload = payload
                    .get(5..)
                    .ok_or_else(|| invalid("a cut priority field"))?;
            }
            let end = payload
                .len()
                .checked_sub(padding)
                .ok_or_else(|| invalid("padding"))?;
            payload = &payload[..end];
        }
        fragment.extend_from_slice(payload);
        at += FRAME_HEADER + frame.length;
    }
    Ok(fragment)
}

/// Writes `block` as one HEADERS frame (with `end_stream` of the original) and as many
/// CONTINUATION frames as its size needs.
fn write_header_block(output: &mut BytesMut, stream: u32, end_stream: u8, block: &[u8]) {
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut kind = HEADERS;
    let mut flags = end_stream;
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let last = chunks.peek().is_none();
        let length = chunk.len() as u32;
        output.put_slice(&length.to_be_bytes()[1..]);
        output.put_u8(kind);
        output.put_u8(if last { flags | END_HEADERS } else { flags });
        output.put_u32(stream);
        output.put_slice(chunk);
        if last {
            return;
        }
        kind = CONTINUATION;
        flags = 0;
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("HTTP/2 from the client: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_frames(
        headers: &[(&[u8], &[u8])],
        encoder: &mut Encoder<'_>,
        split: usize,
    ) -> Vec<u8> {
        let block = encoder.encode(headers.iter().copied());
        let mut out = BytesMut::new();
        let (first, rest) = block.split_at(split.min(block.len()));
        // HEADERS (padded, END_STREAM) then one CONTINUATION with END_HEADERS.
        out.put_slice(&((first.len() + 3) as u32).to_be_bytes()[1..]);
        out.put_u8(HEADERS);
        out.put_u8(PADDED | END_STREAM);
        out.put_u32(1);
        out.put_u8(2);
        out.put_slice(first);
        out.put_slice(&[0, 0]);
        out.put_slice(&(rest.len() as u32).to_be_bytes()[1..]);
        out.put_u8(CONTINUATION);
        out.put_u8(END_HEADERS);
        out.put_u32(1);
        out.put_slice(rest);
        out.to_vec()
    }

    fn settings_frame() -> Vec<u8> {
        vec![0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 100]
    }

    /// Feeds `bytes` one at a time (the worst split) and returns what came out.
    fn run(rewriter: &mut HeaderRewriter, bytes: &[u8]) -> Vec<u8> {
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        for byte in bytes {
            input.put_u8(*byte);
            while rewriter.step(&mut input, &mut output).unwrap() {}
        }
        assert!(input.is_empty(), "bytes left behind");
        output.to_vec()
    }

    fn decode_all(bytes: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut decoder = Decoder::new();
        let mut at = PREFACE.len();
        let mut blocks = Vec::new();
        while at < bytes.len() {
            let frame = FrameHeader::parse(&bytes[at..]).unwrap();
            if frame.kind == HEADERS {
                let end = header_block_end(&bytes[at..]).unwrap().unwrap();
                let fragment = header_fragment(&bytes[at..at + end]).unwrap();
                blocks.push(decoder.decode(&fragment).unwrap());
                at += end;
            } else {
                at += FRAME_HEADER + frame.length;
            }
        }
        blocks
    }

    fn request(authority: &'static [u8]) -> Vec<(&'static [u8], &'static [u8])> {
        vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/runtime.v1.RuntimeService/Version"),
            (b":authority", authority),
            (b"content-type", b"application/grpc"),
        ]
    }

    fn connection(authority: &'static [u8]) -> Vec<u8> {
        let mut encoder = Encoder::new();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(settings_frame());
        bytes.extend(headers_frames(&request(authority), &mut encoder, 10));
        bytes.extend([0, 0, 0, 0x0, 0x1, 0, 0, 0, 1]);
        bytes.extend(headers_frames(&request(authority), &mut encoder, 3));
        bytes
    }

    #[test]
    fn a_connection_with_an_accepted_authority_passes_unchanged() {
        let bytes = connection(b"localhost");
        let mut rewriter = HeaderRewriter::default();
        assert_eq!(run(&mut rewriter, &bytes), bytes);
        assert!(rewriter.passes_through());
    }

    #[test]
    fn a_percent_encoded_path_authority_becomes_localhost_in_every_block() {
        let bytes = connection(b"run%2Fcrimson%2Fcrimson.sock");
        let mut rewriter = HeaderRewriter::default();
        let out = run(&mut rewriter, &bytes);
        assert!(!rewriter.passes_through());
        let blocks = decode_all(&out);
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            let authority = block
                .iter()
                .find(|(name, _)| name == b":authority")
                .unwrap();
            assert_eq!(authority.1, b"localhost");
            assert!(
                block
                    .iter()
                    .any(|(n, v)| n == b":path" && v.ends_with(b"/Version"))
            );
        }
        // The other frames are still there, in order: SETTINGS first, DATA between.
        assert_eq!(
            &out[PREFACE.len()..PREFACE.len() + 15],
            &settings_frame()[..]
        );
    }

    #[test]
    fn a_raw_path_authority_is_repaired_too() {
        let out = run(
            &mut HeaderRewriter::default(),
            &connection(b"/run/crimson/crimson.sock"),
        );
        assert_eq!(decode_all(&out)[0][3].1, b"localhost");
    }

    #[test]
    fn bytes_that_are_not_http2_pass_unchanged() {
        let bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut rewriter = HeaderRewriter::default();
        assert_eq!(run(&mut rewriter, bytes), bytes);
    }

    #[test]
    fn a_header_block_interrupted_by_another_frame_is_refused() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend([0, 0, 1, HEADERS, 0, 0, 0, 0, 1, 0x82]);
        bytes.extend(settings_frame());
        let mut input = BytesMut::from(&bytes[..]);
        let mut rewriter = HeaderRewriter::default();
        let mut output = BytesMut::new();
        assert!(rewriter.step(&mut input, &mut output).unwrap());
        assert!(rewriter.step(&mut input, &mut output).is_err());
    }
}
