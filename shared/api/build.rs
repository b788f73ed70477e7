//! Compiles every internal `.proto` under `proto/` into client and server code.

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
    tonic_prost_build::configure()
        // Layer data passes through without copies.
        .bytes(".crimson.storage.v1.PutLayerChunk")
        // crimson-sandbox keeps pod and container specs in its database as they arrive.
        .type_attribute(
            ".crimson.sandbox.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .compile_protos(&paths, &[root])
        .expect("compiling proto/ (is protoc installed? Debian: protobuf-compiler)");
}
