//! Seccomp: the runtime's default profile (an allow list, as the container ecosystem's default
//! profile: everything else fails with EPERM), localhost profiles from files, or none.
//!
//! Syscalls that need a capability are allowed only when the container has it; `clone` without
//! CAP_SYS_ADMIN may not create namespaces, `clone3` answers ENOSYS so libc falls back to it.

use std::path::Path;

use oci_spec::runtime::{Capabilities, Capability, LinuxSeccomp};
use serde_json::{Value, json};

use crate::{Result, SandboxError};

/// Allowed for every container.
const ALWAYS: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed when the container holds one of the capabilities.
const BY_CAPABILITY: &[(&[&str], &[&str])] = &[
    (
        &["SYS_ADMIN"],
        &[
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (&["SYS_ADMIN", "BPF"], &["bpf"]),
    (&["SYS_ADMIN", "PERFMON"], &["perf_event_open"]),
    (&["SYS_ADMIN", "SYSLOG"], &["syslog"]),
    (
        &["DAC_READ_SEARCH"],
        &["name_to_handle_at", "open_by_handle_at"],
    ),
    (&["SYS_BOOT"], &["reboot"]),
    (
        &["SYS_MODULE"],
        &["delete_module", "init_module", "finit_module"],
    ),
    (&["SYS_PACCT"], &["acct"]),
    (
        &["SYS_PTRACE"],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "userfaultfd",
        ],
    ),
    (&["SYS_RAWIO"], &["iopl", "ioperm"]),
    (
        &["SYS_TIME"],
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    (&["SYS_TTY_CONFIG"], &["vhangup"]),
    (
        &["SYS_NICE"],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
];

/// `clone` flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// Execution domains `personality` may switch to (linux, linux32 variants, query).
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;
const EPERM: u32 = 1;

/// The default profile for a container holding `capabilities` (its effective set, or its
/// bounding set for non-root containers that may gain them through setuid binaries).
pub fn runtime_default(capabilities: &Capabilities) -> LinuxSeccomp {
    let holds = |names: &[&str]| {
        names
            .iter()
            .filter_map(|n| n.parse::<Capability>().ok())
            .any(|c| capabilities.contains(&c))
    };
    let mut allowed: Vec<&str> = ALWAYS.to_vec();
    for (needed, syscalls) in BY_CAPABILITY {
        if holds(needed) {
            allowed.extend_from_slice(syscalls);
        }
    }
    let mut rules = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    for persona in PERSONALITIES {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
    }
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    if !holds(&["SYS_ADMIN"]) {
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": architectures(),
        "syscalls": rules,
    });
    serde_json::from_value(profile).expect("the built-in seccomp profile is valid")
}

fn architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => Vec::new(),
    }
}

/// A profile from a file: the OCI seccomp format (also accepting Docker's singular `name`).
pub fn localhost(path: &Path) -> Result<LinuxSeccomp> {
    if !path.is_absolute() {
        return Err(SandboxError::InvalidArgument(format!(
            "seccomp profile path {} must be absolute",
            path.display()
        )));
    }
    let raw = std::fs::read(path).map_err(SandboxError::io("reading seccomp profile", path))?;
    let mut profile: Value = serde_json::from_slice(&raw).map_err(|e| {
        SandboxError::InvalidArgument(format!("seccomp profile {}: {e}", path.display()))
    })?;
    if let Some(syscalls) = profile.get_mut("syscalls").and_then(Value::as_array_mut) {
        for rule in syscalls {
            if let Some(name) = rule
                .get("name")
                .cloned()
                .filter(|_| rule.get("names").is_none())
            {
                rule["names"] = json!([name]);
            }
        }
    }
    serde_json::from_value(profile).map_err(|e| {
        SandboxError::InvalidArgument(format!("seccomp profile {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &LinuxSeccomp, name: &str) -> bool {
        profile.syscalls().iter().flatten().any(|rule| {
            rule.names().iter().any(|n| n == name)
                && rule.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
                && rule.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    #[test]
    fn namespace_syscalls_need_sys_admin() {
        let plain = runtime_default(&["CHOWN".parse().unwrap()].into());
        assert!(allowed(&plain, "read"));
        assert!(!allowed(&plain, "unshare"));
        assert!(!allowed(&plain, "mount"));
        let admin = runtime_default(&["SYS_ADMIN".parse().unwrap()].into());
        assert!(allowed(&admin, "unshare"));
    }

    #[test]
    fn localhost_profiles_accept_docker_style_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"chmod","action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        let profile = localhost(&path).unwrap();
        assert_eq!(
            profile.syscalls().as_ref().unwrap()[0].names(),
            &vec!["chmod".to_string()]
        );
        assert!(localhost(Path::new("relative.json")).is_err());
    }
}
