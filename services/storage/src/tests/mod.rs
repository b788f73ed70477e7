//! Unit tests of layers, root filesystems and reconcile on real files and a recording fake of
//! the mounts (see [`fakes`]): no root, no mounts.

mod fakes;
mod handlers;
mod layers;
mod reconcile;
mod rootfs;
