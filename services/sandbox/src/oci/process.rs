//! The container process: what to run (CRI command/args against the image's Entrypoint/Cmd,
//! as Kubernetes defines it), its environment and working directory.

use crimson_api::sandbox::v1::ContainerSpec;

use crate::{Result, SandboxError};

/// The parts of an image config a container process uses.
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, `NAME=value` each.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User`: name or uid, with an optional `:group`.
    pub user: String,
    /// `StopSignal`.
    pub stop_signal: String,
}

impl ImageDefaults {
    /// Reads them from a raw OCI image config.
    pub fn from_config_json(raw: &[u8]) -> Self {
        let Ok(config) = serde_json::from_slice::<oci_spec::image::ImageConfiguration>(raw) else {
            return Self::default();
        };
        let Some(c) = config.config() else {
            return Self::default();
        };
        Self {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            stop_signal: c.stop_signal().clone().unwrap_or_default(),
        }
    }
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// argv: `command` replaces the image's Entrypoint (and drops its Cmd); `args` replace Cmd.
pub fn argv(spec: &ContainerSpec, image: &ImageDefaults) -> Result<Vec<String>> {
    let argv: Vec<String> = match (spec.command.is_empty(), spec.args.is_empty()) {
        (false, _) => spec.command.iter().chain(&spec.args).cloned().collect(),
        (true, false) => image.entrypoint.iter().chain(&spec.args).cloned().collect(),
        (true, true) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    };
    if argv.is_empty() {
        return Err(SandboxError::InvalidArgument(
            "no command: neither the container nor its image specifies one".into(),
        ));
    }
    Ok(argv)
}

/// The image's environment, overridden by the container's, plus PATH and HOSTNAME when unset.
pub fn env(spec: &ContainerSpec, image: &ImageDefaults, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    };
    for entry in &image.env {
        set(entry.clone());
    }
    for kv in &spec.envs {
        set(format!("{}={}", kv.key, kv.value));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !hostname.is_empty() && !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// The container's working directory, else the image's, else `/`.
pub fn working_dir(spec: &ContainerSpec, image: &ImageDefaults) -> String {
    [&spec.working_dir, &image.working_dir]
        .into_iter()
        .find(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crimson_api::sandbox::v1::KeyValue;

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let spec = |command: &[&str], args: &[&str]| ContainerSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            argv(&spec(&[], &[]), &image()).unwrap(),
            ["/entry", "default"]
        );
        assert_eq!(argv(&spec(&[], &["x"]), &image()).unwrap(), ["/entry", "x"]);
        assert_eq!(
            argv(&spec(&["/bin/sh"], &[]), &image()).unwrap(),
            ["/bin/sh"]
        );
        assert_eq!(
            argv(&spec(&["/bin/sh"], &["-c", "true"]), &image()).unwrap(),
            ["/bin/sh", "-c", "true"]
        );
        assert!(argv(&spec(&[], &[]), &ImageDefaults::default()).is_err());
    }

    #[test]
    fn container_env_overrides_the_image() {
        let spec = ContainerSpec {
            envs: vec![
                KeyValue {
                    key: "A".into(),
                    value: "pod".into(),
                },
                KeyValue {
                    key: "B".into(),
                    value: "1".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            env(&spec, &image(), "web"),
            ["PATH=/bin", "A=pod", "B=1", "HOSTNAME=web"]
        );
        assert!(
            env(&ContainerSpec::default(), &ImageDefaults::default(), "")
                .iter()
                .any(|e| e.starts_with("PATH="))
        );
    }
}
