/// Database failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption, or the database is locked by another process).
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    /// Making writes durable failed (every writer that flush served gets the same error).
    #[error("flushing the database: {0}")]
    Flush(#[source] std::sync::Arc<sled::Error>),
    /// The database's flusher thread is gone (it could not start, or the process is ending).
    #[error("the database flusher is not running")]
    FlusherGone,
    /// The flusher thread could not be started.
    #[error("starting the database flusher: {0}")]
    FlusherStart(#[source] std::io::Error),
    /// A stored value does not decode into its type.
    #[error("decoding {tree}/{key}: {source}")]
    Decode {
        /// Tree name.
        tree: String,
        /// Key.
        key: String,
        /// serde failure.
        source: serde_json::Error,
    },
    /// A tree was opened again with another value type.
    #[error("tree {0} is already open with another value type")]
    TreeType(String),
    /// A value could not be encoded.
    #[error("encoding a value: {0}")]
    Encode(serde_json::Error),
    /// The database was written by a newer Crimson.
    #[error("database schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// Version on disk.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
    /// A migration step failed.
    #[error("migrating schema from version {from}: {message}")]
    Migration {
        /// Version being migrated from.
        from: u32,
        /// What went wrong.
        message: String,
    },
}

/// Result with [`StoreError`].
pub type Result<T> = std::result::Result<T, StoreError>;
