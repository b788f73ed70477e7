//! Starting a container runc created without running `runc start`.
//!
//! After `runc create`, the container's init process (`runc:[2:INIT]`) waits to open
//! `<root>/<id>/exec.fifo` for writing; once a reader opens it, init writes one byte, closes
//! every descriptor and execs the container's process. `runc start` is that reader, then the
//! removal of the fifo: runc takes a live container with a fifo for created and one without
//! for running. Doing the same here saves a runc process (7–9 ms, most of StartContainer). The
//! release answers once the process has exec'd: until then it catches signals as runc does,
//! and a StopContainer that followed at once would take the container for one that handles
//! its stop signal.
//!
//! The fifo is removed right after it is opened, before init can go on, so a daemon killed at
//! any later point leaves runc's view right: without a reader init's byte fails and the
//! container exits (its monitor reports that), or init has exec'd and the container runs. A
//! fifo left by a kill between the two calls (or by a `runc start` killed half-way) has no
//! writer; the next release finds init replaced by the container's process and finishes.

use std::{
    fs::File,
    io::{ErrorKind, Read},
    os::fd::AsFd,
    path::Path,
    time::{Duration, Instant},
};

use nix::{
    fcntl::OFlag,
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::stat::Mode,
};

use crate::{Result, SandboxError};

/// What runc names its state directory's fifo.
pub const EXEC_FIFO: &str = "exec.fifo";

/// What runc's init process is called while it waits on the fifo.
const RUNC_INIT: &str = "runc:[2:INIT]";

/// How often a wait with nothing on the fifo looks at the init process (as `runc start` does).
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How often a released init is looked at until it has exec'd (microseconds after it closed
/// the fifo).
const EXEC_POLL: Duration = Duration::from_micros(200);

const ACTION: &str = "starting the container";

/// What a container's init process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitProcess {
    /// It is runc's init, still waiting to be released.
    Waiting,
    /// It exec'd the container's process, which runs.
    Replaced,
    /// It exited (or is a zombie).
    Gone,
}

impl InitProcess {
    /// What process `pid` is doing, from `/proc`.
    pub fn of(pid: u32) -> Self {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Self::Gone;
        };
        // "pid (comm) S ...": the state follows the last ')' (comm may hold one).
        let Some((head, tail)) = stat.rsplit_once(')') else {
            return Self::Gone;
        };
        if matches!(tail.trim_start().chars().next(), Some('Z' | 'X') | None) {
            return Self::Gone;
        }
        match head.split_once('(') {
            Some((_, comm)) if comm == RUNC_INIT => Self::Waiting,
            _ => Self::Replaced,
        }
    }
}

