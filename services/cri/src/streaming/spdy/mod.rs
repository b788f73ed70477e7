//! SPDY/3.1, the upgrade protocol kubelet and client-go speak to streaming servers.

pub mod frame;
pub mod headers;
pub mod port_forward;
pub mod remote;
pub mod session;
