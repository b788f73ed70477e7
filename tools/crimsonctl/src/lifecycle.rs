//! `up` and `down`: the daemons as background processes with pid files and log files.

use std::{
    fs::OpenOptions,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use crimson_config::{CommonArgs, Config, Daemon};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::probe::probe;

fn pid_file(config: &Config, daemon: Daemon) -> PathBuf {
    config.run_root.join(format!("{}.pid", daemon.short_name()))
}

fn log_file(config: &Config, daemon: Daemon) -> PathBuf {
    config
        .state_root
        .join("logs")
        .join(format!("{}.log", daemon.binary_name()))
}

/// `crimsonctl up`.
pub async fn up(
    args: &CommonArgs,
    config: &Config,
    bin_dir: Option<PathBuf>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("locating crimsonctl's directory")?
            .to_path_buf(),
    };
    std::fs::create_dir_all(&config.run_root)
        .with_context(|| format!("creating {}", config.run_root.display()))?;
    std::fs::create_dir_all(config.state_root.join("logs"))?;
    for daemon in Daemon::ALL {
        if matches!(probe(config, daemon).await.serving, Ok(true)) {
            println!("{daemon} is already running");
            continue;
        }
        let pid = spawn(args, config, &bin_dir, daemon)?;
        wait_healthy(config, daemon, pid, Duration::from_secs(timeout)).await?;
        println!("{daemon} is up (pid {pid})");
    }
    println!("{}", config.socket(Daemon::Cri).display());
    Ok(ExitCode::SUCCESS)
}

fn spawn(
    args: &CommonArgs,
    config: &Config,
    bin_dir: &Path,
    daemon: Daemon,
) -> anyhow::Result<u32> {
    let binary = bin_dir.join(daemon.binary_name());
    let log_path = log_file(config, daemon);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = Command::new(&binary);
    command
        .arg("--state-root")
        .arg(&config.state_root)
        .arg("--run-root")
        .arg(&config.run_root);
    if let Some(path) = &args.config {
        command.arg("--config").arg(path);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: the daemon outlives this command and its terminal.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    std::fs::write(pid_file(config, daemon), child.id().to_string())?;
    Ok(child.id())
}

async fn wait_healthy(
    config: &Config,
    daemon: Daemon,
    pid: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if matches!(probe(config, daemon).await.serving, Ok(true)) {
            return Ok(());
        }
        if kill(Pid::from_raw(pid as i32), None).is_err() || is_zombie(pid) {
            bail!(
                "{daemon} exited during start-up; its log ({}) ends with:\n{}",
                log_file(config, daemon).display(),
                log_tail(&log_file(config, daemon))
            );
        }
        if Instant::now() > deadline {
            bail!("{daemon} did not become healthy within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `crimsonctl down`.
pub async fn down(config: &Config, timeout: u64) -> anyhow::Result<ExitCode> {
    for daemon in Daemon::ALL.iter().rev() {
        let path = pid_file(config, *daemon);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let pid = Pid::from_raw(
            text.trim()
                .parse()
                .with_context(|| format!("bad pid file {}", path.display()))?,
        );
        if kill(pid, Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(timeout);
            while kill(pid, None).is_ok()
                && !is_zombie(pid.as_raw() as u32)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if kill(pid, None).is_ok() && !is_zombie(pid.as_raw() as u32) {
                eprintln!("{daemon} did not stop within {timeout}s, killing it");
                let _ = kill(pid, Signal::SIGKILL);
            }
            println!("{daemon} stopped");
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(ExitCode::SUCCESS)
}
