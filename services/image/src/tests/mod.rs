//! Unit tests of pulls, removals and owner reconciliation on recording fakes of the
//! registries and crimson-storage (see [`fakes`]): no network, no other daemon.

mod fakes;
mod handlers;
mod owners;
mod pull;
