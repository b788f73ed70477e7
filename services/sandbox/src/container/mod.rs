//! Containers: created through conmon + the OCI runtime, their state read from conmon's exit
//! files, so a container that ends while this daemon is down is seen as exited afterwards.

pub mod attach;
pub mod attach_socket;
pub mod create;
pub mod exec_stream;
pub mod exec_sync;
pub mod idmapped_volumes;
pub mod image_volumes;
pub mod list;
pub mod refresh;
pub mod remove;
pub mod start;
pub mod stats;
pub mod stop;
pub mod stream_io;
pub mod update;
