//! Host operations shared by Crimson's daemons. Syscalls, mounts, namespace pinning, directory
//! walks and process waits block a thread; on a two-core node two blocked tokio workers stall
//! every call of a daemon, so they run here, on tokio's blocking pool, and the caller waits a
//! bounded time.

#![warn(missing_docs)]

mod blocking;
pub mod mounts;
mod names;
pub mod namespaces;
mod random;
pub mod user_namespaces;

pub use blocking::{BlockingError, blocking};
pub use names::is_safe_file_name;
pub use random::random_bytes;
