//! crimson-image's command line and start-up.
//!
//! crimson-image: pulls images from registries into crimson-storage and keeps the image
//! records; serves `crimson.image.v1.Images` on its unix socket.

use std::{ffi::OsString, process::ExitCode};

use crate::{ImageError, ImageService};
use clap::Parser;
use crimson_config::{CommonArgs, Daemon};

/// Command line of crimson-image.
#[derive(Debug, Parser)]
#[command(name = "crimson-image", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// containers-registries.conf file (rewrites, mirrors, insecure and blocked registries).
    #[arg(long, env = "CRIMSON_REGISTRIES_CONF")]
    registries_conf: Option<std::path::PathBuf>,
    /// Docker config.json-format credentials used when a pull request brings none.
    #[arg(long, env = "CRIMSON_GLOBAL_AUTH_FILE")]
    global_auth_file: Option<std::path::PathBuf>,
}

/// Runs crimson-image with the command line `args` (the program's name first) until it stops.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crimson_rpc::run_daemon("crimson-image", run(Args::parse_from(args)))
}

async fn run(args: Args) -> Result<(), ImageError> {
    let mut config = args.common.load(Daemon::Image)?;
    if let Some(path) = args.registries_conf {
        config.image.registries_conf = path;
    }
    if let Some(path) = args.global_auth_file {
        config.image.global_auth_file = Some(path);
    }
    let telemetry = crimson_telemetry::init("crimson-image", &config.log, &config.telemetry)?;
    // TLS for registries uses rustls with the ring provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    crimson_rpc::reload_on_hangup(
        Daemon::Image,
        args.common.clone(),
        telemetry.log_filter(),
        crimson_rpc::Reload::log_filter_only(),
    );
    // Before reconciliation, which reports what it did.
    crimson_metrics::init(Daemon::Image);
    let service = ImageService::open(&config)?;
    crimson_rpc::serve(
        Daemon::Image,
        &config,
        service.state_counts(),
        Some(service.changes()),
        service.into_routes(),
    )
    .await?;
    Ok(())
}
