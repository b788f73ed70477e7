//! SIGHUP: a daemon reads its configuration again, logs each setting that changed, applies
//! the log filter and whatever else it can take without a restart, and keeps serving. A
//! configuration that does not load is logged and the running one kept.

use crimson_config::{CommonArgs, Config, Daemon, Setting};
use crimson_telemetry::LogFilter;

/// Applying a configuration read again: an error is logged.
pub type Applying = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What one daemon can take on SIGHUP besides the log filter.
pub struct Reload {
    /// Which settings (dotted keys) it applies; any other change waits for a restart.
    pub applies: fn(&str) -> bool,
    /// Applies the freshly loaded configuration.
    pub apply: Box<dyn Fn(Config) -> Applying + Send + Sync>,
}

impl Reload {
    /// A daemon that takes nothing but the log filter.
    pub fn log_filter_only() -> Self {
        Self {
            applies: |_| false,
            apply: Box::new(|_| Box::pin(async { Ok(()) })),
        }
    }
}

/// Whether every daemon takes `key` on SIGHUP.
fn applied_everywhere(key: &str) -> bool {
    key == "log.level"
}

/// Whether `daemon` reads setting `key`: the common ones (roots, sockets, logs, traces, how
/// long to wait for a peer) and its own section (the front door's includes `[metrics]`).
fn concerns(daemon: Daemon, key: &str) -> bool {
    let section = key.split_once('.').map_or("", |(section, _)| section);
    matches!(section, "" | "log" | "telemetry" | "sockets")
        || key == "cri.backend_wait_ms"
        || section == daemon.short_name()
        || (daemon == Daemon::Cri && section == "metrics")
}

/// (key, old value, new value) of every setting that differs; a value missing on one side
/// (an optional setting set or unset) is empty there.
pub(crate) fn changes(before: &[Setting], after: &[Setting]) -> Vec<(String, String, String)> {
    let value = |settings: &[Setting], key: &str| {
        settings
            .iter()
            .find(|s| s.key == key)
            .map_or(String::new(), |s| s.value.clone())
    };
    let mut keys: Vec<&String> = before.iter().chain(after).map(|s| &s.key).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (old, new) = (value(before, key), value(after, key));
            (old != new).then(|| (key.clone(), old, new))
        })
        .collect()
}

/// Re-reads the configuration of `daemon` on every SIGHUP, for as long as the process runs.
pub fn reload_on_hangup(daemon: Daemon, args: CommonArgs, log_filter: LogFilter, reload: Reload) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; the configuration is read at start only");
        return;
    };
    let mut current = args
        .load_explained(daemon)
        .map(|(_, settings)| settings)
        .unwrap_or_default();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let (config, settings) = match args.load_explained(daemon) {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: the configuration does not load; keeping the running one");
                    continue;
                }
            };
            let mut changed = changes(&current, &settings);
            changed.retain(|(key, _, _)| concerns(daemon, key));
            if changed.is_empty() {
                tracing::info!("SIGHUP: configuration read again, nothing changed");
            }
            for (key, old, new) in &changed {
                if applied_everywhere(key) || (reload.applies)(key) {
                    tracing::info!(setting = %key, %old, %new, "SIGHUP: setting changed, applied");
                } else {
                    tracing::warn!(setting = %key, %old, %new, "SIGHUP: setting changed; it takes effect at the next restart");
                }
            }
            if let Err(error) = log_filter.set(&config.log.level) {
                tracing::error!(%error, "SIGHUP: keeping the running log filter");
            }
            if let Err(error) = (reload.apply)(config).await {
                tracing::error!(%error, "SIGHUP: applying the configuration failed");
            }
            current = settings;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(key: &str, value: &str) -> Setting {
        Setting {
            key: key.into(),
            value: value.into(),
            origin: "default".into(),
        }
    }

    #[test]
    fn changed_added_and_removed_settings_are_reported() {
        let before = [
            setting("log.level", "\"info\""),
            setting("metrics.address", "\"a\""),
        ];
        let after = [
            setting("log.level", "\"debug\""),
            setting("sandbox.pause_image", "\"p\""),
        ];
        assert_eq!(
            changes(&before, &after),
            [
                ("log.level".into(), "\"info\"".into(), "\"debug\"".into()),
                ("metrics.address".into(), "\"a\"".into(), String::new()),
                ("sandbox.pause_image".into(), String::new(), "\"p\"".into()),
            ]
        );
        assert!(changes(&before, &before).is_empty());
    }

    #[test]
    fn a_daemon_reports_the_common_settings_and_its_own_section() {
        assert!(concerns(Daemon::Image, "log.level"));
        assert!(concerns(Daemon::Image, "state_root"));
        assert!(concerns(Daemon::Image, "image.registries_conf"));
        assert!(concerns(Daemon::Sandbox, "cri.backend_wait_ms"));
        assert!(!concerns(Daemon::Image, "sandbox.pause_image"));
        assert!(!concerns(Daemon::Image, "metrics.address"));
        assert!(concerns(Daemon::Cri, "metrics.address"));
    }
}
