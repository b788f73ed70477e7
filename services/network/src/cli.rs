//! crimson-network's command line and start-up.
//!
//! crimson-network: owns pod network namespaces and CNI attachments; serves
//! `crimson.network.v1.Network` on its unix socket.

use std::{ffi::OsString, process::ExitCode};

use crate::{NetworkError, NetworkService};
use clap::Parser;
use crimson_config::{CommonArgs, Daemon};

/// Command line of crimson-network.
#[derive(Debug, Parser)]
#[command(name = "crimson-network", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory of CNI network configurations.
    #[arg(long, env = "CRIMSON_CNI_CONF_DIR")]
    cni_conf_dir: Option<std::path::PathBuf>,
    /// Where pod network namespaces are pinned.
    #[arg(long, env = "CRIMSON_NETNS_DIR")]
    netns_dir: Option<std::path::PathBuf>,
    /// Directories searched for CNI plugins (repeatable).
    #[arg(
        long = "cni-bin-dir",
        env = "CRIMSON_CNI_BIN_DIRS",
        value_delimiter = ':'
    )]
    cni_bin_dirs: Vec<std::path::PathBuf>,
}

/// Runs crimson-network with the command line `args` (the program's name first) until it stops.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crimson_rpc::run_daemon("crimson-network", run(Args::parse_from(args)))
}

async fn run(args: Args) -> Result<(), NetworkError> {
    let mut config = args.common.load(Daemon::Network)?;
    if let Some(dir) = args.cni_conf_dir {
        config.network.cni_conf_dir = dir;
    }
    if let Some(dir) = args.netns_dir {
        config.network.netns_dir = dir;
    }
    if !args.cni_bin_dirs.is_empty() {
        config.network.cni_bin_dirs = args.cni_bin_dirs;
    }
    let telemetry = crimson_telemetry::init("crimson-network", &config.log, &config.telemetry)?;
    crimson_rpc::reload_on_hangup(
        Daemon::Network,
        args.common.clone(),
        telemetry.log_filter(),
        crimson_rpc::Reload::log_filter_only(),
    );
    // Before reconciliation, which reports what it did.
    crimson_metrics::init(Daemon::Network);
    let service = NetworkService::open(&config).await?;
    crimson_rpc::serve(
        Daemon::Network,
        &config,
        service.state_counts(),
        Some(service.changes()),
        service.into_routes(),
    )
    .await?;
    Ok(())
}
