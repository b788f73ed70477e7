//! Reading what conmon leaves when a container's process ends.

use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, 128 + signal for a signal death.
    pub code: i32,
    /// When conmon recorded it (the exit file's mtime).
    pub finished_at_nanos: i64,
    /// The kernel OOM killer ended it.
    pub oom_killed: bool,
}

/// The exit status conmon wrote to `exit_file`, if the container ended. `bundle` holds
/// conmon's `oom` marker.
pub fn read_exit(exit_file: &Path, bundle: &Path) -> Option<ExitStatus> {
    let text = std::fs::read_to_string(exit_file).ok()?;
    let code = text.trim().parse().ok()?;
    let finished_at_nanos = std::fs::metadata(exit_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(now_nanos, |d| d.as_nanos() as i64);
    Some(ExitStatus {
        code,
        finished_at_nanos,
        oom_killed: bundle.join("oom").exists(),
    })
}

/// The CRI reason for an exit.
pub fn reason(status: &ExitStatus) -> &'static str {
    if status.oom_killed {
        "OOMKilled"
    } else if status.code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_and_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let exit = dir.path().join("exit");
        assert_eq!(read_exit(&exit, dir.path()), None);
        std::fs::write(&exit, "3").unwrap();
        let status = read_exit(&exit, dir.path()).unwrap();
        assert_eq!((status.code, reason(&status)), (3, "Error"));
        std::fs::write(&exit, "137").unwrap();
        std::fs::write(dir.path().join("oom"), "").unwrap();
        assert_eq!(reason(&read_exit(&exit, dir.path()).unwrap()), "OOMKilled");
        std::fs::remove_file(dir.path().join("oom")).unwrap();
        std::fs::write(&exit, "0").unwrap();
        assert_eq!(reason(&read_exit(&exit, dir.path()).unwrap()), "Completed");
    }
}