/// Releases the created container whose runc fifo is `fifo`: `Ok(false)` when there is no
/// fifo (runc did not create it, or it started already: `runc start` answers then), `Ok(true)`
/// once its process runs (or ran). `opened` is called once the fifo is open and gone, when
/// init can no longer wait: from there the container runs or exits. `init` says what the init
/// process is doing; a wait longer than `limit` fails with [`SandboxError::TimedOut`]. Blocks.
pub fn release(
    fifo: &Path,
    init: impl Fn() -> InitProcess,
    opened: impl FnOnce(),
    limit: Duration,
) -> Result<bool> {
    let open = nix::fcntl::open(
        fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let failed = |e: &dyn std::fmt::Display| {
        SandboxError::runtime(ACTION, format!("{}: {e}", fifo.display()))
    };
    let mut reader = match open {
        Ok(fd) => File::from(fd),
        Err(nix::errno::Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(failed(&e)),
    };
    match std::fs::remove_file(fifo) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(failed(&e)),
        _ => {}
    }
    opened();
    let deadline = Instant::now() + limit;
    let mut released = false;
    loop {
        if wait_readable(&reader, LOOK_EVERY)? {
            let mut byte = [0u8; 16];
            match reader.read(&mut byte) {
                // init wrote: it is about to exec; its end closes just before.
                Ok(n) if n > 0 => released = true,
                // Every writer closed: init wrote first and now execs, or died before.
                Ok(_) if released => return exec_done(&init, deadline, limit),
                Ok(_) => return Err(dead()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(SandboxError::runtime(ACTION, e)),
            }
            continue;
        }
        match init() {
            InitProcess::Waiting => {}
            // Released earlier (a fifo left by a kill), or by us and not closed yet.
            InitProcess::Replaced => return Ok(true),
            InitProcess::Gone if released => return Ok(true),
            InitProcess::Gone => return Err(dead()),
        }
        if Instant::now() >= deadline {
            return Err(SandboxError::TimedOut {
                action: ACTION,
                after: limit,
            });
        }
    }
}

/// Waits until the released init process has exec'd the container's process (or exited): runc
/// closes the fifo just before its execve, and until that is done the process still catches
/// every signal the way runc does, so a stop that followed at once would not see the
/// container's own signal handling.
fn exec_done(init: &impl Fn() -> InitProcess, deadline: Instant, limit: Duration) -> Result<bool> {
    while init() == InitProcess::Waiting {
        if Instant::now() >= deadline {
            return Err(SandboxError::TimedOut {
                action: ACTION,
                after: limit,
            });
        }
        std::thread::sleep(EXEC_POLL);
    }
    Ok(true)
}

/// Whether `reader` has something to read (or its writers closed) within `timeout`.
fn wait_readable(reader: &File, timeout: Duration) -> Result<bool> {
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(ready) => Ok(ready > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(SandboxError::runtime(ACTION, e)),
    }
}

fn dead() -> SandboxError {
    SandboxError::runtime(ACTION, "container process is already dead")
}

#[cfg(test)]
mod tests {
    use std::{
        fs::OpenOptions,
        io::Write,
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        thread,
    };

    use std::os::fd::AsRawFd;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    fn fifo() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(EXEC_FIFO);
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        (dir, path)
    }

    /// runc's init: holds an `O_PATH` descriptor of the fifo from the start (so the fifo's
    /// name may go), after `opens_after` opens it for writing through `/proc/self/fd` (waiting
    /// for a reader), writes its byte, closes every descriptor and "execs" `exec_after` later
    /// (`replaced` turns true then).
    fn init(
        path: &Path,
        opens_after: Duration,
        exec_after: Duration,
        replaced: Arc<AtomicBool>,
    ) -> thread::JoinHandle<()> {
        let held = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .expect("an O_PATH descriptor");
        thread::spawn(move || {
            thread::sleep(opens_after);
            let through = format!("/proc/self/fd/{}", held.as_raw_fd());
            let mut end = OpenOptions::new()
                .write(true)
                .open(through)
                .expect("open to write");
            end.write_all(b"0").expect("write the byte");
            drop(end);
            thread::sleep(exec_after);
            replaced.store(true, Ordering::SeqCst);
        })
    }

    fn looked_up(replaced: &Arc<AtomicBool>) -> impl Fn() -> InitProcess + use<> {
        let replaced = replaced.clone();
        move || match replaced.load(Ordering::SeqCst) {
            true => InitProcess::Replaced,
            false => InitProcess::Waiting,
        }
    }

    #[test]
    fn a_waiting_init_is_released_and_the_fifo_removed() {
        let (_dir, path) = fifo();
        let replaced = Arc::new(AtomicBool::new(false));
        let init = init(
            &path,
            Duration::ZERO,
            Duration::from_millis(20),
            replaced.clone(),
        );
        let opened_while_init_waited = AtomicBool::new(false);
        let opened = || {
            let waiting = !replaced.load(Ordering::SeqCst) && !path.exists();
            opened_while_init_waited.store(waiting, Ordering::SeqCst);
        };
        assert!(release(&path, looked_up(&replaced), opened, LIMIT).expect("released"));
        init.join().expect("init");
        assert!(
            replaced.load(Ordering::SeqCst),
            "answered only once init exec'd"
        );
        assert!(!path.exists(), "runc takes the container for running");
        assert!(
            opened_while_init_waited.load(Ordering::SeqCst),
            "told once the fifo was gone, before init exec'd"
        );
    }

    #[test]
    fn an_init_that_comes_to_the_fifo_later_is_waited_for() {
        let (_dir, path) = fifo();
        let replaced = Arc::new(AtomicBool::new(false));
        let late = Duration::from_millis(250);
        let init = init(&path, late, Duration::ZERO, replaced.clone());
        assert!(release(&path, looked_up(&replaced), || (), LIMIT).expect("released"));
        init.join().expect("init");
        assert!(replaced.load(Ordering::SeqCst));
    }

    #[test]
    fn no_fifo_leaves_the_start_to_the_runtime() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let never = || panic!("nothing to look at without a fifo");
        let not_opened = || panic!("no fifo was opened");
        assert!(!release(&dir.path().join(EXEC_FIFO), never, not_opened, LIMIT).expect("no error"));
    }

    #[test]
    fn an_init_that_died_before_writing_fails_the_start() {
        let (_dir, path) = fifo();
        let error = release(&path, || InitProcess::Gone, || (), LIMIT).expect_err("init is gone");
        assert!(error.to_string().contains("already dead"), "{error}");
    }

    #[test]
    fn a_fifo_left_behind_by_an_earlier_release_finishes_it() {
        let (_dir, path) = fifo();
        assert!(release(&path, || InitProcess::Replaced, || (), LIMIT).expect("started before"));
        assert!(!path.exists());
    }

    #[test]
    fn a_wait_past_the_limit_times_out() {
        let (_dir, path) = fifo();
        let error = release(
            &path,
            || InitProcess::Waiting,
            || (),
            Duration::from_millis(150),
        )
        .expect_err("nothing came");
        assert!(matches!(error, SandboxError::TimedOut { .. }), "{error}");
    }

    #[test]
    fn this_process_is_not_a_waiting_init() {
        assert_eq!(InitProcess::of(std::process::id()), InitProcess::Replaced);
        assert_eq!(InitProcess::of(u32::MAX), InitProcess::Gone);
    }
}
