//! Debian's docker-registry (distribution 2.8) on a loopback port, with private storage and an
//! optional htpasswd file.

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running registry, stopped when dropped.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Credentials the registry requires, if any.
    pub credentials: Option<(String, String)>,
    /// The token server, when the registry uses token authentication.
    pub token_server: Option<crate::token_auth::TokenServer>,
}

/// How long a registry lives.
#[derive(PartialEq)]
enum Lifetime {
    /// Until its [`TestRegistry`] is dropped; blobs on disk in its directory.
    Owned,
    /// Until the thread that started it ends; blobs in memory, its directory removed at once.
    Process,
}

/// How the registry authenticates clients.
enum Auth {
    Open,
    Basic,
    Token,
}

impl TestRegistry {
    /// Starts an open registry on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(Auth::Open, None, crate::free_port(), Lifetime::Owned)
    }

    /// Starts an open registry on loopback port `port` (one another runtime is configured to
    /// pull from).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(Auth::Open, None, port, Lifetime::Owned)
    }

    /// The open registry every test of this process shares: started once, by a thread that
    /// lives as long as the process, and killed by the kernel when the process ends (a static
    /// is never dropped). Tests that push to it use names of their own.
    pub fn shared() -> std::sync::Arc<TestRegistry> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<TestRegistry>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let (started, registry) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let registry =
                        Self::start_with(Auth::Open, None, crate::free_port(), Lifetime::Process);
                    started.send(std::sync::Arc::new(registry)).unwrap();
                    loop {
                        std::thread::park();
                    }
                });
                registry.recv().expect("starting the shared registry")
            })
            .clone()
    }

    /// Starts a registry that requires `user`/`password` (HTTP basic, bcrypt htpasswd).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        let credentials = Some((user.to_string(), password.to_string()));
        Self::start_with(
            Auth::Basic,
            credentials,
            crate::free_port(),
            Lifetime::Owned,
        )
    }

    /// Starts a registry that answers with a Bearer challenge; its token server hands tokens
    /// to `user`/`password`.
    pub fn start_with_token_auth(user: &str, password: &str) -> Self {
        let credentials = Some((user.to_string(), password.to_string()));
        Self::start_with(
            Auth::Token,
            credentials,
            crate::free_port(),
            Lifetime::Owned,
        )
    }

    fn start_with(
        auth: Auth,
        credentials: Option<(String, String)>,
        port: u16,
        lifetime: Lifetime,
    ) -> Self {
        let dir = tempfile::tempdir().expect("registry dir");
        let address = format!("127.0.0.1:{port}");
        let storage = match lifetime {
            Lifetime::Owned => format!(
                "filesystem:\n    rootdirectory: {}",
                dir.path().join("data").display()
            ),
            Lifetime::Process => "inmemory: {}".to_string(),
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  {storage}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n"
        );
        let mut token_server = None;
        if let (Auth::Token, Some((user, password))) = (&auth, &credentials) {
            let (server, yaml) = crate::token_auth::start(dir.path(), user, password);
            config.push_str(&yaml);
            token_server = Some(server);
        }
        if let (Auth::Basic, Some((user, password))) = (&auth, &credentials) {
            let htpasswd = dir.path().join("htpasswd");
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("running htpasswd (Debian package apache2-utils)");
            assert!(output.status.success(), "htpasswd failed");
            std::fs::write(&htpasswd, output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: crimson-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if lifetime == Lifetime::Process {
            // SAFETY: prctl is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = command
            .spawn()
            .expect("starting docker-registry (Debian package docker-registry)");
        let registry = Self {
            child,
            dir,
            address,
            credentials,
            token_server,
        };
        registry.wait_ready();
        if lifetime == Lifetime::Process {
            // It read its configuration and keeps its log open; nothing else is in there.
            let _ = std::fs::remove_dir_all(registry.dir.path());
        }
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.http_status("/v2/")
                && (status == 200 || status == 401)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start; log:\n{}", self.log());
    }

    /// Status code of a plain GET on the registry.
    pub fn http_status(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(&self.address).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.address
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Path of the registry's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Where the registry keeps the blob `digest` on disk (to corrupt it in tests).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// How many GETs of blob `digest` in `repository` the registry served.
    pub fn blob_downloads(&self, repository: &str, digest: &str) -> usize {
        let needle = format!("\"GET /v2/{repository}/blobs/{digest} ");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle) && !line.contains("\" 401 "))
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
