//! How every daemon's process runs: one tokio runtime sized for a node's background service,
//! and a malloc that does not hold on to what a busy minute left behind.

use std::{fmt::Display, process::ExitCode, time::Duration};

/// How long an idle blocking thread (mounts, syscalls, directory walks, process waits) is
/// kept for the next such call; tokio's default is 10 s. A burst of pods leaves dozens of
/// them, each with a stack and a malloc arena.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// glibc malloc arenas a daemon may use (its default is up to 8 per core, one per thread that
/// allocates, each keeping what was freed in it).
const MALLOC_ARENAS: i32 = 2;

/// Runs the daemon `name`'s `main` to its end on a new runtime; a failure is printed as
/// `name: error` and ends the process with a failure code.
pub fn run_daemon<E: Display>(name: &str, main: impl Future<Output = Result<(), E>>) -> ExitCode {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(main).map_err(|e| e.to_string()),
        Err(e) => Err(format!("starting the async runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_env = "gnu")]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets a parameter of the allocator; no thread has started yet.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

#[cfg(not(target_env = "gnu"))]
fn limit_malloc_arenas() {}
