//! Connecting to conmon's attach socket whatever the length of its path. A unix socket path
//! may hold 107 bytes; `<run_root>/sandbox/attach/<64-hex id>/attach` passes that with a run
//! root a little longer than `/run/crimson`. The socket's directory is opened and the socket
//! reached through `/proc/self/fd/<dir>/attach`, which is always short (conmon binds it the
//! same way).

use std::{
    fs::File,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};

/// A non-blocking SOCK_SEQPACKET socket connected to `name` in `dir`.
pub fn connect_seqpacket(dir: &Path, name: &str) -> std::io::Result<OwnedFd> {
    let dir = File::open(dir)?;
    let short = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(short.as_str())?)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use nix::sys::socket::{Backlog, bind, listen};

    use super::*;

    #[test]
    fn a_socket_whose_path_passes_the_limit_is_reached() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a".repeat(60)).join("b".repeat(64));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(dir.join("attach").as_os_str().len() > 108);
        // Bound the way conmon binds it: through the short /proc path.
        let held = File::open(&dir).unwrap();
        let listener = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let short = format!("/proc/self/fd/{}/attach", held.as_raw_fd());
        bind(
            listener.as_raw_fd(),
            &UnixAddr::new(short.as_str()).unwrap(),
        )
        .unwrap();
        listen(&listener, Backlog::new(1).unwrap()).unwrap();

        assert!(
            UnixAddr::new(&dir.join("attach")).is_err(),
            "the long path itself is refused"
        );
        connect_seqpacket(&dir, "attach").expect("connected through the short path");
    }
}
