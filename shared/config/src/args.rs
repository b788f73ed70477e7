use std::path::PathBuf;

use toml::{Table, Value};

use crate::{
    Config, Daemon, LogFormat, Result,
    explain::Setting,
    load::{Layer, read_layers, typed},
};

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
        let (main, layers) = self.layers(daemon)?;
        config_of(&main, &layers)
    }

    /// [`load`](Self::load), and every effective setting with where it came from: a file, the
    /// command line (or its environment variable), or the built-in default. Both come from
    /// one reading of the files.
    pub fn load_explained(&self, daemon: Daemon) -> Result<(Config, Vec<Setting>)> {
        let (main, layers) = self.layers(daemon)?;
        let config = config_of(&main, &layers)?;
        let settings = crate::explain::settings(&config, &layers);
        Ok((config, settings))
    }

    /// The files' layers, then the flags'.
    fn layers(&self, daemon: Daemon) -> Result<(PathBuf, Vec<Layer>)> {
        let (main, mut layers) = read_layers(self.config.as_deref())?;
        layers.push(self.as_layer(daemon));
        Ok((main, layers))
    }

    /// The flags that are given, as the config keys they set.
    fn as_layer(&self, daemon: Daemon) -> Layer {
        let mut table = Table::new();
        let mut set = |section: Option<&str>, key: &str, value: String| {
            let target = match section {
                Some(name) => table
                    .entry(name)
                    .or_insert_with(|| Value::Table(Table::new()))
                    .as_table_mut()
                    .expect("flag sections are tables"),
                None => &mut table,
            };
            target.insert(key.to_string(), Value::String(value));
        };
        let path = |p: &std::path::Path| p.display().to_string();
        if let Some(dir) = &self.state_root {
            set(None, "state_root", path(dir));
        }
        if let Some(dir) = &self.run_root {
            set(None, "run_root", path(dir));
        }
        if let Some(socket) = &self.socket {
            set(Some("sockets"), daemon.short_name(), path(socket));
        }
        if let Some(level) = &self.log_level {
            set(Some("log"), "level", level.clone());
        }
        if let Some(format) = self.log_format {
            let name = match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            set(Some("log"), "format", name.to_string());
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            set(Some("telemetry"), "otlp_endpoint", endpoint.clone());
        }
        Layer {
            origin: "command line".to_string(),
            table,
        }
    }
}

/// `layers` as the typed configuration.
fn config_of(main: &std::path::Path, layers: &[Layer]) -> Result<Config> {
    let mut config = typed(main, layers)?;
    // An empty endpoint turns export off.
    config.telemetry.otlp_endpoint = config.telemetry.otlp_endpoint.filter(|e| !e.is_empty());
    Ok(config)
}
