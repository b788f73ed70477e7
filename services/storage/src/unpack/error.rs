use std::path::PathBuf;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's path would leave the layer directory or is malformed.
    #[error("unsafe path {path:?} in layer: {reason}")]
    UnsafePath {
        /// The path as the tar gives it.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An entry's path goes through a symlink (which could point anywhere).
    #[error("entry {path:?} goes through symlink {symlink:?}")]
    SymlinkTraversal {
        /// The entry's path.
        path: PathBuf,
        /// The symlink on its way.
        symlink: PathBuf,
    },
    /// An entry's path goes through something that is not a directory.
    #[error("entry {path:?}: {parent:?} is not a directory")]
    NotADirectory {
        /// The entry's path.
        path: PathBuf,
        /// The non-directory on its way.
        parent: PathBuf,
    },
    /// A hard link points at nothing usable inside the layer.
    #[error("hard link {path:?} -> {target:?}: {reason}")]
    HardLink {
        /// The link's path.
        path: PathBuf,
        /// Its target as the tar gives it.
        target: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The blob is not a readable (gzip) tar.
    #[error("reading the layer archive: {0}")]
    Archive(std::io::Error),
    /// The upload stream ended before the blob did.
    #[error("the layer stream ended early: {0}")]
    Interrupted(std::io::Error),
    /// A digest does not match.
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// "blob" or "diff id".
        what: &'static str,
        /// Digest promised by the manifest or config.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// The layer's compression is not supported.
    #[error("unsupported layer media type {0}")]
    UnsupportedMediaType(String),
    /// Writing to the layer directory failed.
    #[error("{action} {path:?}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl UnpackError {
    /// True when the layer's content is at fault (not the machine): the client sent bad data.
    pub fn is_bad_content(&self) -> bool {
        !matches!(self, UnpackError::Io { .. } | UnpackError::Interrupted(_))
    }

    /// Classifies a failure of reading the stream: an early end of the upload, or a bad archive.
    pub(crate) fn read(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::ConnectionAborted {
            UnpackError::Interrupted(error)
        } else {
            UnpackError::Archive(error)
        }
    }

    /// Shorthand for [`UnpackError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| UnpackError::Io {
            action,
            path,
            source,
        }
    }
}
