//! crimsonctl: operator tool for Crimson.
//!
//! `up` starts the five daemons in the background (and a holder that keeps the front door's
//! socket open across its restarts) and waits until each answers its health check; `down`
//! stops them; `restart` replaces one; `status` shows each daemon's health, pid, version,
//! uptime, restarts and state. `inspect` and `check` ask every daemon what it holds; `config`
//! shows the effective settings and their origins. `pods`, `ps`, `logs`, `pull`, `images`,
//! `rmi` and `info` talk CRI to the front door, for people without crictl.

#![warn(missing_docs)]

mod check;
mod cri;
mod inspect;
mod lifecycle;
mod probe;
mod workloads;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use crimson_config::{CommonArgs, Daemon};

/// Start, stop and inspect Crimson.
#[derive(Debug, Parser)]
#[command(name = "crimsonctl", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the five daemons in the background and wait until all answer health checks.
    Up {
        /// Directory holding the crimson-* binaries (default: beside crimsonctl).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Seconds to wait for each daemon to become healthy.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Stop the daemons started by `up` (SIGTERM, then SIGKILL after the timeout).
    Down {
        /// Seconds to wait for each daemon to exit after SIGTERM.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
    },
    /// Restart one daemon started by `up` (e.g. onto a new binary) and wait until it is
    /// healthy; calls in flight finish first, and the front door refuses no connection.
    Restart {
        /// cri, image, sandbox, network or storage (or crimson-<name>).
        #[arg(value_parser = parse_daemon)]
        daemon: Daemon,
        /// Directory holding the crimson-* binaries (default: beside crimsonctl).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Seconds to wait for it to stop, and then to become healthy.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Make one daemon (or each) read its configuration again, as SIGHUP does: the log level,
    /// runtime handlers, the pause image, the metrics endpoint… apply without a restart.
    Reload {
        /// cri, image, sandbox, network or storage (default: all five).
        #[arg(value_parser = parse_daemon)]
        daemon: Option<Daemon>,
    },
    /// Hold the front door's listening socket open and hand it to each crimson-cri that starts
    /// (started by `up`).
    #[command(hide = true)]
    HoldSocket,
    /// Health, pid, version, uptime, restarts and state counts of each daemon; exits 1 if any
    /// is not serving.
    Status,
    /// The effective configuration (defaults, file, drop-ins, flags), each setting with where
    /// it came from.
    Config,
    /// Everything each daemon holds about a pod or a container (ID or a unique prefix).
    Inspect {
        /// pod or container.
        #[arg(value_enum)]
        kind: inspect::Kind,
        /// Its id, or a unique prefix of it.
        id: String,
        /// json or table.
        #[arg(long, short, value_enum, default_value = "json")]
        output: inspect::Output,
    },
    /// Cross-daemon consistency: objects a daemon holds that their owner does not know;
    /// exits 1 while any remain.
    Check {
        /// Remove them, through the daemon holding each.
        #[arg(long)]
        repair: bool,
    },
    /// List pod sandboxes.
    Pods,
    /// List running containers (all with --all).
    Ps {
        /// Containers in every state.
        #[arg(long, short)]
        all: bool,
    },
    /// Print a container's log.
    Logs {
        /// Container id, or a unique prefix of it.
        container: String,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
        /// Keep printing what it writes until it exits.
        #[arg(long, short)]
        follow: bool,
    },
    /// CRI Status and Version of the front door.
    Info,
    /// Pull an image through the front door.
    Pull {
        /// Image reference.
        image: String,
        /// Registry credentials as `user:password`.
        #[arg(long)]
        creds: Option<String>,
    },
    /// List images.
    Images,
    /// Remove images.
    Rmi {
        /// Image references or ids.
        images: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let config = cli.common.load(Daemon::Cri)?;
        match cli.command {
            Command::Up { bin_dir, timeout } => {
                lifecycle::up(&cli.common, &config, bin_dir, timeout).await
            }
            Command::Down { timeout } => lifecycle::down(&config, timeout).await,
            Command::Reload { daemon } => lifecycle::reload(&config, daemon),
            Command::Restart {
                daemon,
                bin_dir,
                timeout,
            } => lifecycle::restart(&cli.common, &config, daemon, bin_dir, timeout).await,
            Command::HoldSocket => {
                crimson_rpc::hold(&config.socket(Daemon::Cri), &config.cri_socket_holder()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Status => probe::status(&config).await,
            Command::Config => print_settings(&cli.common),
            Command::Inspect { kind, id, output } => {
                inspect::inspect(&config, kind, &id, output).await
            }
            Command::Check { repair } => check::check(&config, repair).await,
            Command::Pods => workloads::pods(&config).await,
            Command::Ps { all } => workloads::ps(&config, all).await,
            Command::Logs {
                container,
                tail,
                follow,
            } => workloads::logs(&config, &container, tail, follow).await,
            Command::Info => cri::info(&config).await,
            Command::Pull { image, creds } => cri::pull(&config, image, creds).await,
            Command::Images => cri::images(&config).await,
            Command::Rmi { images } => cri::remove(&config, images).await,
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crimsonctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `crimsonctl config`: `key = value  # origin` lines, in TOML's dotted-key syntax.
fn print_settings(common: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (_, settings) = common.load_explained(Daemon::Cri)?;
    let width = settings
        .iter()
        .map(|s| s.key.len() + s.value.len() + 3)
        .max()
        .unwrap_or(0);
    for setting in settings {
        let line = format!("{} = {}", setting.key, setting.value);
        println!("{line:<width$}  # {}", setting.origin);
    }
    Ok(ExitCode::SUCCESS)
}

/// A daemon by its short or binary name.
fn parse_daemon(name: &str) -> Result<Daemon, String> {
    Daemon::ALL
        .into_iter()
        .find(|d| d.short_name() == name || d.binary_name() == name)
        .ok_or_else(|| format!("no daemon {name:?}: cri, image, sandbox, network or storage"))
}
