//! The one way Crimson processes serve and call gRPC over unix sockets.
//!
//! - [`serve`] runs a daemon's services on its socket (mode 0660) together with the standard
//!   gRPC health service and `crimson.daemon.v1.Daemon`, with a trace span per request, until
//!   SIGTERM or SIGINT.
//! - [`Peer`] is a lazily connecting, self-healing client channel to another daemon that
//!   propagates `traceparent` and turns a missing daemon into a bounded wait, then UNAVAILABLE
//!   naming it.

mod client;
mod error;
mod info;
mod keyed_locks;
mod server;
mod socket;

pub use client::{Peer, PeerChannel, is_unreachable};
pub use error::RpcError;
pub use keyed_locks::KeyedLocks;
pub use server::serve;
pub use socket::connect_unix;
