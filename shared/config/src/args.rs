use std::path::PathBuf;

use crate::{Config, Daemon, LogFormat, Result, load_layers};

/// Flags every Crimson daemon accepts; each overrides the matching config file setting.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Main config file; drop-ins are read from `crimson.d/` beside it.
    #[arg(long, global = true, env = "CRIMSON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Root of the persistent state; each daemon keeps its database in `<state-root>/<daemon>/`.
    #[arg(long, global = true, env = "CRIMSON_STATE_ROOT")]
    pub state_root: Option<PathBuf>,
    /// Directory of the sockets and runtime files.
    #[arg(long, global = true, env = "CRIMSON_RUN_ROOT")]
    pub run_root: Option<PathBuf>,
    /// This daemon's own socket (default `<run-root>/<daemon>.sock`).
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Log filter, in `RUST_LOG` syntax ("info", "crimson_image=debug").
    #[arg(long, global = true, env = "CRIMSON_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, global = true, env = "CRIMSON_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// OTLP/gRPC endpoint to export trace spans to ("http://127.0.0.1:4317"); off when unset.
    #[arg(long, global = true, env = "CRIMSON_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl CommonArgs {
    /// Loads the config layers and applies these flags on top, for `daemon`.
    pub fn load(&self, daemon: Daemon) -> Result<Config> {
        let mut config = load_layers(self.config.as_deref())?;
        if let Some(dir) = &self.state_root {
            config.state_root = dir.clone();
        }
        if let Some(dir) = &self.run_root {
            config.run_root = dir.clone();
        }
        if let Some(socket) = &self.socket {
            config.sockets.set(daemon, socket.clone());
        }
        if let Some(level) = &self.log_level {
            config.log.level = level.clone();
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            config.telemetry.otlp_endpoint = Some(endpoint.clone()).filter(|e| !e.is_empty());
        }
        Ok(config)
    }
}
