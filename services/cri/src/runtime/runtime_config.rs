//! RuntimeConfig: what kubelet must match (the cgroup driver).

use k8s_cri::v1::{CgroupDriver, LinuxRuntimeConfiguration, RuntimeConfigResponse};

/// Crimson drives cgroups through cgroupfs (these machines have no systemd).
pub fn runtime_config() -> RuntimeConfigResponse {
    RuntimeConfigResponse {
        linux: Some(LinuxRuntimeConfiguration {
            cgroup_driver: CgroupDriver::Cgroupfs as i32,
        }),
    }
}
