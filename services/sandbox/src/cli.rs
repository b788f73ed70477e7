//! crimson-sandbox's command line and start-up.
//!
//! crimson-sandbox: owns pods, containers, their conmon monitors and OCI bundles; serves
//! `crimson.sandbox.v1.Sandbox` on its unix socket.

use std::{ffi::OsString, process::ExitCode};

use crate::{SandboxError, SandboxService, reaper};
use clap::Parser;
use crimson_config::{CommonArgs, Daemon};

/// Command line of crimson-sandbox.
#[derive(Debug, Parser)]
#[command(name = "crimson-sandbox", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Image of the pod-level init process (pods sharing their PID namespace).
    #[arg(long, env = "CRIMSON_PAUSE_IMAGE")]
    pause_image: Option<String>,
}

/// Runs crimson-sandbox with the command line `args` (the program's name first) until it stops.
pub fn main(args: Vec<OsString>) -> ExitCode {
    crimson_rpc::run_daemon("crimson-sandbox", run(Args::parse_from(args)))
}

async fn run(args: Args) -> Result<(), SandboxError> {
    let mut config = args.common.load(Daemon::Sandbox)?;
    if let Some(image) = &args.pause_image {
        config.sandbox.pause_image = image.clone();
    }
    let telemetry = crimson_telemetry::init("crimson-sandbox", &config.log, &config.telemetry)?;
    reaper::become_subreaper();
    // A SIGHUP while reconciliation runs (before the reload handler below exists) must not
    // end the process, as the signal's default action would.
    let start_up_hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    // Before reconciliation, which reports what it did.
    crimson_metrics::init(Daemon::Sandbox);
    let service = SandboxService::open(&config).await?;
    crimson_rpc::reload_on_hangup(
        Daemon::Sandbox,
        args.common.clone(),
        telemetry.log_filter(),
        service.reload(args.pause_image),
    );
    drop(start_up_hangups);
    crimson_rpc::serve(
        Daemon::Sandbox,
        &config,
        service.state_counts(),
        Some(service.changes()),
        service.into_routes(),
    )
    .await?;
    Ok(())
}
