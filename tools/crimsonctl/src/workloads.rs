//! `pods`, `ps` and `logs`: the node's pods and containers through the front door, for
//! people without crictl.

use std::{io::Write, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use crimson_config::{Config, Daemon};
use k8s_cri::v1::{
    ContainerFilter, ContainerState, ContainerStatusRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxState, runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::Channel;

use crate::probe::since;

fn runtime(config: &Config) -> RuntimeServiceClient<Channel> {
    RuntimeServiceClient::new(crimson_rpc::connect_unix(config.socket(Daemon::Cri)))
}

/// The first 13 characters of an id, as crictl shows them.
fn short(id: &str) -> &str {
    &id[..id.len().min(13)]
}

/// `crimsonctl pods`.
pub async fn pods(config: &Config) -> anyhow::Result<ExitCode> {
    let mut pods = runtime(config)
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await?
        .into_inner()
        .items;
    pods.sort_by_key(|pod| std::cmp::Reverse(pod.created_at));
    println!(
        "{:<13}  {:<9}  {:<8}  {:<30}  {:<20}  {:<7}  RUNTIME",
        "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"
    );
    for pod in pods {
        let metadata = pod.metadata.unwrap_or_default();
        let state = match PodSandboxState::try_from(pod.state) {
            Ok(PodSandboxState::SandboxReady) => "Ready",
            _ => "NotReady",
        };
        println!(
            "{:<13}  {:<9}  {:<8}  {:<30}  {:<20}  {:<7}  {}",
            short(&pod.id),
            since(pod.created_at / 1_000_000_000),
            state,
            metadata.name,
            metadata.namespace,
            metadata.attempt,
            if pod.runtime_handler.is_empty() {
                "(default)"
            } else {
                &pod.runtime_handler
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `crimsonctl ps`: running containers, or all with `all`.
pub async fn ps(config: &Config, all: bool) -> anyhow::Result<ExitCode> {
    let filter = (!all).then(|| ContainerFilter {
        state: Some(k8s_cri::v1::ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    });
    let mut containers = runtime(config)
        .list_containers(ListContainersRequest { filter })
        .await?
        .into_inner()
        .containers;
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    println!(
        "{:<13}  {:<40}  {:<9}  {:<8}  {:<24}  {:<7}  POD ID",
        "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT"
    );
    for container in containers {
        let metadata = container.metadata.unwrap_or_default();
        let state = ContainerState::try_from(container.state).map_or("Unknown", |s| {
            s.as_str_name().trim_start_matches("CONTAINER_")
        });
        println!(
            "{:<13}  {:<40}  {:<9}  {:<8}  {:<24}  {:<7}  {}",
            short(&container.id),
            container.image.map(|i| i.image).unwrap_or_default(),
            since(container.created_at / 1_000_000_000),
            state,
            metadata.name,
            metadata.attempt,
            short(&container.pod_sandbox_id),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The one container whose id starts with `prefix`.
async fn resolve_container(config: &Config, prefix: &str) -> anyhow::Result<String> {
    let filter = ContainerFilter {
        id: prefix.to_string(),
        ..Default::default()
    };
    let found = runtime(config)
        .list_containers(ListContainersRequest {
            filter: Some(filter),
        })
        .await?
        .into_inner()
        .containers;
    match found.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => bail!("no container {prefix:?}"),
        _ => bail!(
            "{prefix:?} names {} containers; give more of the id",
            found.len()
        ),
    }
}

/// `crimsonctl logs`: the container's log, the last `tail` lines of it, and with `follow`
/// what it writes next until it exits.
pub async fn logs(
    config: &Config,
    container: &str,
    tail: Option<usize>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let id = resolve_container(config, container).await?;
    let client = runtime(config);
    let status = |mut client: RuntimeServiceClient<Channel>, id: String| async move {
        anyhow::Ok(
            client
                .container_status(ContainerStatusRequest {
                    container_id: id,
                    verbose: false,
                })
                .await?
                .into_inner()
                .status
                .context("the front door answered no status")?,
        )
    };
    let path = status(client.clone(), id.clone()).await?.log_path;
    let text = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    let lines = messages(&String::from_utf8_lossy(&text));
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = std::io::stdout().lock();
    for line in &lines[skip..] {
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut offset = text.len();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let running = status(client.clone(), id.clone()).await?.state
            == ContainerState::ContainerRunning as i32;
        let text = std::fs::read(&path).unwrap_or_default();
        if text.len() < offset {
            // Rotated (ReopenContainerLog): the new file starts from the beginning.
            offset = 0;
        }
        let mut out = std::io::stdout().lock();
        for line in messages(&String::from_utf8_lossy(&text[offset..])) {
            out.write_all(line.as_bytes())?;
        }
        out.flush()?;
        offset = text.len();
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// The messages of CRI log lines (`<time> <stream> <P|F> <message>`): a full line (`F`) ends
/// with a newline, a partial one (`P`) continues in the next.
fn messages(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(4, ' ');
            let (_time, _stream, tag) = (fields.next()?, fields.next()?, fields.next()?);
            let message = fields.next().unwrap_or("");
            Some(if tag == "P" {
                message.to_string()
            } else {
                format!("{message}\n")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_lose_their_prefix_and_partial_lines_join() {
        let text = "2026-01-01T00:00:00.1Z stdout F hello\n\
                    2026-01-01T00:00:00.2Z stderr P par\n\
                    2026-01-01T00:00:00.3Z stderr F tial\n\
                    2026-01-01T00:00:00.4Z stdout F \n";
        assert_eq!(messages(text).concat(), "hello\npartial\n\n");
    }
}
