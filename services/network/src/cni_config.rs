//! Finding the CNI network to use: the first valid configuration file in the conf dir, by
//! name, as CRI-O and containerd do (`*.conflist`, `*.conf`, `*.json`), whose plugins exist.
//! A single-plugin `.conf` is turned into a one-plugin list.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// A usable network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CniNetwork {
    /// `name` from the file.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Plugin types, in chain order.
    pub plugin_types: Vec<String>,
    /// The configuration as a list: `{cniVersion, name, plugins: [...]}`.
    pub conflist: Value,
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
    let conf: Value = serde_json::from_slice(&raw).map_err(|e| format!("invalid JSON: {e}"))?;
    let name = conf["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err("no network name".into());
    }
    let conflist = match conf.get("plugins") {
        Some(_) => conf.clone(),
        None if conf.get("type").is_some() => {
            json!({"cniVersion": conf["cniVersion"].clone(), "name": name, "plugins": [conf.clone()]})
        }
        None => return Err("no plugins".into()),
    };
    let plugin_types: Vec<String> = conflist["plugins"]
        .as_array()
        .map(|plugins| {
            plugins
                .iter()
                .filter_map(|p| p["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if plugin_types.is_empty() {
        return Err("no plugins".into());
    }
    for plugin in &plugin_types {
        if find_plugin(bin_dirs, plugin).is_none() {
            return Err(format!("plugin {plugin:?} not found in {bin_dirs:?}"));
        }
    }
    Ok(CniNetwork {
        name,
        path: path.to_path_buf(),
        plugin_types,
        conflist,
    })
}

/// The plugin binary `plugin_type` in the first bin dir that has it.
pub fn find_plugin(bin_dirs: &[PathBuf], plugin_type: &str) -> Option<PathBuf> {
    if plugin_type.contains('/') {
        return None;
    }
    bin_dirs
        .iter()
        .map(|dir| dir.join(plugin_type))
        .find(|path| path.is_file())
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

    #[test]
    fn a_single_plugin_conf_becomes_a_list() {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("bridge"), b"").unwrap();
        std::fs::write(
            conf.path().join("10-one.conf"),
            br#"{"cniVersion":"0.4.0","name":"one","type":"bridge","bridge":"b0"}"#,
        )
        .unwrap();
        let network = find_network(conf.path(), &[bin.path().to_path_buf()]).unwrap();
        assert_eq!(network.conflist["plugins"][0]["bridge"], "b0");
        assert_eq!(network.conflist["cniVersion"], "0.4.0");
    }
}
