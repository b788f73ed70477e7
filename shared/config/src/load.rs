use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::{Config, ConfigError, Result};

/// Where the main config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/crimson/crimson.toml";

/// One source of settings: a file, or the command line.
pub(crate) struct Layer {
    /// The file's path, or `command line`.
    pub origin: String,
    /// What it sets.
    pub table: Table,
}

/// Reads the main file (optional unless named explicitly) and its `crimson.d/*.toml` drop-ins,
/// merges them table by table and returns the typed result.
pub fn load_layers(explicit: Option<&Path>) -> Result<Config> {
    let (main, layers) = read_layers(explicit)?;
    typed(&main, &layers)
}

/// The main file (when there is one) and its drop-ins, in the order they apply.
pub(crate) fn read_layers(explicit: Option<&Path>) -> Result<(PathBuf, Vec<Layer>)> {
    let main = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH), Path::to_path_buf);
    let mut files = Vec::new();
    match std::fs::read_to_string(&main) {
        Ok(text) => files.push((main.clone(), text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
        Err(source) => return Err(ConfigError::Read { path: main, source }),
    }
    for drop_in in drop_ins(&main)? {
        let text = std::fs::read_to_string(&drop_in).map_err(|source| ConfigError::Read {
            path: drop_in.clone(),
            source,
        })?;
        files.push((drop_in, text));
    }
    let layers = files
        .into_iter()
        .map(|(path, text)| {
            Ok(Layer {
                table: parse(&path, &text)?,
                origin: path.display().to_string(),
            })
        })
        .collect::<Result<_>>()?;
    Ok((main, layers))
}

/// `layers` merged in order over the defaults; errors name `main`.
pub(crate) fn typed(main: &Path, layers: &[Layer]) -> Result<Config> {
    let mut merged = Table::new();
    for layer in layers {
        merge(&mut merged, layer.table.clone());
    }
    Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: main.to_path_buf(),
            message: e.to_string(),
        })
}

fn parse(path: &Path, text: &str) -> Result<Table> {
    text.parse::<Table>().map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `crimson.d/*.toml` beside the main file, sorted by name.
fn drop_ins(main: &Path) -> Result<Vec<PathBuf>> {
    let dir = main.parent().unwrap_or(Path::new(".")).join("crimson.d");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::Read { path: dir, source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Deep merge: tables merge key by key, anything else in `overlay` replaces `base`.
fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_as_toml_loads_back_to_itself() {
        let mut config = Config {
            state_root: "/s".into(),
            ..Default::default()
        };
        config.sandbox.pause_image = "registry/pause:1".into();
        config.sandbox.runtimes.insert(
            "alt".into(),
            crate::RuntimeHandler {
                runtime_path: "/usr/sbin/runc".into(),
            },
        );
        config.image.global_auth_file = Some("/auth.json".into());
        config.storage.driver = crate::StorageDriver::Vfs;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crimson.toml");
        std::fs::write(&file, config.to_toml().unwrap()).unwrap();
        let loaded = load_layers(Some(&file)).unwrap();
        assert_eq!(loaded.to_toml().unwrap(), config.to_toml().unwrap());
        assert_eq!(
            loaded.sandbox.runtimes["alt"].runtime_path,
            std::path::Path::new("/usr/sbin/runc")
        );
        let minimal = config.to_toml_without_defaults().unwrap();
        assert!(!minimal.contains("[network]"), "{minimal}");
        std::fs::write(&file, &minimal).unwrap();
        let loaded = load_layers(Some(&file)).unwrap();
        assert_eq!(loaded.to_toml().unwrap(), config.to_toml().unwrap());
    }

    #[test]
    fn drop_ins_override_main_file_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("crimson.toml");
        std::fs::write(
            &main,
            "state_root = \"/a\"\n[storage]\ndriver = \"vfs\"\n[image]\nregistries_conf = \"/r\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("crimson.d")).unwrap();
        std::fs::write(
            dir.path().join("crimson.d/20-b.toml"),
            "state_root = \"/c\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("crimson.d/10-a.toml"),
            "state_root = \"/b\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("crimson.d/ignored.conf"),
            "state_root = 1\n",
        )
        .unwrap();

        let config = load_layers(Some(&main)).unwrap();

        assert_eq!(config.state_root, PathBuf::from("/c"));
        assert_eq!(config.storage.driver, crate::StorageDriver::Vfs);
        assert_eq!(config.image.registries_conf, PathBuf::from("/r"));
    }

    #[test]
    fn missing_default_file_gives_defaults_but_missing_explicit_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_layers(Some(&dir.path().join("nope.toml"))).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("crimson.toml");
        std::fs::write(&main, "[storage]\ndriverr = \"vfs\"\n").unwrap();
        let err = load_layers(Some(&main)).unwrap_err().to_string();
        assert!(err.contains("driverr"), "{err}");
    }
}
