//! ExecSync: a command in a running container through the OCI runtime's `exec`, with its
//! output (capped) and exit code. On timeout the command and everything it started is killed
//! and the answer says so (exit code -1, as CRI-O answers).

use std::{path::Path, process::Stdio, time::Duration};

use crimson_api::sandbox::v1::{ExecSyncRequest, ExecSyncResponse};
use tokio::{io::AsyncReadExt, process::Command};

use super::refresh::current;
use crate::{
    Result, SandboxError,
    records::ContainerPhase,
    runtime::children::children,
    state::{State, new_id},
};

/// Most bytes kept of each of stdout and stderr (the rest is read and dropped).
pub const OUTPUT_CAP: usize = 16 * 1024 * 1024;
/// What stderr ends with when the command ran over its timeout.
const TIMED_OUT: &str = "command timed out";

/// Runs `request.cmd` in the container and waits for it.
pub async fn exec_sync(state: &State, request: ExecSyncRequest) -> Result<ExecSyncResponse> {
    if request.cmd.is_empty() {
        return Err(SandboxError::InvalidArgument(
            "cmd must not be empty".into(),
        ));
    }
    let record = current(state, &request.container_id).await?;
    if record.phase != ContainerPhase::Running {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {} is not running",
            record.id
        )));
    }
    state.migration_primer.keep_warm();
    let bundle = state.layout.bundle(&record.id);
    let session = new_id()?[..16].to_string();
    let process_file = bundle.join(format!("exec-{session}.json"));
    let pid_file = bundle.join(format!("exec-{session}.pid"));
    write_process_spec(&bundle.join("config.json"), &request.cmd, &process_file)?;
    let runtime = state.runtime_of(&record)?;
    let result = run(
        &runtime.path,
        &runtime.root,
        &record.id,
        &process_file,
        &pid_file,
        request.timeout_seconds,
    )
    .await;
    let _ = std::fs::remove_file(&process_file);
    let _ = std::fs::remove_file(&pid_file);
    result
}

/// The container's process spec with `cmd` as arguments and no terminal.
pub(crate) fn write_process_spec(config: &Path, cmd: &[String], target: &Path) -> Result<()> {
    let spec = oci_spec::runtime::Spec::load(config)
        .map_err(|e| SandboxError::runtime("reading config.json", e))?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| SandboxError::runtime("reading config.json", "no process"))?;
    process.set_args(Some(cmd.to_vec()));
    process.set_terminal(Some(false));
    let json = serde_json::to_vec(&process)
        .map_err(|e| SandboxError::runtime("encoding the exec process", e))?;
    std::fs::write(target, json).map_err(SandboxError::io("writing", target))
}

async fn run(
    runtime: &Path,
    root: &Path,
    id: &str,
    process_file: &Path,
    pid_file: &Path,
    timeout_seconds: i64,
) -> Result<ExecSyncResponse> {
    let (mut child, _owned) = children()
        .spawn(
            Command::new(runtime)
                .arg("--root")
                .arg(root)
                .arg("exec")
                .arg("--process")
                .arg(process_file)
                .arg("--pid-file")
                .arg(pid_file)
                .arg(id)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true),
        )
        .map_err(|e| SandboxError::runtime("running exec", e))?;
    let not_piped = || SandboxError::runtime("running exec", "its output is not a pipe");
    let stdout = tokio::spawn(read_capped(child.stdout.take().ok_or_else(not_piped)?));
    let stderr = tokio::spawn(read_capped(child.stderr.take().ok_or_else(not_piped)?));
    let waited = if timeout_seconds > 0 {
        tokio::time::timeout(Duration::from_secs(timeout_seconds as u64), child.wait()).await
    } else {
        Ok(child.wait().await)
    };
    let (status, timed_out) = match waited {
        Ok(status) => (
            status.map_err(|e| SandboxError::runtime("waiting for exec", e))?,
            false,
        ),
        Err(_) => {
            if let Some(pid) = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                kill_tree(pid);
            }
            (
                child
                    .wait()
                    .await
                    .map_err(|e| SandboxError::runtime("waiting for exec", e))?,
                true,
            )
        }
    };
    let stdout = stdout
        .await
        .map_err(|e| SandboxError::runtime("reading exec output", e))?;
    let mut stderr = stderr
        .await
        .map_err(|e| SandboxError::runtime("reading exec output", e))?;
    if timed_out {
        stderr.extend_from_slice(TIMED_OUT.as_bytes());
    }
    Ok(ExecSyncResponse {
        stdout,
        stderr,
        exit_code: if timed_out {
            -1
        } else {
            status.code().unwrap_or(-1)
        },
        timed_out,
    })
}

/// Reads a pipe to its end, keeping at most [`OUTPUT_CAP`] bytes.
async fn read_capped(mut pipe: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
}

/// SIGKILLs `pid` and every process descending from it.
pub(crate) fn kill_tree(pid: i32) {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the second field after the command name in parentheses.
        if let Some(parent) = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        {
            parents.push((child, parent));
        }
    }
    let mut victims = vec![pid];
    let mut index = 0;
    while index < victims.len() {
        let current = victims[index];
        victims.extend(
            parents
                .iter()
                .filter(|(_, parent)| *parent == current)
                .map(|(child, _)| *child),
        );
        index += 1;
    }
    for victim in victims {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
