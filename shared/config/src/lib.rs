//! Configuration shared by every Crimson process.
//!
//! Precedence, lowest first: built-in defaults, `/etc/crimson/crimson.toml` (or `--config`),
//! drop-ins in `crimson.d/*.toml` beside it (lexical order), then command-line flags and their
//! environment variables.

mod args;
mod daemon;
mod error;
mod load;
mod model;

pub use args::CommonArgs;
pub use daemon::Daemon;
pub use error::{ConfigError, Result};
pub use load::{DEFAULT_CONFIG_PATH, load_layers};
pub use model::*;
