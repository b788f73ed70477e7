//! Telemetry for every Crimson process: structured `tracing` logs, optional OTLP span export,
//! and W3C `traceparent` propagation across the internal gRPC calls so one CRI request is one
//! trace.

#![warn(missing_docs)]

mod init;
mod propagation;

pub use init::{LogFilter, TelemetryError, TelemetryGuard, init};
pub use propagation::{TracePropagation, server_span};
