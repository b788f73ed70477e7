/// Database failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption, or the database is locked by another process).
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
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
