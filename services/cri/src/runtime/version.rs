//! Version: who answers the CRI.

use k8s_cri::v1::VersionResponse;

/// Runtime name reported to kubelet and crictl.
pub const RUNTIME_NAME: &str = "crimson";
/// Version of the kubelet runtime API this front door speaks (as every CRI runtime reports).
const KUBELET_API_VERSION: &str = "0.1.0";
/// The CRI API version.
const RUNTIME_API_VERSION: &str = "v1";

/// The Version answer.
pub fn version() -> VersionResponse {
    VersionResponse {
        version: KUBELET_API_VERSION.to_string(),
        runtime_name: RUNTIME_NAME.to_string(),
        runtime_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime_api_version: RUNTIME_API_VERSION.to_string(),
    }
}
