/// The executable all five daemons run from (`services/crimson`), started under a daemon's
/// [`Daemon::binary_name`] as argv[0].
pub const DAEMON_EXECUTABLE: &str = "crimson";

/// The five Crimson processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    /// `crimson-cri`: the CRI front door.
    Cri,
    /// `crimson-image`: pulls and image records.
    Image,
    /// `crimson-sandbox`: pods, containers, conmon and runc.
    Sandbox,
    /// `crimson-network`: network namespaces and CNI.
    Network,
    /// `crimson-storage`: layers and root filesystems.
    Storage,
}

impl Daemon {
    /// All daemons, backends first, in the order they are started.
    pub const ALL: [Daemon; 5] = [
        Daemon::Storage,
        Daemon::Image,
        Daemon::Network,
        Daemon::Sandbox,
        Daemon::Cri,
    ];

    /// Short name used for directories and config sections ("image").
    pub fn short_name(self) -> &'static str {
        match self {
            Daemon::Cri => "cri",
            Daemon::Image => "image",
            Daemon::Sandbox => "sandbox",
            Daemon::Network => "network",
            Daemon::Storage => "storage",
        }
    }

    /// Binary and display name ("crimson-image").
    pub fn binary_name(self) -> &'static str {
        match self {
            Daemon::Cri => "crimson-cri",
            Daemon::Image => "crimson-image",
            Daemon::Sandbox => "crimson-sandbox",
            Daemon::Network => "crimson-network",
            Daemon::Storage => "crimson-storage",
        }
    }

    /// The daemon named `name` as [`Daemon::binary_name`] gives it.
    pub fn from_binary_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.binary_name() == name)
    }

    /// The daemon named `name` as [`Daemon::short_name`] gives it.
    pub fn from_short_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.short_name() == name)
    }

    /// Socket file name under the run root; the front door keeps the well-known name.
    pub fn socket_file_name(self) -> &'static str {
        match self {
            Daemon::Cri => "crimson.sock",
            Daemon::Image => "image.sock",
            Daemon::Sandbox => "sandbox.sock",
            Daemon::Network => "network.sock",
            Daemon::Storage => "storage.sock",
        }
    }
}

impl std::fmt::Display for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.binary_name())
    }
}
