//! Where a daemon's listening socket comes from: systemd socket activation (`LISTEN_FDS`), a
//! socket holder that keeps it open across restarts and hands it over (SCM_RIGHTS), or a
//! fresh bind. An inherited socket outlives the process: connections made while the daemon
//! is down wait in its backlog and are answered by the next one.

use std::{
    io::{IoSlice, IoSliceMut},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{
            fs::PermissionsExt,
            net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream},
        },
    },
    path::{Path, PathBuf},
    time::Duration,
};

use nix::sys::socket::{
    Backlog, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr, getsockname, listen, recvmsg,
    sendmsg,
};
use tokio::net::UnixListener;

use crate::{RpcError, socket::prepare_socket_path};

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
const SYSTEMD_FIRST_FD: RawFd = 3;

/// Connections the kernel queues while no process accepts (a restart's gap).
const BACKLOG: i32 = 4096;

/// A listening socket and whether this process owns its path.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    inherited: bool,
}

impl Listener {
    /// Binds `path` afresh (mode 0660), refusing if a live process answers on it.
    pub async fn bind(path: &Path) -> Result<Self, RpcError> {
        prepare_socket_path(path).await?;
        let bind_err = |source| RpcError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = StdUnixListener::bind(path).map_err(bind_err)?;
        listen(
            &listener,
            Backlog::new(BACKLOG)
                .map_err(std::io::Error::from)
                .map_err(bind_err)?,
        )
        .map_err(std::io::Error::from)
        .map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
        Self::from_std(listener, path, false)
    }

    /// The socket for `path` from systemd (`LISTEN_PID`/`LISTEN_FDS`), else from the holder
    /// answering on `holder`, else a fresh bind.
    pub async fn acquire(path: &Path, holder: &Path) -> Result<Self, RpcError> {
        if let Some(fd) = systemd_fd() {
            tracing::info!(socket = %path.display(), "listening socket from systemd");
            return Self::inherit(fd, path);
        }
        let holder_path = holder.to_path_buf();
        let held = tokio::task::spawn_blocking(move || fetch_from_holder(&holder_path))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|fetched| fetched);
        match held {
            Ok(fd) => {
                tracing::info!(socket = %path.display(), holder = %holder.display(), "listening socket from its holder");
                Self::inherit(fd, path)
            }
            Err(e) => {
                tracing::debug!(holder = %holder.display(), error = %e, "no socket holder");
                Self::bind(path).await
            }
        }
    }

    fn inherit(fd: OwnedFd, path: &Path) -> Result<Self, RpcError> {
        let bound = getsockname::<UnixAddr>(fd.as_raw_fd())
            .ok()
            .and_then(|addr| addr.path().map(Path::to_path_buf));
        if bound.as_deref() != Some(path) {
            return Err(RpcError::Bind {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!(
                    "the inherited socket is bound to {bound:?}, not to this path"
                )),
            });
        }
        Self::from_std(StdUnixListener::from(fd), path, true)
    }

    fn from_std(listener: StdUnixListener, path: &Path, inherited: bool) -> Result<Self, RpcError> {
        let bind_err = |source| RpcError::Bind {
            path: path.to_path_buf(),
            source,
        };
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(Self {
            listener: UnixListener::from_std(listener).map_err(bind_err)?,
            path: path.to_path_buf(),
            inherited,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the socket came from systemd or a holder (its path is theirs to remove).
    pub fn is_inherited(&self) -> bool {
        self.inherited
    }

    pub(crate) fn into_inner(self) -> UnixListener {
        self.listener
    }
}

/// The socket systemd passed to this process, if it did (`LISTEN_PID` names this process, so
/// children never take it for theirs).
fn systemd_fd() -> Option<OwnedFd> {
    let for_us = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    let count = std::env::var("LISTEN_FDS").ok()?.parse::<i32>().ok()?;
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !for_us || count < 1 || TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    // SAFETY: by the socket activation protocol fd 3 is ours and open; taken once (above).
    let fd = unsafe { OwnedFd::from_raw_fd(SYSTEMD_FIRST_FD) };
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(fd)
}

/// Asks the holder on `holder` for the listening socket.
fn fetch_from_holder(holder: &Path) -> std::io::Result<OwnedFd> {
    let stream = StdUnixStream::connect(holder)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control {
            let mut fds = fds.into_iter();
            if let Some(fd) = fds.next() {
                // SAFETY: the kernel just installed these descriptors for this process.
                for extra in fds {
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other("the holder sent no socket"))
}

/// Holds the listening socket `path` open (binding it, backlog 4096) and hands it to every
/// process that connects to `holder`, until SIGTERM or SIGINT; then removes both paths.
pub async fn hold(path: &Path, holder: &Path) -> Result<(), RpcError> {
    let listener = Listener::bind(path)
        .await?
        .into_inner()
        .into_std()
        .map_err(|source| RpcError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
    let _ = std::fs::remove_file(holder);
    let handouts = UnixListener::bind(holder).map_err(|source| RpcError::Bind {
        path: holder.to_path_buf(),
        source,
    })?;
    let _ = std::fs::set_permissions(holder, std::fs::Permissions::from_mode(0o600));
    tracing::info!(socket = %path.display(), holder = %holder.display(), "holding the socket");
    let stop = crate::server::shutdown_signal()?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = handouts.accept() => match accepted {
                Ok((stream, _)) => {
                    let fds = [listener.as_raw_fd()];
                    let sent = sendmsg::<()>(
                        stream.as_raw_fd(),
                        &[IoSlice::new(b"L")],
                        &[ControlMessage::ScmRights(&fds)],
                        MsgFlags::MSG_NOSIGNAL,
                        None,
                    );
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "handing the socket over failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "accepting on the holder socket"),
            },
        }
    }
    let _ = std::fs::remove_file(holder);
    let _ = std::fs::remove_file(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_socket_is_handed_over_and_keeps_queueing_after_its_user_is_gone() {
        let dir = tempfile_dir();
        let path = dir.join("front.sock");
        let holder = dir.join("front.sock.holder");
        let held = tokio::spawn({
            let (path, holder) = (path.clone(), holder.clone());
            async move { hold(&path, &holder).await }
        });
        while !holder.exists() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let first = Listener::acquire(&path, &holder).await.unwrap();
        assert!(first.is_inherited());
        drop(first);
        // Nobody accepts now, yet connecting works: the holder's socket queues it.
        let mut waiting = tokio::net::UnixStream::connect(&path).await.unwrap();
        let second = Listener::acquire(&path, &holder)
            .await
            .unwrap()
            .into_inner();
        let (mut accepted, _) = second.accept().await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        waiting.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        accepted.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        held.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn without_a_holder_the_socket_is_bound_afresh() {
        let dir = tempfile_dir();
        let path = dir.join("alone.sock");
        let listener = Listener::acquire(&path, &dir.join("absent.holder"))
            .await
            .unwrap();
        assert!(!listener.is_inherited());
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("crimson-listener-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
