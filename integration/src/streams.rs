//! Test clients for the streaming server, written from the protocol documents (SPDY/3 draft,
//! the Kubernetes remote-command and port-forward conventions), not from the server's code:
//! an HTTP/1.1 upgrade, a SPDY/3 client that records every frame it receives, and WebSocket
//! helpers.

use std::collections::HashMap;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream},
    net::TcpStream,
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

/// An upgraded connection and what the server answered.
pub struct Upgrade {
    pub stream: TcpStream,
    pub status: u16,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Sends `GET <url>` with `headers` and reads the response head (and, for a refusal, the body).
pub async fn upgrade(url: &str, headers: &[(&str, &str)]) -> Upgrade {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = TcpStream::connect(authority)
        .await
        .expect("connecting to the streaming server");
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = Vec::new();
    if status != 101 {
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        body.resize(length, 0);
        let _ = stream.read_exact(&mut body).await;
    }
    Upgrade {
        stream,
        status,
        headers,
        body,
    }
}

/// The SPDY/3 header compression dictionary (SPDY/3 draft, section 2.6.10.1).
const DICTIONARY: &[u8] = include_bytes!("spdy3_dictionary.bin");

/// What a SPDY client saw, frame by frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpdyEvent {
    Reply(u32),
    Data {
        stream: u32,
        data: Vec<u8>,
        fin: bool,
    },
    Reset {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    GoAway,
}

/// A minimal SPDY/3 client, on a TCP connection or any other byte stream.
pub struct SpdyClient<S = TcpStream> {
    stream: S,
    compress: Compress,
    decompress: Decompress,
    next_id: u32,
    /// Every control frame's version, to check it is 3.
    pub versions: Vec<u16>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SpdyClient<S> {
    /// A client on an upgraded connection.
    pub fn new(stream: S) -> Self {
        let mut compress = Compress::new(Compression::best(), true);
        compress.set_dictionary(DICTIONARY).unwrap();
        Self {
            stream,
            compress,
            decompress: Decompress::new(true),
            next_id: 1,
            versions: Vec::new(),
        }
    }

    fn compress_headers(&mut self, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut block = (pairs.len() as u32).to_be_bytes().to_vec();
        for (name, value) in pairs {
            for part in [name, value] {
                block.extend_from_slice(&(part.len() as u32).to_be_bytes());
                block.extend_from_slice(part.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(block.len() + 256);
        self.compress
            .compress_vec(&block, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    }

    /// Opens a stream with `headers` (SYN_STREAM); answers its id.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let block = self.compress_headers(headers);
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&block);
        self.control(1, 0, &payload).await;
        id
    }

    async fn control(&mut self, kind: u16, flags: u8, payload: &[u8]) {
        let mut frame = vec![0x80, 0x03];
        frame.extend_from_slice(&kind.to_be_bytes());
        frame.push(flags);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Sends a DATA frame (with FIN when `fin`).
    pub async fn send(&mut self, stream: u32, data: &[u8], fin: bool) {
        let mut frame = stream.to_be_bytes().to_vec();
        frame.push(u8::from(fin));
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(data);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Sends a PING.
    pub async fn ping(&mut self, id: u32) {
        self.control(6, 0, &id.to_be_bytes()).await;
    }

    /// The next frame from the server, `None` when the connection ends.
    pub async fn next(&mut self) -> Option<SpdyEvent> {
        loop {
            let mut header = [0u8; 8];
            self.stream.read_exact(&mut header).await.ok()?;
            let length = u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload).await.ok()?;
            let word = |at: usize| {
                u32::from_be_bytes(payload[at..at + 4].try_into().unwrap()) & 0x7fff_ffff
            };
            if header[0] & 0x80 == 0 {
                let stream = u32::from_be_bytes(header[..4].try_into().unwrap()) & 0x7fff_ffff;
                return Some(SpdyEvent::Data {
                    stream,
                    data: payload,
                    fin: header[4] & 1 != 0,
                });
            }
            self.versions
                .push(u16::from_be_bytes([header[0] & 0x7f, header[1]]));
            match u16::from_be_bytes([header[2], header[3]]) {
                2 => {
                    // Inflate the header block to keep the shared zlib stream in step.
                    let mut out = Vec::with_capacity(4096);
                    let block = &payload[4..];
                    let start = self.decompress.total_in();
                    if let Err(e) =
                        self.decompress
                            .decompress_vec(block, &mut out, FlushDecompress::Sync)
                        && e.needs_dictionary().is_some()
                    {
                        self.decompress.set_dictionary(DICTIONARY).unwrap();
                        let consumed = (self.decompress.total_in() - start) as usize;
                        self.decompress
                            .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync)
                            .unwrap();
                    }
                    assert_eq!(
                        (self.decompress.total_in() - start) as usize,
                        block.len(),
                        "the whole header block is consumed"
                    );
                    return Some(SpdyEvent::Reply(word(0)));
                }
                3 => {
                    return Some(SpdyEvent::Reset {
                        stream: word(0),
                        status: word(4),
                    });
                }
                6 => return Some(SpdyEvent::Ping(word(0))),
                7 => return Some(SpdyEvent::GoAway),
                _ => continue,
            }
        }
    }

    /// Reads frames until the connection ends or GOAWAY; answers them all.
    pub async fn drain(&mut self) -> Vec<SpdyEvent> {
        let mut events = Vec::new();
        while let Some(event) =
            tokio::time::timeout(std::time::Duration::from_secs(30), self.next())
                .await
                .ok()
                .flatten()
        {
            let last = event == SpdyEvent::GoAway;
            events.push(event);
            if last {
                break;
            }
        }
        events
    }
}

/// A WebSocket as a byte stream, the way client-go's tunneling connection uses it for
/// `SPDY/3.1+portforward.k8s.io`: each write leaves as one binary message, reads run on
/// across message boundaries. Anything but a binary message from the server cuts the stream
/// short, so the session the test expects never completes.
pub fn websocket_bytes(socket: WebSocketStream<TcpStream>) -> DuplexStream {
    let (client_side, pump_side) = tokio::io::duplex(16 * 1024);
    let (mut pump_reader, mut pump_writer) = tokio::io::split(pump_side);
    let (mut outgoing, mut incoming) = socket.split();
    tokio::spawn(async move {
        loop {
            let mut chunk = vec![0u8; 16 * 1024];
            let Ok(read @ 1..) = pump_reader.read(&mut chunk).await else {
                break;
            };
            chunk.truncate(read);
            if outgoing.send(Message::Binary(chunk.into())).await.is_err() {
                break;
            }
        }
        let _ = outgoing.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            match message {
                Message::Binary(data) => {
                    if pump_writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                _ => break,
            }
        }
        let _ = pump_writer.shutdown().await;
    });
    client_side
}

/// The bytes a stream received, in order, from recorded events.
pub fn stream_bytes(events: &[SpdyEvent], stream: u32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            SpdyEvent::Data {
                stream: s, data, ..
            } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}
