//! Driving the OCI runtime (runc or a drop-in) directly and through conmon.

pub mod children;
pub mod conmon;
pub mod exec_fifo;
pub mod exit;
pub mod features;
pub mod migration_primer;
pub mod oci_runtime;
