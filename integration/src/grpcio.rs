//! A gRPC C-core client (Python grpcio, as the C++, Ruby and PHP stacks use) driven from a
//! test through `integration/scripts/grpcio_client.py`: requests and answers cross as encoded
//! protobuf, so the test keeps using the Rust message types.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use base64::{Engine, engine::general_purpose::STANDARD};

/// The variable naming the Python interpreter that has grpcio.
pub const PYTHON_VARIABLE: &str = "CRIMSON_TEST_PYTHON";
/// Where `deploy/install-deps.sh` puts one.
pub const DEFAULT_PYTHON: &str = "/opt/crimson-tests/python/bin/python3";

/// A running grpcio client on one channel to a unix socket.
pub struct GrpcioClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What one call answered.
#[derive(Debug)]
pub struct Answer {
    /// The gRPC status code's name (`OK`, `NOT_FOUND`, …).
    pub code: String,
    /// The status message.
    pub details: String,
    /// The encoded responses (one for a unary call).
    pub responses: Vec<Vec<u8>>,
}

impl Answer {
    /// The responses decoded as `M`.
    pub fn decoded<M: prost::Message + Default>(&self) -> Vec<M> {
        self.responses
            .iter()
            .map(|bytes| M::decode(bytes.as_slice()).expect("a response that decodes"))
            .collect()
    }
}

impl GrpcioClient {
    /// Starts the client on `socket`; panics naming the install step when grpcio is missing.
    pub fn start(socket: &Path) -> Self {
        let python = std::env::var(PYTHON_VARIABLE).unwrap_or_else(|_| DEFAULT_PYTHON.into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/grpcio_client.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{python} (Python with grpcio, from deploy/install-deps.sh): {e}")
            });
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Calls `path` (`/package.Service/Method`) with `request`, reading every response of a
    /// server stream when `stream` is set, within `timeout_seconds`.
    pub fn call(
        &mut self,
        path: &str,
        request: &impl prost::Message,
        stream: bool,
        timeout_seconds: u64,
    ) -> Answer {
        let order = serde_json::json!({
            "path": path,
            "stream": stream,
            "request": STANDARD.encode(request.encode_to_vec()),
            "timeout": timeout_seconds,
        });
        writeln!(self.stdin, "{order}").expect("writing to the grpcio client");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading the grpcio client");
        let answer: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the grpcio client answered {line:?}: {e}"));
        Answer {
            code: answer["code"].as_str().unwrap_or_default().into(),
            details: answer["details"].as_str().unwrap_or_default().into(),
            responses: answer["responses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| STANDARD.decode(r.as_str().unwrap_or_default()).unwrap())
                .collect(),
        }
    }
}

impl Drop for GrpcioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
