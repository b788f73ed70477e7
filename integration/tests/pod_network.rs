//! Pod networking through the real bridge, host-local, portmap and loopback plugins: the pod
//! IP and a hostPort reach busybox httpd, dual stack, host networking, DNS and hostname.

use crimson_integration::{
    eventually, free_port,
    pods::{PodEnv, http_get, lines_of},
    require_root,
};
use k8s_cri::v1::{DnsConfig, NamespaceMode, PortMapping, StopPodSandboxRequest};

const SERVE: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p /www && echo served-by-crimson > /www/index.html && exec httpd -f -p 80 -h /www",
];

#[tokio::test(flavor = "multi_thread")]
async fn httpd_is_reached_at_the_pod_ip_and_through_a_host_port() {
    require_root!();
    let env = PodEnv::start(false).await;
    let host_port = free_port() as i32;
    let mut pod = env.pod_config("httpd");
    pod.port_mappings = vec![
        PortMapping {
            protocol: 0,
            container_port: 80,
            host_port,
            host_ip: String::new(),
        },
        // kubelet also lists container ports without a hostPort: no mapping, no failure.
        PortMapping {
            protocol: 0,
            container_port: 8080,
            host_port: 0,
            host_ip: String::new(),
        },
    ];
    let pod_id = env.run_pod(&pod).await;
    env.run_container(&pod_id, &pod, env.container_config("httpd", SERVE))
        .await;
    let status = env.pod_status(&pod_id).await;
    let ip = status.network.unwrap().ip;

    let body = eventually(30, "httpd at the pod IP", || async {
        http_get(&format!("{ip}:80"))
    })
    .await;
    assert_eq!(body.trim(), "served-by-crimson");
    let via_host_port = eventually(30, "httpd through the hostPort", || async {
        http_get(&format!("127.0.0.1:{host_port}"))
    })
    .await;
    assert_eq!(via_host_port.trim(), "served-by-crimson");

    let mut runtime = env.stack.runtime();
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    assert!(
        http_get(&format!("127.0.0.1:{host_port}")).is_none(),
        "the port mapping is gone after StopPodSandbox"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dual_stack_pod_has_an_ipv6_address_too() {
    require_root!();
    let env = PodEnv::start(true).await;
    let pod = env.pod_config("dual");
    let pod_id = env.run_pod(&pod).await;
    let network = env.pod_status(&pod_id).await.network.unwrap();
    assert!(!network.ip.contains(':'), "IPv4 first: {}", network.ip);
    assert_eq!(network.additional_ips.len(), 1);
    assert!(
        network.additional_ips[0].ip.contains(':'),
        "{:?}",
        network.additional_ips
    );

    let (code, log) = env
        .output_of(
            &pod_id,
            &pod,
            "addr",
            env.container_config("addr", &["cat", "/proc/net/if_inet6"]),
        )
        .await;
    assert_eq!(code, 0);
    let v6: std::net::Ipv6Addr = network.additional_ips[0].ip.parse().unwrap();
    let expanded = hex::encode(v6.octets());
    assert!(
        lines_of(&log, "stdout")
            .iter()
            .any(|l| l.starts_with(&expanded)),
        "{expanded} in {log:?}"
    );
    let _runtime = env.stack.runtime();
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network_pods_see_the_host_interfaces_and_have_no_pod_ip() {
    require_root!();
    let env = PodEnv::start(false).await;
    let marker = format!("crmhost{}", std::process::id() % 10000);
    let peer = format!("crmpeer{}", std::process::id() % 10000);
    let added = std::process::Command::new("ip")
        .args([
            "link", "add", &marker, "type", "veth", "peer", "name", &peer,
        ])
        .status()
        .unwrap();
    assert!(added.success());
    let mut pod = env.pod_config("hostnet");
    let security = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    security.namespace_options.as_mut().unwrap().network = NamespaceMode::Node as i32;
    let pod_id = env.run_pod(&pod).await;

    let (code, log) = env
        .output_of(
            &pod_id,
            &pod,
            "links",
            env.container_config("links", &["ls", "/sys/class/net"]),
        )
        .await;

    let _ = std::process::Command::new("ip")
        .args(["link", "del", &marker])
        .status();
    assert_eq!(code, 0);
    assert!(
        lines_of(&log, "stdout").contains(&marker),
        "the host's interfaces are visible: {log:?}"
    );
    let status = env.pod_status(&pod_id).await;
    assert_eq!(status.network.unwrap_or_default().ip, "");
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_config_and_hostname_reach_the_container() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut pod = env.pod_config("dns");
    pod.hostname = "crimson-host".into();
    pod.dns_config = Some(DnsConfig {
        servers: vec!["10.10.10.10".into()],
        searches: vec!["cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    let pod_id = env.run_pod(&pod).await;

    let command = [
        "sh",
        "-c",
        "hostname; cat /etc/resolv.conf; grep crimson-host /etc/hosts",
    ];
    let (code, log) = env
        .output_of(&pod_id, &pod, "dns", env.container_config("dns", &command))
        .await;

    assert_eq!(code, 0, "{log:?}");
    let out = lines_of(&log, "stdout");
    assert_eq!(out[0], "crimson-host");
    for expected in [
        "search cluster.local",
        "nameserver 10.10.10.10",
        "options ndots:5",
    ] {
        assert!(out.iter().any(|l| l == expected), "{expected} in {out:?}");
    }
    env.remove_pod_and_check(pod_id).await;
}
