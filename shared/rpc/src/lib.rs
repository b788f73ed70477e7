//! The one way Crimson processes serve and call gRPC over unix sockets.
//!
//! - [`serve`] / [`serve_on`] run a daemon's services on its socket (mode 0660) together with
//!   the standard gRPC health service and `crimson.daemon.v1.Daemon`, with a trace span per
//!   request, until SIGTERM or SIGINT, then drain the calls in flight; clients whose
//!   `:authority` h2 refuses (gRPC C-core, grpc-java) are served too ([`AuthorityRepair`]).
//! - [`reload_on_hangup`] reads the configuration again on SIGHUP and applies what the
//!   daemon can take without a restart ([`Reload`]).
//! - [`Listener`] is where that socket comes from: systemd, a holder keeping it open across
//!   restarts ([`hold`]), or a fresh bind.
//! - [`to_completion`] runs a change in its own task, so a caller that goes away never stops
//!   it half-way.
//! - [`run_daemon`] runs a daemon's main on the runtime every daemon uses.
//! - [`Peer`] is a lazily connecting, self-healing client channel to another daemon that
//!   propagates `traceparent` and turns a missing daemon into a wait bounded by the caller's
//!   deadline ([`caller_deadline`]), then UNAVAILABLE naming it.

#![warn(missing_docs)]

mod authority;
mod call_scope;
mod change_stamp;
mod client;
mod completion;
mod error;
mod info;
mod keyed_locks;
mod listener;
mod process;
mod reload;
mod server;
mod socket;

pub use authority::AuthorityRepair;
pub use call_scope::caller_deadline;
pub use change_stamp::{
    CHANGE_STAMP_HEADER, ChangeReport, ChangeStamp, READS_HEADER, WRITES_HEADER,
    footprint_from_metadata,
};
pub use client::{Peer, PeerChannel, is_unreachable};
pub use completion::to_completion;
pub use crimson_metrics::ObjectCount;
pub use error::RpcError;
pub use info::StateCounts;
pub use keyed_locks::KeyedLocks;
pub use listener::{Listener, hold};
pub use process::run_daemon;
pub use reload::{Applying, Reload, reload_on_hangup};
pub use server::{DRAIN_LIMIT, serve, serve_on};
pub use socket::connect_unix;
