//! `up` and `down`: the daemons as background processes with pid files and log files.

use std::{
    fs::OpenOptions,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use crimson_config::{CommonArgs, Config, DAEMON_EXECUTABLE, Daemon};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::probe::probe;

/// The process that holds the front door's socket open across its restarts.
const HOLDER: &str = "crimson-cri-holder";

fn pid_file(config: &Config, name: &str) -> PathBuf {
    config.run_root.join(format!("{name}.pid"))
}

fn log_file(config: &Config, name: &str) -> PathBuf {
    config.state_root.join("logs").join(format!("{name}.log"))
}

/// The pid `up` recorded for `name`, if any.
fn recorded_pid(config: &Config, name: &str) -> anyhow::Result<Option<Pid>> {
    let path = pid_file(config, name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let pid = text
        .trim()
        .parse()
        .with_context(|| format!("bad pid file {}", path.display()))?;
    Ok(Some(Pid::from_raw(pid)))
}

fn alive(pid: Pid) -> bool {
    kill(pid, None).is_ok() && !is_zombie(pid.as_raw() as u32)
}

/// Whether `daemon` already runs: a recorded pid that is gone means no (without waiting for a
/// probe to time out on a socket whose holder queues the connection); else its health check.
async fn running(config: &Config, daemon: Daemon) -> anyhow::Result<bool> {
    if recorded_pid(config, daemon.binary_name())?.is_some_and(|pid| !alive(pid)) {
        return Ok(false);
    }
    Ok(matches!(probe(config, daemon).await.serving, Ok(true)))
}

/// `bin_dir`, else the directory crimsonctl itself is in.
fn bin_dir_or_own(bin_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match bin_dir {
        Some(dir) => Ok(dir),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("locating crimsonctl's directory")?
            .to_path_buf()),
    }
}

/// `crimsonctl up`.
pub async fn up(
    args: &CommonArgs,
    config: &Config,
    bin_dir: Option<PathBuf>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let bin_dir = bin_dir_or_own(bin_dir)?;
    std::fs::create_dir_all(&config.run_root)
        .with_context(|| format!("creating {}", config.run_root.display()))?;
    std::fs::create_dir_all(config.state_root.join("logs"))?;
    for daemon in Daemon::ALL {
        if running(config, daemon).await? {
            println!("{daemon} is already running");
            continue;
        }
        start(args, config, &bin_dir, daemon, timeout).await?;
    }
    println!("{}", config.socket(Daemon::Cri).display());
    Ok(ExitCode::SUCCESS)
}

/// Starts `daemon` (for the front door, its socket holder first) and waits until it is healthy.
async fn start(
    args: &CommonArgs,
    config: &Config,
    bin_dir: &Path,
    daemon: Daemon,
    timeout: u64,
) -> anyhow::Result<()> {
    if daemon == Daemon::Cri {
        ensure_holder(args, config).await?;
    }
    let mut command = Command::new(bin_dir.join(DAEMON_EXECUTABLE));
    command.arg0(daemon.binary_name());
    let pid = spawn(args, config, &mut command, daemon.binary_name())?;
    wait_healthy(config, daemon, pid, Duration::from_secs(timeout)).await?;
    println!("{daemon} is up (pid {pid})");
    Ok(())
}

/// Starts the holder of the front door's socket unless it runs, and waits until it hands out.
async fn ensure_holder(args: &CommonArgs, config: &Config) -> anyhow::Result<()> {
    let holder = config.cri_socket_holder();
    if std::os::unix::net::UnixStream::connect(&holder).is_ok() {
        return Ok(());
    }
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("hold-socket");
    let pid = spawn(args, config, &mut command, HOLDER)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&holder).is_err() {
        if !alive(Pid::from_raw(pid as i32)) || Instant::now() > deadline {
            bail!(
                "the socket holder did not start; its log ({}) ends with:\n{}",
                log_file(config, HOLDER).display(),
                log_tail(&log_file(config, HOLDER))
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Runs `command` in the background as `name` with the common flags, its output appended to
/// its log file, and records its pid.
fn spawn(
    args: &CommonArgs,
    config: &Config,
    command: &mut Command,
    name: &str,
) -> anyhow::Result<u32> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(config, name))?;
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
        .with_context(|| format!("starting {name}"))?;
    std::fs::write(pid_file(config, name), child.id().to_string())?;
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
                log_file(config, daemon.binary_name()).display(),
                log_tail(&log_file(config, daemon.binary_name()))
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

/// `crimsonctl down`: the daemons front door first, then the socket holder.
pub async fn down(config: &Config, timeout: u64) -> anyhow::Result<ExitCode> {
    for daemon in Daemon::ALL.iter().rev() {
        if stop(config, daemon.binary_name(), timeout).await? {
            println!("{daemon} stopped");
        }
    }
    stop(config, HOLDER, timeout).await?;
    Ok(ExitCode::SUCCESS)
}

/// `crimsonctl restart DAEMON`: stops it (the front door lets its calls in flight finish while
/// new connections wait in the held socket's backlog), starts it again and waits until it is
/// healthy.
pub async fn restart(
    args: &CommonArgs,
    config: &Config,
    daemon: Daemon,
    bin_dir: Option<PathBuf>,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let bin_dir = bin_dir_or_own(bin_dir)?;
    if !stop(config, daemon.binary_name(), timeout).await?
        && matches!(probe(config, daemon).await.serving, Ok(true))
    {
        bail!(
            "{daemon} was not started by `crimsonctl up` (no pid file); under systemd: \
             systemctl restart {daemon}"
        );
    }
    start(args, config, &bin_dir, daemon, timeout).await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM to the process recorded for `name`, SIGKILL if it is still there after `timeout`
/// seconds; false if none was recorded.
async fn stop(config: &Config, name: &str, timeout: u64) -> anyhow::Result<bool> {
    let Some(pid) = recorded_pid(config, name)? else {
        return Ok(false);
    };
    if kill(pid, Signal::SIGTERM).is_ok() {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if alive(pid) {
            eprintln!("{name} did not stop within {timeout}s, killing it");
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(pid_file(config, name));
    Ok(true)
}

/// `crimsonctl reload`: SIGHUP to `daemon` (or to each) started by `up`, which reads its
/// configuration again and applies what it can without a restart (its log says what).
pub fn reload(config: &Config, daemon: Option<Daemon>) -> anyhow::Result<ExitCode> {
    let daemons = daemon.map_or_else(|| Daemon::ALL.to_vec(), |daemon| vec![daemon]);
    for daemon in daemons {
        match recorded_pid(config, daemon.binary_name())? {
            Some(pid) if alive(pid) => {
                kill(pid, Signal::SIGHUP)
                    .with_context(|| format!("signalling {daemon} (pid {pid})"))?;
                println!("{daemon}: reloading (pid {pid}); its log says what changed");
            }
            _ => bail!("{daemon} is not running under `crimsonctl up`"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
