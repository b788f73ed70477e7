//! `inspect pod|container ID`: what every daemon holds about one pod or container, side by
//! side (a daemon that cannot answer shows its error in its place).

use std::process::ExitCode;

use anyhow::bail;
use crimson_api::{
    image::v1::{GetImageRequest, images_client::ImagesClient},
    network::v1::{GetPodRequest, network_client::NetworkClient},
    sandbox::v1::{
        Container, ContainerRef, ContainerState, ListContainersRequest, ListPodsRequest, Pod,
        PodState, sandbox_client::SandboxClient,
    },
    storage::v1::{ListRootfsRequest, RootfsUsageRequest, storage_client::StorageClient},
};
use crimson_config::{Config, Daemon};
use serde_json::{Value, json};
use tonic::transport::Channel;

/// What `inspect` looks at.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// A pod sandbox.
    Pod,
    /// A container.
    Container,
}

/// How `inspect` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    /// One JSON document.
    Json,
    /// `key.path  value` lines.
    Table,
}

fn channel(config: &Config, daemon: Daemon) -> Channel {
    crimson_rpc::connect_unix(config.socket(daemon))
}

/// A daemon's answer, or its error in its place.
fn answer<T: serde::Serialize>(result: Result<T, tonic::Status>) -> Value {
    match result {
        Ok(value) => serde_json::to_value(value).unwrap_or(Value::Null),
        Err(status) => json!({ "error": format!("{:?}: {}", status.code(), status.message()) }),
    }
}

