//! Configuration shared by every Crimson process.
//!
//! Precedence, lowest first: built-in defaults, `/etc/crimson/crimson.toml` (or `--config`),
//! drop-ins in `crimson.d/*.toml` beside it (lexical order), then command-line flags and their
//! environment variables.

#![warn(missing_docs)]

mod args;
mod daemon;
mod error;
mod explain;
mod load;
mod model;

pub use args::CommonArgs;
pub use daemon::{DAEMON_EXECUTABLE, Daemon};
pub use error::{ConfigError, Result};
pub use explain::Setting;
pub use load::{DEFAULT_CONFIG_PATH, load_layers};
pub use model::*;
