//! Asking each daemon whether it is up, who it is and which pid it runs as.

use std::{process::ExitCode, time::Duration};

use crimson_api::daemon::v1::{DaemonInfo, GetInfoRequest, daemon_client::DaemonClient};
use crimson_config::{Config, Daemon};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A daemon's answer to the health check and the info call.
pub struct Probe {
    pub serving: Result<bool, String>,
    pub info: Option<DaemonInfo>,
}

/// Probes `daemon` on its configured socket.
pub async fn probe(config: &Config, daemon: Daemon) -> Probe {
    let channel = crimson_rpc::connect_unix(config.socket(daemon));
    let health = tokio::time::timeout(
        PROBE_TIMEOUT,
        HealthClient::new(channel.clone()).check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await;
    let serving = match health {
        Ok(Ok(response)) => Ok(response.into_inner().status == ServingStatus::Serving as i32),
        Ok(Err(status)) => Err(status.message().to_string()),
        Err(_) => Err("no answer".to_string()),
    };
    let info = match tokio::time::timeout(
        PROBE_TIMEOUT,
        DaemonClient::new(channel).get_info(GetInfoRequest {}),
    )
    .await
    {
        Ok(Ok(response)) => Some(response.into_inner()),
        _ => None,
    };
    Probe { serving, info }
}

/// `crimsonctl status`.
pub async fn status(config: &Config) -> anyhow::Result<ExitCode> {
    println!(
        "{:<16} {:<12} {:<8} {:<8} SOCKET",
        "DAEMON", "HEALTH", "PID", "VERSION"
    );
    let mut all_serving = true;
    for daemon in Daemon::ALL {
        let probe = probe(config, daemon).await;
        let health = match &probe.serving {
            Ok(true) => "SERVING".to_string(),
            Ok(false) => "NOT_SERVING".to_string(),
            Err(_) => "DOWN".to_string(),
        };
        all_serving &= matches!(probe.serving, Ok(true));
        let (pid, version) = probe.info.map_or(("-".to_string(), "-".to_string()), |i| {
            (i.pid.to_string(), i.version)
        });
        println!(
            "{:<16} {:<12} {:<8} {:<8} {}",
            daemon.binary_name(),
            health,
            pid,
            version,
            config.socket(daemon).display()
        );
    }
    Ok(if all_serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
