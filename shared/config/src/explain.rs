//! Where each effective setting comes from, for `crimsonctl config`.

use toml::{Table, Value};

use crate::{Config, load::Layer};

/// One effective setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Dotted key, e.g. `image.registries_conf`.
    pub key: String,
    /// Its value as TOML writes it.
    pub value: String,
    /// The file that set it last, `command line`, or `default`.
    pub origin: String,
}

/// Every setting of `config` (unset optional ones left out), each with the last of `layers`
/// that sets it.
pub(crate) fn settings(config: &Config, layers: &[Layer]) -> Vec<Setting> {
    let effective = Value::try_from(config).unwrap_or_else(|_| Value::Table(Table::new()));
    let mut leaves = Vec::new();
    flatten("", &effective, &mut leaves);
    leaves
        .into_iter()
        .map(|(key, value)| {
            let origin = layers
                .iter()
                .rev()
                .find(|layer| sets(&layer.table, &key))
                .map_or_else(|| "default".to_string(), |layer| layer.origin.clone());
            Setting {
                key,
                value: value.to_string(),
                origin,
            }
        })
        .collect()
}

/// (dotted key, value) of every non-table value under `value`.
fn flatten(prefix: &str, value: &Value, leaves: &mut Vec<(String, Value)>) {
    match value {
        Value::Table(table) => {
            for (key, value) in table {
                let dotted = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&dotted, value, leaves);
            }
        }
        leaf => leaves.push((prefix.to_string(), leaf.clone())),
    }
}

/// Whether `table` sets dotted `key` (or a table above it wholesale, as an inline value).
fn sets(table: &Table, key: &str) -> bool {
    let mut current = table;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        match current.get(part) {
            Some(Value::Table(inner)) if parts.peek().is_some() => current = inner,
            Some(_) => return true,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::{CommonArgs, Daemon};

    #[test]
    fn each_setting_names_the_layer_that_set_it_last() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("crimson.toml");
        std::fs::write(&main, "state_root = \"/a\"\n[log]\nlevel = \"debug\"\n").unwrap();
        std::fs::create_dir(dir.path().join("crimson.d")).unwrap();
        let drop_in = dir.path().join("crimson.d/10-log.toml");
        std::fs::write(&drop_in, "[log]\nlevel = \"warn\"\n").unwrap();
        let args = CommonArgs {
            config: Some(main.clone()),
            run_root: Some("/run/x".into()),
            ..Default::default()
        };

        let (_, settings) = args.load_explained(Daemon::Cri).unwrap();
        let find = |key: &str| settings.iter().find(|s| s.key == key).unwrap().clone();

        assert_eq!(find("state_root").value, "\"/a\"");
        assert_eq!(find("state_root").origin, main.display().to_string());
        assert_eq!(find("log.level").value, "\"warn\"");
        assert_eq!(find("log.level").origin, drop_in.display().to_string());
        assert_eq!(find("run_root").origin, "command line");
        assert_eq!(find("log.format").origin, "default");
        assert_eq!(find("network.cni_bin_dirs").origin, "default");
    }
}
