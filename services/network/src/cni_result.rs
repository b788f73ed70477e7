//! Reading pod IPs out of CNI results (spec 0.3.0 and later; 0.2.0's `ip4`/`ip6` too).

use serde_json::Value;

/// The IPs of a result without prefix length, IPv4 first.
pub fn pod_ips(result: &Value) -> Vec<String> {
    let mut ips: Vec<String> = match result.get("ips").and_then(Value::as_array) {
        Some(entries) => entries
            .iter()
            .filter_map(|entry| entry["address"].as_str())
            .map(strip_prefix_length)
            .collect(),
        None => ["ip4", "ip6"]
            .iter()
            .filter_map(|key| result[key]["ip"].as_str())
            .map(strip_prefix_length)
            .collect(),
    };
    ips.sort_by_key(|ip| ip.contains(':'));
    ips.dedup();
    ips
}

fn strip_prefix_length(address: &str) -> String {
    address.split('/').next().unwrap_or(address).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ips_of_current_and_old_results() {
        let dual = serde_json::json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.88.0.5/16", "gateway": "10.88.0.1"}]});
        assert_eq!(pod_ips(&dual), ["10.88.0.5", "fd00::5"]);
        let old = serde_json::json!({"ip4": {"ip": "10.1.0.2/24"}});
        assert_eq!(pod_ips(&old), ["10.1.0.2"]);
        assert!(pod_ips(&serde_json::json!({})).is_empty());
    }
}
