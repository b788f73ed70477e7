//! crimson-sandbox: owns pods, containers, their conmon monitors and OCI bundles; serves
//! `crimson.sandbox.v1.Sandbox` on its unix socket.

use std::process::ExitCode;

use clap::Parser;
use crimson_config::{CommonArgs, Daemon};
use crimson_sandbox::{SandboxError, SandboxService};

/// Command line of crimson-sandbox.
#[derive(Debug, Parser)]
#[command(name = "crimson-sandbox", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crimson-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), SandboxError> {
    let config = args.common.load(Daemon::Sandbox)?;
    let _telemetry = crimson_telemetry::init("crimson-sandbox", &config.log, &config.telemetry)?;
    let service = SandboxService::open(&config)?;
    crimson_rpc::serve(
        Daemon::Sandbox,
        &config.socket(Daemon::Sandbox),
        service.into_routes(),
    )
    .await?;
    Ok(())
}
