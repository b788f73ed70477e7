//! crimson-cri's command line and start-up.
//!
//! crimson-cri: the CRI v1 front door. Serves `runtime.v1.RuntimeService` and
//! `runtime.v1.ImageService` on the well-known socket and routes each call to the daemon that
//! owns the work.

use std::{ffi::OsString, process::ExitCode};

use crate::{CriError, FrontDoor};
use clap::Parser;
use crimson_config::{CommonArgs, Daemon};

/// Command line of crimson-cri.
#[derive(Debug, Parser)]
#[command(name = "crimson-cri", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

/// Runs crimson-cri with the command line `args` (the program's name first) until it stops.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crimson_rpc::run_daemon("crimson-cri", run(Args::parse_from(args)))
}

async fn run(args: Args) -> Result<(), CriError> {
    let config = args.common.load(Daemon::Cri)?;
    let telemetry = crimson_telemetry::init("crimson-cri", &config.log, &config.telemetry)?;
    // The streaming server's optional TLS uses rustls with the ring provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let front_door = FrontDoor::start(&config).await?;
    crimson_rpc::reload_on_hangup(
        Daemon::Cri,
        args.common.clone(),
        telemetry.log_filter(),
        front_door.reload(),
    );
    // From systemd or the holder `crimsonctl up` starts, the socket outlives this process.
    let listener =
        crimson_rpc::Listener::acquire(&config.socket(Daemon::Cri), &config.cri_socket_holder())
            .await?;
    // The front door holds no state of its own.
    let counts: crimson_rpc::StateCounts = std::sync::Arc::new(Vec::new);
    crimson_rpc::serve_on(
        Daemon::Cri,
        &config,
        listener,
        counts,
        None,
        front_door.into_routes(),
    )
    .await?;
    Ok(())
}
