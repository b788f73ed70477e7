//! crimsonctl on a node at work: pods, ps, logs, inspect (every daemon's view of a pod and a
//! container), config (each setting's origin) and check (orphans found, repaired through the
//! daemon holding them, the live pod untouched).

use crimson_api::{
    network::v1::{SetUpPodRequest, network_client::NetworkClient},
    storage::v1::{CreateRootfsRequest, ReleaseOwnerRequest},
};
use crimson_config::Daemon;
use crimson_integration::{
    image_builder::{LayerBuilder, Pusher, TestImage},
    pods::{PodEnv, tear_down},
    require_root,
};
use k8s_cri::v1 as cri;

/// (exit success, stdout, stderr) of `crimsonctl args` on `env`'s stack.
fn ctl(env: &PodEnv, args: &[&str]) -> (bool, String, String) {
    let output = env.stack.crimsonctl(args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_of(env: &PodEnv, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = ctl(env, args);
    assert!(ok, "crimsonctl {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_works_on_the_node_with_crimsonctl() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("ops");
    let pod_id = env.run_pod(&pod).await;
    let talker = env.container_config(
        "talker",
        &[
            "sh",
            "-c",
            "echo hello from crimson; echo second line; sleep 3600",
        ],
    );
    let id = env.run_container(&pod_id, &pod, talker).await;

    // pods, ps and logs, by id prefix as crictl takes them.
    let (ok, pods, _) = ctl(&env, &["pods"]);
    assert!(
        ok && pods.contains("ops") && pods.contains(&pod_id[..13]),
        "{pods}"
    );
    let (ok, ps, _) = ctl(&env, &["ps"]);
    assert!(
        ok && ps.contains("talker") && ps.contains("RUNNING"),
        "{ps}"
    );
    let mut logs = String::new();
    for _ in 0..100 {
        logs = ctl(&env, &["logs", &id[..10]]).1;
        if logs.lines().count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(logs, "hello from crimson\nsecond line\n");
    assert_eq!(ctl(&env, &["logs", "--tail", "1", &id]).1, "second line\n");
    let (ok, _, err) = ctl(&env, &["logs", "no-such-container"]);
    assert!(!ok && err.contains("no container"), "{err}");

    // inspect: the sandbox record, its storage and image, the pod's network.
    let container = json_of(&env, &["inspect", "container", &id[..12]]);
    let record = &container["sandbox"];
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["state"], "RUNNING");
    assert!(record["pid"].as_u64().unwrap() > 0, "{container:#}");
    assert!(record["conmon_pid"].as_u64().unwrap() > 0, "{container:#}");
    assert!(!record["cgroup_path"].as_str().unwrap().is_empty());
    let layers = &container["storage"]["rootfs"]["layers_top_first"];
    assert_eq!(layers.as_array().unwrap().len(), 1, "{container:#}");
    assert_eq!(container["image"]["layers_base_first"], *layers);
    assert!(container["storage"]["writable_layer"]["writable_path"].is_string());
    let pod_view = json_of(&env, &["inspect", "pod", &pod_id]);
    let ip = env.pod_ip(&pod_id).await;
    assert_eq!(pod_view["network"]["ips"][0], ip.as_str(), "{pod_view:#}");
    assert!(pod_view["network"]["cni_result"]["interfaces"].is_array());
    assert_eq!(pod_view["network"]["attached"], true);
    assert!(
        pod_view["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str() && c["name"] == "talker")
    );
    let (ok, table, _) = ctl(&env, &["inspect", "pod", &pod_id, "--output", "table"]);
    assert!(
        ok && table
            .lines()
            .any(|l| l.starts_with("network.ips.0") && l.ends_with(&ip))
    );

    // config: every setting with its origin.
    let config_file = env.stack.root().join("crimson.toml").display().to_string();
    let (ok, settings, _) = ctl(&env, &["config", "--log-format", "json"]);
    assert!(ok);
    let origin = |key: &str| {
        settings
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .and_then(|l| l.rsplit_once("# "))
            .map(|(_, origin)| origin.to_string())
            .unwrap_or_else(|| panic!("{key} not in\n{settings}"))
    };
    assert_eq!(origin("state_root"), config_file);
    assert_eq!(origin("log.format"), "command line");
    assert_eq!(origin("cri.stream_port"), "default");

    // check: a consistent node, then orphans in three daemons, repaired through each.
    let (ok, out, err) = ctl(&env, &["check"]);
    assert!(ok, "{out}{err}");
    let top = env.stack.top_chain_id(&env.busybox).await;
    env.stack
        .storage()
        .create_rootfs(CreateRootfsRequest {
            id: "orphan-rootfs".into(),
            top_chain_id: top,
            ..Default::default()
        })
        .await
        .unwrap();
    NetworkClient::new(crimson_rpc::connect_unix(env.stack.socket(Daemon::Network)))
        .set_up_pod(SetUpPodRequest {
            pod_id: "orphan-pod".into(),
            pod_name: "orphan".into(),
            pod_namespace: "default".into(),
            pod_uid: "orphan-uid".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let lonely = TestImage::with_layers(vec![
        LayerBuilder::new()
            .file("only-here", b"lost layer", 0o644)
            .build(),
    ]);
    Pusher::new(&env.registry.address, None)
        .push("lonely", "1", &lonely)
        .await;
    let lonely_ref = format!("{}/lonely:1", env.registry.address);
    env.stack.pull(&lonely_ref).await.unwrap();
    let lonely_id = env.stack.image_status(&lonely_ref).await.unwrap().id;
    env.stack
        .storage()
        .release_owner(ReleaseOwnerRequest {
            owner: lonely_id.clone(),
        })
        .await
        .unwrap();

    let (ok, report, _) = ctl(&env, &["check"]);
    assert!(!ok, "inconsistencies exit 1: {report}");
    for expected in ["orphan-rootfs", "orphan-pod", &lonely_id] {
        assert!(report.contains(expected), "{expected} not in\n{report}");
    }
    let (ok, repaired, err) = ctl(&env, &["check", "--repair"]);
    assert!(ok, "{repaired}{err}");
    let (ok, out, _) = ctl(&env, &["check"]);
    assert!(ok, "consistent after the repair: {out}");
    assert!(env.stack.image_status(&lonely_ref).await.is_none());
    assert!(!env.stack.run_dir().join("netns/orphan-pod").exists());

    // The live pod was left alone.
    assert_eq!(
        env.status(&id).await.state,
        cri::ContainerState::ContainerRunning as i32
    );
    let container = json_of(&env, &["inspect", "container", &id]);
    assert!(container["storage"]["rootfs"].is_object(), "{container:#}");

    tear_down(env.stack.runtime(), pod_id, id).await.unwrap();
}
