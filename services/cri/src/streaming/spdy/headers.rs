//! SPDY/3 header blocks: name/value pairs (32-bit lengths), compressed with one zlib stream
//! per direction per connection, primed with the SPDY/3 dictionary and sync-flushed after
//! every block.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The SPDY/3 header compression dictionary (a protocol constant of the SPDY/3 specification;
/// 1423 bytes, Adler-32 0xe3c6a7c2).
pub const DICTIONARY: &[u8] = b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00\x0aconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\x0dif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00\x00\x00\x0akeep-alive\x00\x00\x00\x06origin100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// Encodes pairs as an uncompressed header block.
pub fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut block = (pairs.len() as u32).to_be_bytes().to_vec();
    for (name, value) in pairs {
        block.extend_from_slice(&(name.len() as u32).to_be_bytes());
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(&(value.len() as u32).to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// Decodes an uncompressed header block (names lowercased; NUL-joined values kept joined).
pub fn decode(block: &[u8]) -> Option<Vec<(String, String)>> {
    let read_u32 = |at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(block.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let count = read_u32(0)?;
    let mut at = 4;
    let mut pairs = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name_len = read_u32(at)?;
        let name = block.get(at + 4..at + 4 + name_len)?;
        at += 4 + name_len;
        let value_len = read_u32(at)?;
        let value = block.get(at + 4..at + 4 + value_len)?;
        at += 4 + value_len;
        pairs.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Some(pairs)
}

/// The compressing side of a connection.
pub struct HeaderCompressor(Compress);

impl Default for HeaderCompressor {
    fn default() -> Self {
        let mut compress = Compress::new(Compression::best(), true);
        compress
            .set_dictionary(DICTIONARY)
            .expect("setting the SPDY dictionary on a fresh stream");
        Self(compress)
    }
}

impl HeaderCompressor {
    /// Compresses one header block, sync-flushed.
    pub fn compress(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 128);
        let start = self.0.total_in();
        loop {
            let consumed = (self.0.total_in() - start) as usize;
            // In-memory deflate of a valid stream cannot fail.
            let _ = self
                .0
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync);
            let all_in = (self.0.total_in() - start) as usize == block.len();
            if all_in && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity().max(256));
        }
    }
}

/// The decompressing side of a connection.
#[derive(Default)]
pub struct HeaderDecompressor(Option<Decompress>);

/// Largest header block accepted once decompressed: a few kilobytes of headers is what
/// kubectl sends; a small block that inflates past this (a compression bomb) is refused.
pub const MAX_HEADER_BLOCK: usize = 1 << 20;

impl HeaderDecompressor {
    /// Decompresses one header block; `None` when it is corrupt or inflates past
    /// [`MAX_HEADER_BLOCK`].
    pub fn decompress(&mut self, compressed: &[u8]) -> Option<Vec<u8>> {
        let inflate = self.0.get_or_insert_with(|| Decompress::new(true));
        let mut out = Vec::with_capacity(compressed.len() * 4 + 128);
        let start = inflate.total_in();
        loop {
            let consumed = (inflate.total_in() - start) as usize;
            match inflate.decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => return Some(out),
                Ok(_) => {
                    let all_in = (inflate.total_in() - start) as usize == compressed.len();
                    if all_in && out.len() < out.capacity() {
                        return Some(out);
                    }
                    if out.len() >= MAX_HEADER_BLOCK {
                        return None;
                    }
                    out.reserve(out.capacity().max(256));
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    inflate.set_dictionary(DICTIONARY).ok().map(drop)?
                }
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_specifications() {
        assert_eq!(DICTIONARY.len(), 1423);
    }

    #[test]
    fn an_empty_first_block_matches_the_reference_bytes() {
        let mut compressor = HeaderCompressor::default();
        let block = compressor.compress(&encode(&[]));
        assert_eq!(&block[..6], &[0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
        assert_eq!(&block[block.len() - 4..], &[0x00, 0x00, 0xff, 0xff]);
    }

    #[test]
    fn blocks_round_trip_through_one_stream_each_way() {
        let mut compressor = HeaderCompressor::default();
        let mut decompressor = HeaderDecompressor::default();
        for round in 0..3 {
            let value = format!("{round}");
            let block = compressor.compress(&encode(&[
                ("streamtype", "data"),
                ("port", "80"),
                ("requestid", &value),
            ]));
            let pairs = decode(&decompressor.decompress(&block).unwrap()).unwrap();
            assert_eq!(pairs[2], ("requestid".to_string(), value));
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_bytes_decode_or_are_refused(block in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&block);
                let _ = HeaderDecompressor::default().decompress(&block);
            }

            #[test]
            fn blocks_round_trip_through_the_compressors(
                pairs in prop::collection::vec(("[a-z][a-z0-9-]{0,15}", ".{0,40}"), 0..8),
            ) {
                let borrowed: Vec<(&str, &str)> =
                    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let block = encode(&borrowed);
                let compressed = HeaderCompressor::default().compress(&block);
                let inflated = HeaderDecompressor::default().decompress(&compressed).unwrap();
                prop_assert_eq!(decode(&inflated).unwrap(), pairs);
            }
        }

        #[test]
        fn a_compression_bomb_is_refused() {
            let huge = vec![0u8; 4 * MAX_HEADER_BLOCK];
            let compressed = HeaderCompressor::default().compress(&huge);
            assert!(compressed.len() < MAX_HEADER_BLOCK / 64);
            assert_eq!(HeaderDecompressor::default().decompress(&compressed), None);
        }
    }
}
