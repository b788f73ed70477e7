//! Plumbing shared by the streaming RPCs: the output channel (bounded, so a slow reader slows
//! the process down instead of growing a buffer), terminal sizes and descriptor passing.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use crimson_api::sandbox::v1::{StreamEnd, StreamOutput, stream_output::Part};
use tokio::sync::mpsc;
use tonic::Status;

/// Messages waiting for the client at most; beyond this the producer waits.
pub const OUTPUT_BUFFER: usize = 16;
/// Bytes read from a process at a time.
pub const CHUNK: usize = 32 * 1024;

/// Sender of a stream's output.
pub type Output = mpsc::Sender<Result<StreamOutput, Status>>;

/// A bounded output channel.
pub fn output_channel() -> (Output, mpsc::Receiver<Result<StreamOutput, Status>>) {
    mpsc::channel(OUTPUT_BUFFER)
}

/// A stdout or stderr chunk.
pub fn chunk(stderr: bool, data: Bytes) -> StreamOutput {
    StreamOutput {
        part: Some(if stderr {
            Part::Stderr(data)
        } else {
            Part::Stdout(data)
        }),
    }
}

/// The final message.
pub fn end(exit_code: i32, error: String) -> StreamOutput {
    StreamOutput {
        part: Some(Part::End(StreamEnd { exit_code, error })),
    }
}

/// Sets the window size of a terminal.
pub fn resize(terminal: RawFd, width: u32, height: u32) {
    let size = libc::winsize {
        ws_row: height.min(u16::MAX as u32) as u16,
        ws_col: width.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which lives across the call.
    unsafe {
        libc::ioctl(terminal, libc::TIOCSWINSZ, &size);
    }
}

/// Receives one file descriptor passed over `socket` (SCM_RIGHTS), as the OCI runtime sends a
/// terminal's master side to `--console-socket`.
pub fn receive_fd(socket: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    for control in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = control
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just created this descriptor for us; nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(std::io::Error::other("no file descriptor received"))
}
