//! Compiles every internal `.proto` under `proto/` into client and server code.

/// Messages crimson-sandbox keeps in its database (pod and container specs as they arrive).
const SANDBOX_RECORDS: &[&str] = &[
    ".crimson.sandbox.v1.PodSpec",
    ".crimson.sandbox.v1.DnsConfig",
    ".crimson.sandbox.v1.PortMapping",
    ".crimson.sandbox.v1.ContainerSpec",
    ".crimson.sandbox.v1.KeyValue",
    ".crimson.sandbox.v1.Mount",
    ".crimson.sandbox.v1.Device",
    ".crimson.sandbox.v1.Resources",
    ".crimson.sandbox.v1.Security",
    ".crimson.sandbox.v1.SeccompProfile",
    ".crimson.sandbox.v1.AppArmorProfile",
    ".crimson.sandbox.v1.PathList",
];

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "crimson/daemon/v1/daemon.proto",
        "crimson/image/v1/image.proto",
        "crimson/storage/v1/storage.proto",
        "crimson/sandbox/v1/sandbox.proto",
        "crimson/network/v1/network.proto",
    ];
    let paths: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let mut builder = tonic_prost_build::configure();
    for record in SANDBOX_RECORDS {
        builder = builder.type_attribute(record, "#[derive(serde::Serialize, serde::Deserialize)]");
    }
    builder
        // Layer data passes through without copies.
        .bytes(".crimson.storage.v1.PutLayerChunk")
        .bytes(".crimson.sandbox.v1.StreamInput")
        .bytes(".crimson.sandbox.v1.StreamOutput")
        .bytes(".crimson.network.v1.PortForwardInput")
        .bytes(".crimson.network.v1.PortForwardOutput")
        .compile_protos(&paths, &[root])
        .expect("compiling proto/ (is protoc installed? Debian: protobuf-compiler)");
}
