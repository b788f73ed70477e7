//! Each daemon's memory allocator: mimalloc for the front door, glibc's malloc for the others.
//!
//! The front door answers kubelet's polls from its cache, and each answer is thousands of
//! small strings and maps made, encoded and freed: polled ListPodSandbox and ListContainers
//! at 50 pods spent a quarter of the front door's CPU in glibc's malloc and free, and their
//! handlers take half the time with mimalloc. The other four daemons allocate little per
//! call, and mimalloc's pages per thread (sled keeps seven idle threads in each) would cost
//! them about 2 MiB of resident memory each.
//!
//! The choice is made at the process's first allocation, from its command line, read without
//! allocating; every later allocation and free goes to the same allocator.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicU8, Ordering},
};

use crimson_config::Daemon;
use mimalloc::MiMalloc;

use crate::invoked_daemon;

/// The allocator of the running daemon.
pub struct DaemonAllocator;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Whether this process uses mimalloc; decided once (the first allocation happens before any
/// other thread exists, and the decision is the same whoever makes it).
fn uses_mimalloc() -> bool {
    let mut choice = CHOICE.load(Ordering::Relaxed);
    if choice == UNDECIDED {
        choice = if runs_front_door() { MIMALLOC } else { SYSTEM };
        CHOICE.store(choice, Ordering::Relaxed);
    }
    choice == MIMALLOC
}

/// Whether /proc/self/cmdline names the front door, read into a buffer on the stack.
fn runs_front_door() -> bool {
    let mut buffer = [0u8; 512];
    // SAFETY: open/read/close on a descriptor of this function, into a buffer it owns.
    let read = unsafe {
        let fd = libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return false;
        }
        let read = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
        libc::close(fd);
        read
    };
    let Ok(read) = usize::try_from(read) else {
        return false;
    };
    let mut args = buffer[..read]
        .split(|byte| *byte == 0)
        .map(|arg| std::str::from_utf8(arg).unwrap_or_default());
    let arg0 = args.next().unwrap_or_default();
    invoked_daemon(arg0, args.next()).is_some_and(|(daemon, _)| daemon == Daemon::Cri)
}

/// The allocator this process uses.
fn chosen() -> &'static dyn GlobalAlloc {
    if uses_mimalloc() { &MiMalloc } else { &System }
}

// SAFETY: every call goes to one allocator for the whole life of the process, and both
// implement GlobalAlloc's contract.
unsafe impl GlobalAlloc for DaemonAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { chosen().alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { chosen().alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the same allocator, chosen once.
        unsafe { chosen().dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the same allocator, chosen once.
        unsafe { chosen().realloc(ptr, layout, new_size) }
    }
}
