//! `crimson`: the executable of the five daemons. Started under a daemon's name
//! (`crimson-sandbox …`, as argv[0] or a link) or as `crimson sandbox …`, it runs that daemon.
//! One file for the five means their code pages are shared: each process pays for a fifth of
//! them, not for a whole binary of its own.

use std::{ffi::OsString, path::Path, process::ExitCode};

use crimson_config::Daemon;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .and_then(|name| name.to_str())
        .and_then(Daemon::from_binary_name);
    let daemon = match invoked {
        Some(daemon) => daemon,
        None => match args
            .get(1)
            .and_then(|arg| arg.to_str())
            .and_then(Daemon::from_short_name)
        {
            Some(daemon) => {
                args.remove(0);
                args[0] = daemon.binary_name().into();
                daemon
            }
            None => {
                eprintln!(
                    "usage: crimson {{cri|image|sandbox|network|storage}} [OPTIONS], or run it as crimson-<daemon>"
                );
                return ExitCode::from(2);
            }
        },
    };
    name_process(daemon);
    match daemon {
        Daemon::Cri => crimson_cri::cli::main(args),
        Daemon::Image => crimson_image::cli::main(args),
        Daemon::Network => crimson_network::cli::main(args),
        Daemon::Sandbox => crimson_sandbox::cli::main(args),
        Daemon::Storage => crimson_storage::cli::main(args),
    }
}

/// Names the process after its daemon (what `ps`, `top` and `pgrep` show), whatever path
/// started it.
fn name_process(daemon: Daemon) {
    if let Ok(name) = std::ffi::CString::new(daemon.binary_name()) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}
