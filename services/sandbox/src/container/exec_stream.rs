//! Exec: a command in a running container with its stdio streamed both ways, on pipes or on a
//! terminal the OCI runtime creates (its master side arrives on a console socket). When the
//! caller goes away the command and its descendants are killed; the session's files go too.

use std::{
    io::{Read, Write},
    os::unix::net::UnixListener,
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use crimson_api::sandbox::v1::{StreamInput, StreamStart, stream_input::Part};
use tokio::{io::AsyncReadExt, process::Command, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::{
    exec_sync::{kill_tree, write_process_spec},
    refresh::current,
    stream_io::{CHUNK, Output, chunk, end, output_channel, receive_fd, resize},
};
use crate::{
    Result, SandboxError,
    records::ContainerPhase,
    runtime::children::{Owned, children},
    state::{State, new_id},
};

/// The response stream of a streaming RPC.
pub type OutputStream =
    ReceiverStream<std::result::Result<crimson_api::sandbox::v1::StreamOutput, Status>>;

/// How long the runtime may take to hand over the terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the `start` message every streaming request begins with.
pub async fn read_start(input: &mut Streaming<StreamInput>) -> Result<StreamStart> {
    match input.message().await {
        Ok(Some(StreamInput {
            part: Some(Part::Start(start)),
        })) => Ok(start),
        Ok(_) => Err(SandboxError::InvalidArgument(
            "the first message must be `start`".into(),
        )),
        Err(status) => Err(SandboxError::runtime(
            "reading the request",
            status.message().to_string(),
        )),
    }
}

/// Files of one exec session, removed when it ends.
struct Session {
    process_file: PathBuf,
    pid_file: PathBuf,
    console: PathBuf,
}

impl Drop for Session {
    fn drop(&mut self) {
        for file in [&self.process_file, &self.pid_file, &self.console] {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Session {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Starts the command and returns its output stream.
pub async fn exec(state: Arc<State>, mut input: Streaming<StreamInput>) -> Result<OutputStream> {
    let start = read_start(&mut input).await?;
    if start.cmd.is_empty() {
        return Err(SandboxError::InvalidArgument(
            "cmd must not be empty".into(),
        ));
    }
    let record = current(&state, &start.container_id).await?;
    if record.phase != ContainerPhase::Running {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {} is not running",
            record.id
        )));
    }
    state.migration_primer.keep_warm();
    let bundle = state.layout.bundle(&record.id);
    let id = new_id()?[..16].to_string();
    let session = Session {
        process_file: bundle.join(format!("exec-{id}.json")),
        pid_file: bundle.join(format!("exec-{id}.pid")),
        console: state.layout.console_sockets().join(format!("{id}.sock")),
    };
    write_process_spec(
        &bundle.join("config.json"),
        &start.cmd,
        &session.process_file,
    )?;
    let runtime = state.runtime_of(&record)?;
    let mut command = Command::new(&runtime.path);
    command
        .arg("--root")
        .arg(&runtime.root)
        .arg("exec")
        .arg("--process")
        .arg(&session.process_file)
        .arg("--pid-file")
        .arg(&session.pid_file);
    let (tx, rx) = output_channel();
    if start.tty {
        // The process spec says terminal: true; a detached runtime passes the terminal's
        // master side to the console socket and leaves the process to us (a subreaper).
        let spec = std::fs::read(&session.process_file)
            .map_err(SandboxError::io("reading", &session.process_file))?;
        let mut process: serde_json::Value =
            serde_json::from_slice(&spec).map_err(|e| SandboxError::runtime("exec", e))?;
        process["terminal"] = true.into();
        std::fs::write(&session.process_file, process.to_string())
            .map_err(SandboxError::io("writing", &session.process_file))?;
        let listener = UnixListener::bind(&session.console)
            .map_err(SandboxError::io("binding", &session.console))?;
        command
            .args(["--detach", "--tty", "--console-socket"])
            .arg(&session.console)
            .arg(&record.id);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (child, _owned) = children()
            .spawn(&mut command)
            .map_err(|e| SandboxError::runtime("running exec", e))?;
        let receiving = tokio::task::spawn_blocking(move || receive_terminal(&listener));
        // A detached runtime exits once the process runs (having sent the terminal) or failed.
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| SandboxError::runtime("running exec", e))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(SandboxError::runtime("exec on a terminal", said));
        }
        let terminal = receiving
            .await
            .map_err(|e| SandboxError::runtime("exec", e))?
            .map_err(|e| SandboxError::runtime("receiving the terminal from the runtime", e))?;
        let pid = session
            .pid()
            .ok_or_else(|| SandboxError::runtime("exec on a terminal", "no pid file"))?;
        run_on_terminal(pid, terminal, input, tx, session);
    } else {
        command.arg(&record.id);
        command
            .stdin(if start.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if start.stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(if start.stderr {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .kill_on_drop(false);
        let (child, owned) = children()
            .spawn(&mut command)
            .map_err(|e| SandboxError::runtime("running exec", e))?;
        run_on_pipes(child, owned, input, tx, session);
    }
    Ok(ReceiverStream::new(rx))
}

/// Exit code of the runtime's `exec` (the command's; 128 + signal for a signal death).
fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1),
        Err(_) => -1,
    }
}

fn run_on_pipes(
    mut child: tokio::process::Child,
    owned: Owned,
    mut input: Streaming<StreamInput>,
    tx: Output,
    session: Session,
) {
    let mut stdin = child.stdin.take();
    let readers: Vec<_> = [
        (
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            false,
        ),
        (
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            true,
        ),
    ]
    .into_iter()
    .filter_map(|(pipe, is_stderr)| pipe.map(|p| (p, is_stderr)))
    .map(|(mut pipe, is_stderr)| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; CHUNK];
            loop {
                match pipe.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(Ok(chunk(is_stderr, Bytes::copy_from_slice(&buffer[..n]))))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        })
    })
    .collect();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            match input.message().await {
                Ok(Some(StreamInput {
                    part: Some(Part::Stdin(data)),
                })) => {
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Ok(Some(StreamInput {
                    part: Some(Part::StdinClosed(_)),
                })) => stdin = None,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    });
    let exit = Box::pin(async move {
        let _owned = owned;
        exit_code(child.wait().await)
    });
    tokio::spawn(finish(exit, readers, tx, session));
}