/// `crimsonctl inspect`.
pub async fn inspect(
    config: &Config,
    kind: Kind,
    id: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let report = match kind {
        Kind::Pod => pod_report(config, id).await?,
        Kind::Container => container_report(config, id).await?,
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => {
            let mut rows = Vec::new();
            flatten("", &report, &mut rows);
            let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
            for (key, value) in rows {
                println!("{key:<width$}  {value}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn pod_report(config: &Config, prefix: &str) -> anyhow::Result<Value> {
    let mut sandbox = SandboxClient::new(channel(config, Daemon::Sandbox));
    let pods = sandbox
        .list_pods(ListPodsRequest {
            id: prefix.to_string(),
            include_unfinished: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .pods;
    let pod = unique(pods, prefix, "pod", |p: &Pod| &p.id)?;
    let containers = sandbox
        .list_containers(ListContainersRequest {
            pod_id: pod.id.clone(),
            include_internal: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .containers;
    let network = if pod.netns_path.is_empty() {
        json!("host network")
    } else {
        let attachment = NetworkClient::new(channel(config, Daemon::Network))
            .get_pod(GetPodRequest {
                pod_id: pod.id.clone(),
            })
            .await
            .map(|a| a.into_inner());
        let mut network = answer(attachment);
        parse_embedded_json(&mut network, &["cni_result_json", "port_mappings_json"]);
        network
    };
    let mut record = answer(Ok::<_, tonic::Status>(&pod));
    name_state(
        &mut record,
        PodState::try_from(pod.state).map(|s| s.as_str_name()),
    );
    Ok(json!({
        "sandbox": record,
        "containers": containers
            .iter()
            .map(|c| json!({
                "id": c.id,
                "name": c.spec.as_ref().map(|s| s.name.clone()),
                "state": ContainerState::try_from(c.state).map(|s| s.as_str_name()).ok(),
                "pod_infra": c.id == pod.infra_container_id,
            }))
            .collect::<Vec<_>>(),
        "network": network,
    }))
}

async fn container_report(config: &Config, prefix: &str) -> anyhow::Result<Value> {
    let mut sandbox = SandboxClient::new(channel(config, Daemon::Sandbox));
    let containers = sandbox
        .list_containers(ListContainersRequest {
            id: prefix.to_string(),
            include_internal: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .containers;
    let listed = unique(containers, prefix, "container", |c: &Container| &c.id)?;
    // The full record (the list answers the same fields; this is the daemon's own view).
    let container = sandbox
        .get_container(ContainerRef {
            container_id: listed.id.clone(),
        })
        .await?
        .into_inner();
    let mut storage = StorageClient::new(channel(config, Daemon::Storage));
    let rootfs = storage.list_rootfs(ListRootfsRequest {}).await.map(|list| {
        let image_volumes = format!("{}-image-", container.id);
        let (own, volumes): (Vec<_>, Vec<_>) = list
            .into_inner()
            .rootfs
            .into_iter()
            .filter(|r| r.id == container.id || r.id.starts_with(&image_volumes))
            .partition(|r| r.id == container.id);
        json!({ "rootfs": own.first(), "image_volumes": volumes })
    });
    let mut storage_view = answer(rootfs);
    let usage = storage
        .rootfs_usage(RootfsUsageRequest {
            ids: vec![container.id.clone()],
        })
        .await
        .map(|u| {
            let u = u.into_inner().usages.pop().unwrap_or_default();
            json!({ "writable_path": u.writable_path, "used_bytes": u.used_bytes, "inodes_used": u.inodes_used })
        });
    if let Some(view) = storage_view.as_object_mut() {
        view.insert("writable_layer".into(), answer(usage));
    }
    let image = ImagesClient::new(channel(config, Daemon::Image))
        .get_image(GetImageRequest {
            reference: container.image_id.clone(),
        })
        .await
        .map(|image| {
            let image = image.into_inner();
            json!({
                "id": image.id,
                "repo_tags": image.repo_tags,
                "repo_digests": image.repo_digests,
                "layers_base_first": image.chain_ids,
                "size": image.size,
            })
        });
    let mut record = answer(Ok::<_, tonic::Status>(&container));
    name_state(
        &mut record,
        ContainerState::try_from(container.state).map(|s| s.as_str_name()),
    );
    Ok(json!({
        "sandbox": record,
        "storage": storage_view,
        "image": answer(image),
    }))
}

/// The one item whose id starts with `prefix`.
fn unique<T>(
    items: Vec<T>,
    prefix: &str,
    what: &str,
    id: impl Fn(&T) -> &String,
) -> anyhow::Result<T> {
    let exact = items.iter().position(|item| id(item) == prefix);
    let mut items = items;
    match (exact, items.len()) {
        (Some(at), _) => Ok(items.swap_remove(at)),
        (None, 1) => Ok(items.remove(0)),
        (None, 0) => bail!("no {what} {prefix:?}"),
        (None, n) => bail!("{prefix:?} names {n} {what}s; give more of the id"),
    }
}

/// The enum number in `record.state` as its name.
fn name_state<E>(record: &mut Value, name: Result<&str, E>) {
    if let (Some(object), Ok(name)) = (record.as_object_mut(), name) {
        object.insert("state".into(), json!(name));
    }
}

/// Fields holding JSON text, parsed in place (their `_json` suffix dropped).
fn parse_embedded_json(view: &mut Value, fields: &[&str]) {
    let Some(object) = view.as_object_mut() else {
        return;
    };
    for field in fields {
        if let Some(Value::String(text)) = object.remove(*field) {
            let parsed = serde_json::from_str(&text).unwrap_or(Value::String(text));
            object.insert(field.trim_end_matches("_json").to_string(), parsed);
        }
    }
}

/// (dotted key, value) of every leaf under `value`; arrays index their items.
fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    let key = |part: &str| {
        if prefix.is_empty() {
            part.to_string()
        } else {
            format!("{prefix}.{part}")
        }
    };
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (name, inner) in object {
                flatten(&key(name), inner, rows);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, inner) in items.iter().enumerate() {
                flatten(&key(&index.to_string()), inner, rows);
            }
        }
        Value::String(text) => rows.push((prefix.to_string(), text.clone())),
        other => rows.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_flattens_into_dotted_rows() {
        let mut rows = Vec::new();
        flatten(
            "",
            &json!({ "sandbox": { "id": "c1", "groups": [1, 2], "labels": {} }, "image": null }),
            &mut rows,
        );
        let rows: Vec<String> = rows.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            rows,
            [
                "image=null",
                "sandbox.groups.0=1",
                "sandbox.groups.1=2",
                "sandbox.id=c1",
                "sandbox.labels={}"
            ]
        );
    }

    #[test]
    fn an_exact_id_wins_over_longer_ids_it_prefixes() {
        let ids = vec!["ab".to_string(), "abc".to_string()];
        assert_eq!(unique(ids.clone(), "ab", "pod", |s| s).unwrap(), "ab");
        assert!(unique(ids.clone(), "a", "pod", |s| s).is_err());
        assert!(unique(Vec::<String>::new(), "x", "pod", |s| s).is_err());
    }

    #[test]
    fn embedded_json_is_parsed_in_place() {
        let mut view =
            json!({ "cni_result_json": "{\"ips\":[]}", "port_mappings_json": "not json" });
        parse_embedded_json(&mut view, &["cni_result_json", "port_mappings_json"]);
        assert_eq!(
            view,
            json!({ "cni_result": { "ips": [] }, "port_mappings": "not json" })
        );
    }
}
