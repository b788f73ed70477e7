//! Unit tests of attaching and detaching pods on a recording fake of the CNI plugins and the
//! network namespaces (see [`fakes`]): no root, no processes.

mod attach;
mod fakes;
mod handlers;
mod reconcile;
