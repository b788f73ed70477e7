//! Finding the CNI network to use: the first valid configuration file in the conf dir, by
//! name, as CRI-O and containerd do (`*.conflist`, `*.conf`, `*.json`), whose plugins exist.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A usable network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniNetwork {
    /// `name` from the file.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Plugin types, in chain order.
    pub plugin_types: Vec<String>,
}

#[derive(Deserialize)]
struct ConfFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    plugins: Option<Vec<PluginConf>>,
    #[serde(default, rename = "type")]
    plugin_type: Option<String>,
}

#[derive(Deserialize)]
struct PluginConf {
    #[serde(rename = "type")]
    plugin_type: String,
}

/// The network to use, or why there is none.
pub fn find_network(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Result<CniNetwork, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_dir)
        .map_err(|e| format!("reading CNI config dir {}: {e}", conf_dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "conflist" | "conf" | "json"))
        })
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for path in files {
        match load(&path, bin_dirs) {
            Ok(network) => return Ok(network),
            Err(problem) => problems.push(format!("{}: {problem}", path.display())),
        }
    }
    if problems.is_empty() {
        Err(format!(
            "no CNI configuration file in {}",
            conf_dir.display()
        ))
    } else {
        Err(problems.join("; "))
    }
}

fn load(path: &Path, bin_dirs: &[PathBuf]) -> Result<CniNetwork, String> {
    let raw = std::fs::read(path).map_err(|e| e.to_string())?;
    let conf: ConfFile = serde_json::from_slice(&raw).map_err(|e| format!("invalid JSON: {e}"))?;
    if conf.name.is_empty() {
        return Err("no network name".into());
    }
    let plugin_types: Vec<String> = match (conf.plugins, conf.plugin_type) {
        (Some(plugins), _) => plugins.into_iter().map(|p| p.plugin_type).collect(),
        (None, Some(plugin_type)) => vec![plugin_type],
        (None, None) => Vec::new(),
    };
    if plugin_types.is_empty() {
        return Err("no plugins".into());
    }
    for plugin in &plugin_types {
        if !bin_dirs.iter().any(|dir| dir.join(plugin).is_file()) {
            return Err(format!("plugin {plugin:?} not found in {bin_dirs:?}"));
        }
    }
    Ok(CniNetwork {
        name: conf.name,
        path: path.to_path_buf(),
        plugin_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_valid_file_by_name_and_needs_its_plugins() {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("bridge"), b"").unwrap();
        let bins = [bin.path().to_path_buf()];
        assert!(
            find_network(conf.path(), &bins)
                .unwrap_err()
                .contains("no CNI configuration")
        );

        std::fs::write(conf.path().join("05-broken.conflist"), b"{").unwrap();
        std::fs::write(
            conf.path().join("10-missing.conflist"),
            br#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuchplugin"}]}"#,
        )
        .unwrap();
        let err = find_network(conf.path(), &bins).unwrap_err();
        assert!(
            err.contains("nosuchplugin") && err.contains("invalid JSON"),
            "{err}"
        );

        std::fs::write(
            conf.path().join("20-pods.conflist"),
            br#"{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]}"#,
        )
        .unwrap();
        let network = find_network(conf.path(), &bins).unwrap();
        assert_eq!(
            (network.name.as_str(), network.plugin_types.len()),
            ("pods", 1)
        );
    }
}
