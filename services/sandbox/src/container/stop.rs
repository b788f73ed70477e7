//! StopContainer: the stop signal, a grace period, then SIGKILL until the process is gone.

use std::time::{Duration, Instant};

use super::refresh::refresh;
use crate::{Result, records::ContainerPhase, state::State};

/// How long SIGKILL may take before the runtime is asked directly.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Stops container `id` (idempotent: a stopped or unknown container succeeds). Waits at most
/// `timeout_seconds` after the stop signal before killing.
pub async fn stop_container(state: &State, id: &str, timeout_seconds: i64) -> Result<()> {
    let _container = state.container_locks.lock(id).await;
    let Some(record) = state.containers.get(id)? else {
        return Ok(());
    };
    let record = refresh(state, record).await?;
    if !matches!(
        record.phase,
        ContainerPhase::Created | ContainerPhase::Running
    ) {
        return Ok(());
    }
    let runtime = state.runtime_of(&record)?;
    let signal = signal_number(&record.stop_signal);
    if timeout_seconds > 0
        && signal_has_effect(record.pid, signal)
        && runtime.kill(id, &signal.to_string()).await?
    {
        if wait_for_exit(state, id, Duration::from_secs(timeout_seconds as u64)).await {
            refresh(state, record).await?;
            return Ok(());
        }
        tracing::info!(container = %id, timeout_seconds, "grace period over, killing");
    }
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let running = runtime.kill(id, "KILL").await?;
        if wait_for_exit(state, id, Duration::from_millis(500)).await {
            break;
        }
        if !running || Instant::now() > deadline {
            // conmon is gone (it writes the exit file): ask the runtime and record the end.
            let state_now = runtime.state(id).await?;
            if state_now.is_none_or(|s| s.status == "stopped") {
                let _ = std::fs::write(state.layout.exit_file(id), "137");
                break;
            }
        }
    }
    refresh(state, record).await?;
    Ok(())
}

/// Polls for conmon's exit file.
async fn wait_for_exit(state: &State, id: &str, timeout: Duration) -> bool {
    let exit_file = state.layout.exit_file(id);
    // A grace period too long to add to the clock (kubelet may send i64::MAX) never ends.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if exit_file.exists() {
            return true;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The image's StopSignal ("SIGINT", "INT", "2") as a number; SIGTERM by default and for
/// anything that is not a signal (0, 65, …).
pub fn signal_number(name: &str) -> i32 {
    let name = name.trim();
    if let Ok(number) = name.parse::<i32>() {
        return if (1..=64).contains(&number) {
            number
        } else {
            libc::SIGTERM
        };
    }
    let bare = name.trim_start_matches("SIG");
    format!("SIG{bare}")
        .parse::<nix::sys::signal::Signal>()
        .map_or(libc::SIGTERM, |s| s as i32)
}

/// False when `signal` is certain to be discarded: the process is PID 1 of its namespace and
/// has no handler for it (the kernel drops such signals), so waiting would only waste time.
pub fn signal_has_effect(pid: u32, signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let namespace_init =
        field("NSpid:").is_some_and(|ids| ids.split_whitespace().last() == Some("1"));
    let caught = field("SigCgt:")
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .zip(u32::try_from(signal - 1).ok())
        .is_some_and(|(mask, bit)| mask.checked_shr(bit).is_some_and(|m| m & 1 != 0));
    !namespace_init || caught
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_names() {
        assert_eq!(signal_number(""), libc::SIGTERM);
        assert_eq!(signal_number("0"), libc::SIGTERM);
        assert_eq!(signal_number("65"), libc::SIGTERM);
        assert_eq!(signal_number("-3"), libc::SIGTERM);
        assert_eq!(signal_number("64"), 64);
        assert_eq!(signal_number("SIGINT"), libc::SIGINT);
        assert_eq!(signal_number("QUIT"), libc::SIGQUIT);
        assert_eq!(signal_number("9"), 9);
    }

    #[test]
    fn ordinary_processes_get_signals() {
        assert!(signal_has_effect(std::process::id(), libc::SIGTERM));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_stop_signal_text_is_a_signal(name in ".{0,12}|-?[0-9]{1,12}|(SIG)?[A-Z]{2,6}") {
                prop_assert!((1..=64).contains(&signal_number(&name)));
            }
        }
    }
}
