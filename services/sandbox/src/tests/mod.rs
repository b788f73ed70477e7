//! Unit tests of the daemon's operations on a recording fake of the runtime, conmon, the host
//! and the neighbour daemons (see [`fakes`]): no root, no processes.

mod containers;
mod creation;
mod fakes;
mod handlers;
mod pods;
mod reconcile;
