//! Digests in the OCI `sha256:<hex>` form, and a reader that hashes what passes through it.

use std::io::Read;

use sha2::{Digest, Sha256};

/// Hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads `inner` to its end, then answers the `sha256:<hex>` digest of all bytes read.
    pub fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// True for `sha256:` followed by 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The chain id of a layer: its diff id for a base layer, else
/// `sha256(parent chain id + " " + diff id)` (OCI image spec, config.md).
pub fn chain_id(parent_chain_id: &str, diff_id: &str) -> String {
    if parent_chain_id.is_empty() {
        return diff_id.to_string();
    }
    let mut hasher = Sha256::new();
    hasher.update(parent_chain_id.as_bytes());
    hasher.update(b" ");
    hasher.update(diff_id.as_bytes());
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_whole_stream_even_when_only_partly_read() {
        let mut reader = HashingReader::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(
            reader.finish().unwrap(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn validates_digests() {
        assert!(is_sha256_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_digest("sha256:../../etc"));
        assert!(!is_sha256_digest("md5:abc"));
    }

    #[test]
    fn chain_id_of_base_layer_is_its_diff_id() {
        assert_eq!(chain_id("", "sha256:aa"), "sha256:aa");
        assert_ne!(chain_id("sha256:aa", "sha256:bb"), "sha256:bb");
    }
}
