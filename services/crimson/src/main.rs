//! `crimson`: the executable of the five daemons. Started under a daemon's name
//! (`crimson-sandbox …`, as argv[0] or a link) or as `crimson sandbox …`, it runs that daemon.
//! One file for the five means their code pages are shared: each process pays for a fifth of
//! them, not for a whole binary of its own.

use std::{ffi::OsString, path::Path, process::ExitCode};

use crimson_config::Daemon;

mod allocator;

#[global_allocator]
static ALLOCATOR: allocator::DaemonAllocator = allocator::DaemonAllocator;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let arg0 = args
        .first()
        .and_then(|arg0| arg0.to_str())
        .unwrap_or_default();
    let arg1 = args.get(1).and_then(|arg| arg.to_str());
    let Some((daemon, by_argument)) = invoked_daemon(arg0, arg1) else {
        eprintln!(
            "usage: crimson {{cri|image|sandbox|network|storage}} [OPTIONS], or run it as crimson-<daemon>"
        );
        return ExitCode::from(2);
    };
    if by_argument {
        args.remove(0);
        args[0] = daemon.binary_name().into();
    }
    name_process(daemon);
    match daemon {
        Daemon::Cri => crimson_cri::cli::main(args),
        Daemon::Image => crimson_image::cli::main(args),
        Daemon::Network => crimson_network::cli::main(args),
        Daemon::Sandbox => crimson_sandbox::cli::main(args),
        Daemon::Storage => crimson_storage::cli::main(args),
    }
}

/// The daemon a command line starts: by the executable's name (`crimson-sandbox`), or by its
/// first argument (`crimson sandbox`; then `true`).
fn invoked_daemon(arg0: &str, arg1: Option<&str>) -> Option<(Daemon, bool)> {
    let executable = Path::new(arg0).file_name().and_then(|name| name.to_str());
    match executable.and_then(Daemon::from_binary_name) {
        Some(daemon) => Some((daemon, false)),
        None => arg1
            .and_then(Daemon::from_short_name)
            .map(|daemon| (daemon, true)),
    }
}

/// Names the process after its daemon (what `ps`, `top` and `pgrep` show), whatever path
/// started it.
fn name_process(daemon: Daemon) {
    if let Ok(name) = std::ffi::CString::new(daemon.binary_name()) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_is_named_by_the_executable_or_the_first_argument() {
        assert_eq!(
            invoked_daemon("/usr/bin/crimson-cri", Some("--config")),
            Some((Daemon::Cri, false))
        );
        assert_eq!(
            invoked_daemon("crimson-sandbox", None),
            Some((Daemon::Sandbox, false))
        );
        assert_eq!(
            invoked_daemon("./target/release/crimson", Some("image")),
            Some((Daemon::Image, true))
        );
        assert_eq!(invoked_daemon("crimson", Some("bogus")), None);
        assert_eq!(invoked_daemon("crimson", None), None);
    }
}
