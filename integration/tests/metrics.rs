//! The node's Prometheus endpoint: one scrape of the front door covers the five daemons (each
//! sample labelled with its daemon), every CRI and internal RPC is counted by code with its
//! latency, the exposition is valid (each family described once), and a daemon that is down
//! shows as `crimson_daemon_up 0` without failing the scrape; pulls, objects by state, starts
//! and start-up reconciliation are counted.

use std::collections::HashMap;

use crimson_config::Daemon;
use crimson_integration::{
    pods::{PodEnv, tear_down},
    require_root,
    stack::StackOptions,
};
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over the endpoint's unix socket: (status line, body).
async fn scrape(socket: &std::path::Path) -> (String, String) {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The families an exposition describes (`# TYPE`).
fn families(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// Every `crimson_*` metric the Grafana dashboard's queries use.
fn dashboard_metrics() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/crimson-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("crimson_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.push(name);
            }
        }
    }
    names
}

/// Sample values by their full name with labels, after checking each family is described
/// once and every sample belongs to a described family.
fn samples(exposition: &str) -> HashMap<String, f64> {
    let mut typed = HashMap::new();
    let mut samples = HashMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "second TYPE for {name}"
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| typed.contains_key(*f)))
                .unwrap_or(name);
            assert!(typed.contains_key(family), "{name} has no TYPE before it");
            assert!(
                samples
                    .insert(series.to_string(), value.parse::<f64>().unwrap())
                    .is_none(),
                "{series} twice"
            );
        }
    }
    samples
}

fn up(samples: &HashMap<String, f64>, daemon: &str) -> f64 {
    samples[&format!("crimson_daemon_up{{daemon=\"{daemon}\"}}")]
}

