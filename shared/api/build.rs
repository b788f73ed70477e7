//! Compiles every internal `.proto` under `proto/` into client and server code, and generates
//! the `runtime.v1` RPCs cri-api v0.36 added to the CRI (see `src/cri.rs`).

use tonic_prost_build::manual::{Builder, Method, Service};

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
    ".crimson.sandbox.v1.IdMapping",
];

/// Messages `crimsonctl inspect` prints as JSON (besides the records above).
const INSPECTED: &[&str] = &[
    ".crimson.sandbox.v1.Pod",
    ".crimson.sandbox.v1.Container",
    ".crimson.network.v1.PodNetwork",
    ".crimson.storage.v1.RootfsInfo",
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
        builder = builder
            .type_attribute(record, "#[derive(serde::Serialize, serde::Deserialize)]")
            // Fields added later default when an older record lacks them.
            .message_attribute(record, "#[serde(default)]");
    }
    for shown in INSPECTED {
        builder = builder.type_attribute(shown, "#[derive(serde::Serialize)]");
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
    Builder::new().compile(&[
        cri_service("RuntimeService", CRI_RUNTIME_ADDITIONS),
        cri_service("ImageService", CRI_IMAGE_ADDITIONS),
    ]);
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let paths = format!(
        "{}{}",
        cri_paths(
            "RUNTIME_SERVICE_PATHS",
            "RuntimeService",
            CRI_RUNTIME_ADDITIONS
        ),
        cri_paths("IMAGE_SERVICE_PATHS", "ImageService", CRI_IMAGE_ADDITIONS),
    );
    std::fs::write(out_dir.join("cri_paths.rs"), paths).expect("writing cri_paths.rs");
}

/// `pub const NAME: [&str; N]` holding the request path of each of `methods`.
fn cri_paths(name: &str, service: &str, methods: &[(&str, bool)]) -> String {
    let paths: String = methods
        .iter()
        .map(|(rpc, _)| format!("    \"/runtime.v1.{service}/{rpc}\",\n"))
        .collect();
    format!(
        "/// Every path of the generated `runtime.v1.{service}` server.\n\
         pub const {name}: [&str; {}] = [\n{paths}];\n",
        methods.len()
    )
}

/// The `runtime.v1.RuntimeService` RPCs of cri-api v0.36 that k8s-cri 0.11 lacks, or whose
/// request it cannot read in full: (name, server-streaming).
const CRI_RUNTIME_ADDITIONS: &[(&str, bool)] = &[
    ("CreateContainer", false),
    ("StreamPodSandboxes", true),
    ("StreamContainers", true),
    ("StreamContainerStats", true),
    ("StreamPodSandboxStats", true),
    ("StreamPodSandboxMetrics", true),
    ("UpdatePodSandboxResources", false),
];

/// The same for `runtime.v1.ImageService`.
const CRI_IMAGE_ADDITIONS: &[(&str, bool)] = &[("StreamImages", true)];

/// A `runtime.v1` service with `methods`, whose messages live in `crate::cri`.
fn cri_service(name: &str, methods: &[(&str, bool)]) -> Service {
    let mut service = Service::builder().name(name).package("runtime.v1");
    for &(rpc, streaming) in methods {
        let mut method = Method::builder()
            .name(snake_case(rpc))
            .route_name(rpc)
            .input_type(format!("crate::cri::{rpc}Request"))
            .output_type(format!("crate::cri::{rpc}Response"))
            .codec_path("tonic_prost::ProstCodec");
        if streaming {
            method = method.server_streaming();
        }
        service = service.method(method.build());
    }
    service.build()
}

fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}
