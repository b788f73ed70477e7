//! Pod sandboxes: their files, namespaces, /dev/shm, cgroup, network and infra process.

pub mod cgroup;
pub mod files;
pub mod infra;
pub mod list;
pub mod namespaces;
pub mod remove;
pub mod run;
pub mod stop;
pub mod user_namespace;
