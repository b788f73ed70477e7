//! The files a pod gives its containers: /etc/hostname, /etc/resolv.conf and /etc/hosts.

use std::path::{Path, PathBuf};

use crimson_api::sandbox::v1::DnsConfig;

use crate::{Result, SandboxError};

/// Where a pod's files are.
#[derive(Debug, Clone)]
pub struct PodFilePaths {
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

impl PodFilePaths {
    /// The files in `pod_dir`.
    pub fn new(pod_dir: &Path) -> Self {
        Self {
            hostname: pod_dir.join("hostname"),
            resolv_conf: pod_dir.join("resolv.conf"),
            hosts: pod_dir.join("hosts"),
        }
    }
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(SandboxError::io("writing", path))
}

/// Writes the hostname and resolv.conf (from `dns`, or the host's when unset or empty).
pub fn write_hostname_and_resolv(
    paths: &PodFilePaths,
    hostname: &str,
    dns: Option<&DnsConfig>,
) -> Result<()> {
    write(&paths.hostname, &format!("{hostname}\n"))?;
    let resolv = match dns
        .filter(|d| !d.servers.is_empty() || !d.searches.is_empty() || !d.options.is_empty())
    {
        Some(dns) => resolv_conf(dns),
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    write(&paths.resolv_conf, &resolv)
}

/// resolv.conf from a CRI DNS config.
pub fn resolv_conf(dns: &DnsConfig) -> String {
    let mut text = String::new();
    if !dns.searches.is_empty() {
        text.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for server in &dns.servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        text.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    text
}

/// /etc/hosts: localhost entries and the pod's own name on its addresses (the host's file for
/// host-network pods).
pub fn write_hosts(
    paths: &PodFilePaths,
    hostname: &str,
    ips: &[String],
    host_network: bool,
) -> Result<()> {
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for ip in ips {
            if !hostname.is_empty() {
                text.push_str(&format!("{ip}\t{hostname}\n"));
            }
        }
        text
    };
    write(&paths.hosts, &hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_from_dns_config() {
        let dns = DnsConfig {
            servers: vec!["10.10.10.10".into()],
            searches: vec!["google.com".into()],
            options: vec!["ndots:8".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "search google.com\nnameserver 10.10.10.10\noptions ndots:8\n"
        );
    }
}
