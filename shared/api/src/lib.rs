//! Generated clients, servers and messages of Crimson's internal gRPC APIs.
//!
//! One module per daemon package, versioned as in `proto/`.

#![allow(
    missing_docs,
    clippy::doc_lazy_continuation,
    clippy::large_enum_variant
)]

/// `crimson.daemon.v1`: identity of every daemon.
pub mod daemon {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crimson.daemon.v1");
    }
}

/// `crimson.image.v1`: crimson-image.
pub mod image {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crimson.image.v1");
    }
}

/// `crimson.storage.v1`: crimson-storage.
pub mod storage {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crimson.storage.v1");
    }
}

/// `crimson.sandbox.v1`: crimson-sandbox.
pub mod sandbox {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crimson.sandbox.v1");
    }
}

/// `crimson.network.v1`: crimson-network.
pub mod network {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crimson.network.v1");
    }
}

/// `runtime.v1`: the CRI RPCs of cri-api v0.36 that the k8s-cri crate does not have yet.
pub mod cri;
