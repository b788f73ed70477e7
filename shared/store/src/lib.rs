//! Each daemon's own sled database, opened through one place: typed trees with JSON values,
//! a schema version checked at open, migrations run in order, and an explicit flush (group commit
//! on one thread per database) so writes that must survive a crash are on disk before an RPC
//! answers.

#![warn(missing_docs)]

mod changes;
mod error;
mod flusher;
mod footprint;
mod store;
mod tree;

pub use changes::Changes;
pub use error::{Result, StoreError};
pub use footprint::{Footprint, ReadRecorder};
pub use store::{Migration, Store};
pub use tree::Tree;
