//! SIGHUP: every daemon reads its configuration again and keeps serving (same pids). The
//! front door switches its metrics endpoint on and off, crimson-sandbox takes a new runtime
//! handler (a pod runs on it), the log filter changes, a setting that needs a restart is
//! logged as such, and a configuration that does not load is refused with the running one
//! kept.

use std::time::Duration;

use crimson_config::Daemon;
use crimson_integration::{pods::PodEnv, require_root, stack::Stack};
use k8s_cri::v1 as cri;
use nix::{sys::signal::Signal, unistd::Pid};

fn hang_up(stack: &Stack, daemon: Daemon) {
    let pid = stack.pid(daemon).expect("daemon running");
    nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGHUP).unwrap();
}

/// Waits (10 s at most) until `daemon`'s log has a line containing every one of `texts`.
async fn logged(stack: &Stack, daemon: Daemon, texts: &[&str]) {
    for _ in 0..200 {
        let log = stack.log(daemon);
        if log
            .lines()
            .any(|line| texts.iter().all(|t| line.contains(t)))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{daemon} never logged {texts:?}:\n{}", stack.log(daemon));
}

async fn handlers(stack: &Stack) -> Vec<String> {
    let status = stack
        .runtime()
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    status
        .runtime_handlers
        .into_iter()
        .map(|h| h.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_what_can_change_and_keeps_serving() {
    require_root!();
    let env = PodEnv::start(false).await;
    let stack = &env.stack;
    let pids: Vec<Option<u32>> = Daemon::ALL.iter().map(|d| stack.pid(*d)).collect();
    let config_path = stack.root().join("crimson.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let metrics = stack.root().join("metrics.sock");
    assert!(!handlers(stack).await.contains(&"fast".to_string()));

    let mut changed = crimson_config::load_layers(Some(&config_path)).unwrap();
    changed.log.level = "info,crimson_network=debug".into();
    changed.cri.backend_wait_ms = 1;
    changed.metrics.address = Some(metrics.display().to_string());
    let fast = crimson_config::RuntimeHandler {
        runtime_path: "runc".into(),
    };
    changed.sandbox.runtimes.insert("fast".into(), fast);
    let changed = changed.to_toml_without_defaults().unwrap();
    std::fs::write(&config_path, &changed).unwrap();
    for daemon in Daemon::ALL {
        hang_up(stack, daemon);
    }
    let applied = "SIGHUP: setting changed, applied";
    logged(
        stack,
        Daemon::Sandbox,
        &[applied, "sandbox.runtimes.fast.runtime_path"],
    )
    .await;
    logged(stack, Daemon::Cri, &[applied, "metrics.address"]).await;
    logged(
        stack,
        Daemon::Cri,
        &["takes effect at the next restart", "cri.backend_wait_ms"],
    )
    .await;
    for daemon in [Daemon::Image, Daemon::Network, Daemon::Storage] {
        logged(stack, daemon, &[applied, "log.level"]).await;
        assert!(
            !stack.log(daemon).contains("sandbox.runtimes"),
            "{daemon} reports only what it reads"
        );
    }

    // The new handler runs pods; the metrics endpoint answers.
    assert!(handlers(stack).await.contains(&"fast".to_string()));
    let fast = stack
        .runtime()
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(env.pod_config("on-fast")),
            runtime_handler: "fast".into(),
        })
        .await
        .expect("a pod on the handler added by SIGHUP")
        .into_inner()
        .pod_sandbox_id;
    for _ in 0..100 {
        if metrics.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scrape = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&metrics)
        .arg("http://node/metrics")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&scrape.stdout).contains("crimson_daemon_up{daemon=\"sandbox\"} 1"),
        "{scrape:?}"
    );
    env.remove_pod_and_check(fast).await;
    // The new log filter: crimson-image's debug lines (each pull's "trying source") stop.
    let debug_lines = |log: &str| log.lines().filter(|l| l.contains("DEBUG")).count();
    let before = debug_lines(&stack.log(Daemon::Image));
    assert!(before > 0, "the first pull logged at debug level");
    stack.pull(&env.busybox).await.unwrap();
    assert_eq!(debug_lines(&stack.log(Daemon::Image)), before);

    // Metrics off again: the endpoint goes.
    std::fs::write(&config_path, &original).unwrap();
    hang_up(stack, Daemon::Cri);
    for _ in 0..100 {
        if !metrics.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!metrics.exists(), "the endpoint stops when [metrics] goes");

    // A configuration that does not load changes nothing.
    std::fs::write(&config_path, "state_root = [\n").unwrap();
    hang_up(stack, Daemon::Sandbox);
    logged(
        stack,
        Daemon::Sandbox,
        &["does not load", "keeping the running one"],
    )
    .await;
    std::fs::write(&config_path, &original).unwrap();
    assert!(handlers(stack).await.contains(&"fast".to_string()));

    let after: Vec<Option<u32>> = Daemon::ALL.iter().map(|d| stack.pid(*d)).collect();
    assert_eq!(pids, after, "no daemon restarted");
}
