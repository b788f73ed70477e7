use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A file is not valid TOML or does not fit the schema.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file, or `<merged>` for the combined layers.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A configuration could not be written as TOML.
    #[error("writing the configuration as TOML: {0}")]
    Encode(#[from] toml::ser::Error),
}

/// Result with [`ConfigError`].
pub type Result<T> = std::result::Result<T, ConfigError>;
