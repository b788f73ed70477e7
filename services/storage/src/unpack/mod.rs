//! Turning a layer blob (gzip or plain tar) into a directory, safely.
//!
//! Every entry path is checked before anything is written: absolute paths, `..` components,
//! paths through a symlink and hard links leaving the layer all fail the layer. OCI whiteouts
//! become overlay whiteouts (a 0/0 character device, the `trusted.overlay.opaque` xattr) for the
//! overlay driver, or deletions for the vfs driver.

mod entry;
mod error;
mod metadata;
mod safe_path;
mod whiteout;

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
};

use flate2::read::MultiGzDecoder;

pub use error::UnpackError;

use crate::digest::HashingReader;

/// How OCI whiteout entries are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Keep them as overlayfs whiteouts: the layer directory is one overlay lower dir.
    Overlay,
    /// Delete what they name: the layer directory already holds a copy of its parent.
    Delete,
}

/// What unpacking produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Digest of the bytes as received (compressed).
    pub blob_digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Bytes of regular file content written.
    pub size_bytes: u64,
    /// Filesystem objects created.
    pub inodes: u64,
}

/// Media types whose compression this unpacker cannot read.
const UNSUPPORTED_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// Unpacks the layer read from `blob` into the existing directory `dest` and answers both
/// digests. The caller compares them with what the manifest and config promise.
pub fn unpack_layer(
    blob: impl Read,
    media_type: &str,
    dest: &Path,
    mode: WhiteoutMode,
) -> Result<Unpacked, UnpackError> {
    if UNSUPPORTED_MEDIA_TYPES.contains(&media_type) {
        return Err(UnpackError::UnsupportedMediaType(media_type.to_string()));
    }
    let mut blob = HashingReader::new(blob);
    let (diff_id, stats) = {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut blob);
        let is_gzip = buffered
            .fill_buf()
            .map_err(UnpackError::read)?
            .starts_with(&[0x1f, 0x8b]);
        let tar: Box<dyn Read + '_> = if is_gzip {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut diff = HashingReader::new(tar);
        let stats = entry::unpack_entries(&mut diff, dest, mode)?;
        (diff.finish().map_err(UnpackError::read)?, stats)
    };
    Ok(Unpacked {
        blob_digest: blob.finish().map_err(UnpackError::read)?,
        diff_id,
        size_bytes: stats.size_bytes,
        inodes: stats.inodes,
    })
}

#[cfg(test)]
mod hostile_tars;
#[cfg(test)]
mod tests;
