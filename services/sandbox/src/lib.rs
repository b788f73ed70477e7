//! crimson-sandbox as a library.
//!
//! Today it reports whether the OCI runtime and conmon it drives are usable; pods and
//! containers come with the pod lifecycle.

mod binaries;
mod error;
mod service;

pub use binaries::find_executable;
pub use error::{Result, SandboxError};
pub use service::SandboxService;