#[tokio::test(flavor = "multi_thread")]
async fn one_scrape_covers_the_node_and_survives_a_daemon_down() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("metrics.sock");
    let env = PodEnv::start_with(
        false,
        StackOptions {
            metrics_address: Some(socket.display().to_string()),
            ..Default::default()
        },
    )
    .await;
    let (pod_id, container_id) = env
        .start_sleeper(env.stack.runtime(), "metrics")
        .await
        .unwrap();
    let missing = env
        .stack
        .runtime()
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: "no-such-pod".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let exiting = env.pod_config("exits");
    let exiting_id = env.run_pod(&exiting).await;
    let exit_3 = env.container_config("exit-3", &["sh", "-c", "exit 3"]);
    assert_eq!(
        env.output_of(&exiting_id, &exiting, "exit-3", exit_3)
            .await
            .0,
        3
    );

    let absent = format!("{}/no-such-image:1", env.registry.address);
    assert_eq!(
        env.stack.pull(&absent).await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    let (status, body) = scrape(&socket).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let found = samples(&body);
    for daemon in ["cri", "image", "storage", "sandbox", "network"] {
        assert_eq!(up(&found, daemon), 1.0, "{daemon} is up");
        assert!(
            found.contains_key(&format!(
                "crimson_daemon_start_time_seconds{{daemon=\"{daemon}\"}}"
            )),
            "{daemon} reports its start"
        );
    }
    let calls = |daemon: &str, service: &str, method: &str, code: &str| {
        found
            .get(&format!(
                "crimson_rpc_requests_total{{daemon=\"{daemon}\",service=\"{service}\",method=\"{method}\",code=\"{code}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    let runtime = "runtime.v1.RuntimeService";
    assert!(
        calls("cri", runtime, "RunPodSandbox", "OK") >= 1.0,
        "{body}"
    );
    assert!(
        calls("cri", runtime, "PodSandboxStatus", "NotFound") >= 1.0,
        "{body}"
    );
    assert!(calls("sandbox", "crimson.sandbox.v1.Sandbox", "RunPod", "OK") >= 1.0);
    assert!(calls("network", "crimson.network.v1.Network", "SetUpPod", "OK") >= 1.0);
    assert!(
        calls(
            "storage",
            "crimson.storage.v1.Storage",
            "CreateRootfs",
            "OK"
        ) >= 1.0
    );
    let latency = format!(
        "crimson_rpc_request_duration_seconds_count{{daemon=\"cri\",service=\"{runtime}\",method=\"RunPodSandbox\"}}"
    );
    assert!(found[&latency] >= 1.0);
    assert_eq!(
        found["crimson_objects{daemon=\"network\",kind=\"attachments\",state=\"\"}"],
        2.0
    );
    let objects = |kind: &str, state: &str| {
        found[&format!("crimson_objects{{daemon=\"sandbox\",kind=\"{kind}\",state=\"{state}\"}}")]
    };
    assert_eq!(objects("pods", "ready"), 2.0);
    assert_eq!(objects("pods", "notready"), 0.0);
    assert_eq!(objects("containers", "running"), 1.0, "{body}");
    assert_eq!(objects("containers", "exited"), 1.0);
    assert!(found["crimson_object_bytes{daemon=\"storage\",kind=\"layers\"}"] > 0.0);
    assert!(found["crimson_object_bytes{daemon=\"image\",kind=\"images\"}"] > 0.0);
    assert_eq!(found["crimson_daemon_starts{daemon=\"sandbox\"}"], 1.0);
    assert!(found["crimson_image_pulls_total{daemon=\"image\",outcome=\"ok\"}"] >= 1.0);
    assert_eq!(
        found["crimson_image_pulls_total{daemon=\"image\",outcome=\"not_found\"}"],
        1.0
    );
    assert!(found["crimson_image_pull_bytes_total{daemon=\"image\"}"] > 0.0);
    assert!(
        found["crimson_operations_total{daemon=\"storage\",operation=\"layer_unpack\",outcome=\"ok\"}"]
            >= 1.0
    );
    let operations = |daemon: &str, operation: &str| {
        found
            .get(&format!(
                "crimson_operations_total{{daemon=\"{daemon}\",operation=\"{operation}\",outcome=\"ok\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    assert!(operations("network", "cni_add") >= 2.0, "{body}");
    assert!(operations("sandbox", "oci_runtime_start") >= 2.0, "{body}");
    assert!(operations("sandbox", "conmon_create") >= 2.0, "{body}");
    assert!(found["crimson_container_exits_total{daemon=\"sandbox\",code=\"3\"}"] >= 1.0);
    assert!(found["crimson_objects{daemon=\"image\",kind=\"images\",state=\"\"}"] >= 1.0);

    // A daemon down: the scrape still answers, saying so. A pod started meanwhile waits for
    // it and gives up, which the waits show.
    env.stack.kill(Daemon::Network);
    let refused = env
        .stack
        .runtime()
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(env.pod_config("waits")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    let (status, body) = scrape(&socket).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let found = samples(&body);
    assert_eq!(up(&found, "network"), 0.0);
    assert_eq!(up(&found, "sandbox"), 1.0);
    assert!(
        !body.contains("daemon=\"network\",kind"),
        "nothing stale of the dead daemon"
    );
    assert!(found["crimson_peer_unavailable_total{daemon=\"sandbox\",peer=\"network\"}"] >= 1.0);

    env.stack.start_daemon(Daemon::Network).await;
    let found = samples(&scrape(&socket).await.1);
    assert_eq!(up(&found, "network"), 1.0);
    assert_eq!(found["crimson_daemon_starts{daemon=\"network\"}"], 2.0);

    // A restarted storage mounts the root filesystems again, which reconciliation reports.
    env.stack.kill(Daemon::Storage);
    env.stack.start_daemon(Daemon::Storage).await;
    let (_, body) = scrape(&socket).await;
    let found = samples(&body);
    assert!(
        found["crimson_reconciled_objects_total{daemon=\"storage\",kind=\"rootfs\",action=\"remounted\"}"]
            >= 1.0,
        "{body}"
    );

    // Every metric the Grafana dashboard queries is in the exposition.
    let described = families(&body);
    let queried = dashboard_metrics();
    assert!(queried.len() >= 8, "{queried:?}");
    for name in queried {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            described.iter().any(|f| f == family),
            "the dashboard queries {name}, which is not exposed"
        );
    }
    tear_down(env.stack.runtime(), pod_id, container_id)
        .await
        .unwrap();
}
