//! crimson-storage's command line and start-up.
//!
//! crimson-storage: keeps image layers (unpacked, content-addressed by chain id) and container
//! root filesystems, and serves `crimson.storage.v1.Storage` on its unix socket.

use std::{ffi::OsString, process::ExitCode};

use crate::{StorageError, StorageService};
use clap::Parser;
use crimson_config::{CommonArgs, Daemon, StorageDriver};

/// Command line of crimson-storage.
#[derive(Debug, Parser)]
#[command(name = "crimson-storage", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Layer driver: `overlay` (default) or `vfs` for filesystems without overlay support.
    #[arg(long, env = "CRIMSON_STORAGE_DRIVER")]
    driver: Option<String>,
}

/// Runs crimson-storage with the command line `args` (the program's name first) until it stops.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crimson_rpc::run_daemon("crimson-storage", run(Args::parse_from(args)))
}

async fn run(args: Args) -> Result<(), StorageError> {
    let mut config = args.common.load(Daemon::Storage)?;
    match args.driver.as_deref() {
        None => {}
        Some("overlay") => config.storage.driver = StorageDriver::Overlay,
        Some("vfs") => config.storage.driver = StorageDriver::Vfs,
        Some(other) => return Err(StorageError::UnknownDriver(other.to_string())),
    }
    let telemetry = crimson_telemetry::init("crimson-storage", &config.log, &config.telemetry)?;
    crimson_rpc::reload_on_hangup(
        Daemon::Storage,
        args.common.clone(),
        telemetry.log_filter(),
        crimson_rpc::Reload::log_filter_only(),
    );
    // Before reconciliation, which reports what it did.
    crimson_metrics::init(Daemon::Storage);
    let service = StorageService::open(&config).await?;
    crimson_rpc::serve(
        Daemon::Storage,
        &config,
        service.state_counts(),
        Some(service.changes()),
        service.into_routes(),
    )
    .await?;
    Ok(())
}