/// Accepts the runtime's connection on the console socket and receives the terminal.
fn receive_terminal(listener: &UnixListener) -> std::io::Result<std::os::fd::OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + CONSOLE_TIMEOUT;
    let socket = loop {
        match listener.accept() {
            Ok((socket, _)) => break socket,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(CONSOLE_TIMEOUT))?;
    receive_fd(&socket)
}

fn run_on_terminal(
    pid: i32,
    terminal: std::os::fd::OwnedFd,
    mut input: Streaming<StreamInput>,
    tx: Output,
    session: Session,
) {
    use std::os::fd::AsRawFd;
    let raw = terminal.as_raw_fd();
    let mut reader = std::fs::File::from(terminal);
    let mut writer = reader.try_clone().ok();
    let output = tx.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0u8; CHUNK];
        // EIO once the last process on the terminal is gone.
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0
                || output
                    .blocking_send(Ok(chunk(false, Bytes::copy_from_slice(&buffer[..n]))))
                    .is_err()
            {
                break;
            }
        }
    });
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(16);
    std::thread::spawn(move || {
        while let Some(data) = stdin_rx.blocking_recv() {
            if let Some(terminal) = writer.as_mut()
                && terminal.write_all(&data).is_err()
            {
                writer = None;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match input.message().await {
                Ok(Some(StreamInput {
                    part: Some(Part::Stdin(data)),
                })) => {
                    if stdin_tx.send(data).await.is_err() {
                        break;
                    }
                }
                Ok(Some(StreamInput {
                    part: Some(Part::Resize(size)),
                })) => resize(raw, size.width, size.height),
                // A terminal has no end of input of its own: send ^D, as a user would.
                Ok(Some(StreamInput {
                    part: Some(Part::StdinClosed(_)),
                })) => {
                    let _ = stdin_tx.send(Bytes::from_static(b"\x04")).await;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    });
    let reading = tokio::spawn(async move {
        let _ = reading.await;
    });
    // The process is ours only by reparenting (we are a subreaper): the reaper collects it.
    let exit = Box::pin(children().wait_adopted(pid as u32));
    tokio::spawn(finish(exit, vec![reading], tx, session));
}

/// Waits for the command (killing it if the caller goes away), lets the output drain, then
/// sends the exit code.
async fn finish(
    exit: std::pin::Pin<Box<dyn std::future::Future<Output = i32> + Send>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    tx: Output,
    session: Session,
) {
    let mut exit = exit;
    let code = tokio::select! {
        code = &mut exit => code,
        () = tx.closed() => {
            if let Some(pid) = session.pid() {
                kill_tree(pid);
            }
            exit.await
        }
    };
    for reader in readers {
        let _ = reader.await;
    }
    let _ = tx.send(Ok(end(code, String::new()))).await;
    drop(session);
}
