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
        "{:<16} {:<12} {:<8} {:<8} {:<9} {:<8} {:<28} SOCKET",
        "DAEMON", "HEALTH", "PID", "VERSION", "UPTIME", "RESTARTS", "STATE"
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
        let (pid, version, uptime, restarts, state) = match probe.info {
            Some(info) => (
                info.pid.to_string(),
                info.version,
                since(info.started_at_unix),
                info.starts.saturating_sub(1).to_string(),
                state_counts(&info.state_counts),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<16} {:<12} {:<8} {:<8} {:<9} {:<8} {:<28} {}",
            daemon.binary_name(),
            health,
            pid,
            version,
            uptime,
            restarts,
            state,
            config.socket(daemon).display()
        );
    }
    Ok(if all_serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// "3d4h", "2h5m", "4m10s" or "12s" since `started_at_unix`.
pub fn since(started_at_unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secs = (now - started_at_unix).max(0);
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// "pods=3 containers=2", sorted by kind; "-" for a daemon without state.
fn state_counts(counts: &std::collections::HashMap<String, u64>) -> String {
    let mut kinds: Vec<_> = counts.iter().collect();
    kinds.sort();
    let text: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}={n}")).collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(" ")
    }
}
