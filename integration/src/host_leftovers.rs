//! What a test stack leaves on the host, cleaned when it is dropped.
//!
//! A pod its test never tore down keeps the bridge plugin's masquerade rules (and portmap's
//! DNAT rules) after its stack is gone, and so does a DEL run without the pod's namespace (the
//! bridge plugin then skips them). A plugin also outlives the daemon that started it (a test
//! that gave up on a RunPodSandbox ends while its ADD still runs), and may add rules after its
//! stack is gone, unless it is waited for. Pods never removed keep running in their cgroups,
//! which stay; so do the parent cgroups of the pods of a peer runtime the bench drove
//! (containerd leaves a pod's parent cgroup to kubelet, which made it).

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    fcntl::{Flock, FlockArg},
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// Waits, at most `within`, until no CNI plugin holds a pod's lock file in `lock_dir` (each
/// plugin process holds its pod's for as long as it runs).
pub fn wait_for_plugins(lock_dir: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    for entry in std::fs::read_dir(lock_dir).into_iter().flatten().flatten() {
        let Ok(mut file) = File::open(entry.path()) else {
            continue;
        };
        while Instant::now() < deadline {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(_unlocked_on_drop) => break,
                Err((held, _)) => file = held,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Deletes, in the nat and filter tables, every rule whose comment names one of `networks`,
/// and the per-pod chains those rules jump to. Best effort: a failure leaves the rules.
pub fn remove_rules_of(networks: &[String]) {
    for table in ["nat", "filter"] {
        let Ok(saved) = Command::new("iptables-save").args(["-t", table]).output() else {
            continue;
        };
        let Some(script) = deletions(&String::from_utf8_lossy(&saved.stdout), table, networks)
        else {
            continue;
        };
        let Ok(mut restore) = Command::new("iptables-restore")
            .args(["--noflush", "-w"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            continue;
        };
        if let Some(mut stdin) = restore.stdin.take() {
            let _ = stdin.write_all(script.as_bytes());
        }
        let _ = restore.wait();
    }
}

/// The `iptables-restore --noflush` input deleting the rules of `networks` found in `saved`
/// (`iptables-save` output of `table`), or `None` when there are none.
fn deletions(saved: &str, table: &str, networks: &[String]) -> Option<String> {
    // Plugins put the network's name, quoted, in each rule's comment.
    let names: Vec<String> = networks.iter().map(|n| format!(r#"\"{n}\""#)).collect();
    let rules: Vec<&str> = saved
        .lines()
        .filter(|line| line.starts_with("-A ") && names.iter().any(|n| line.contains(n)))
        .collect();
    if rules.is_empty() {
        return None;
    }
    let mut pod_chains: Vec<&str> = rules
        .iter()
        .filter_map(|rule| rule.split(" -j ").nth(1)?.split_whitespace().next())
        .filter(|chain| chain.starts_with("CNI-") && !chain.starts_with("CNI-HOSTPORT-"))
        .collect();
    pod_chains.sort_unstable();
    pod_chains.dedup();
    let mut script = format!("*{table}\n");
    for rule in rules {
        script.push_str(&format!("-D{}\n", &rule["-A".len()..]));
    }
    for chain in pod_chains {
        script.push_str(&format!("-F {chain}\n-X {chain}\n"));
    }
    script.push_str("COMMIT\n");
    Some(script)
}

/// Kills the processes left in the cgroups named after `tag` and those below them, in every
/// hierarchy (the containers of pods a test left running: a stack's daemons leave them, as a
/// node's runtime leaves its pods across restarts), then removes those cgroups.
pub fn remove_cgroups_tagged(tag: &str) {
    let mut tagged: Vec<PathBuf> = cgroup_dirs()
        .into_iter()
        .filter(|dir| dir.to_string_lossy().contains(tag))
        .collect();
    for dir in &tagged {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|line| line.parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    // Children before their parents; a cgroup empties once its killed processes are reaped.
    tagged.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
    let deadline = Instant::now() + Duration::from_secs(10);
    for dir in tagged {
        while std::fs::remove_dir(&dir).is_err() && dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every cgroup down to three levels below each hierarchy's root (where tests put theirs).
pub fn cgroup_dirs() -> Vec<PathBuf> {
    dirs_under(Path::new("/sys/fs/cgroup"), 3)
}

fn dirs_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
            out.extend(dirs_under(&entry.path(), depth - 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = r#"*nat
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-abc - [0:0]
:CNI-DN-def - [0:0]
:CNI-other - [0:0]
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.1.1.2/32 -m comment --comment "name: \"net-a\" id: \"pod\"" -j CNI-abc
-A POSTROUTING -s 10.2.1.2/32 -m comment --comment "name: \"net-ab\" id: \"pod\"" -j CNI-other
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"net-a\" id: \"pod\"" -j CNI-DN-def
-A CNI-abc ! -d 224.0.0.0/4 -m comment --comment "name: \"net-a\" id: \"pod\"" -j MASQUERADE
COMMIT
"#;

    #[test]
    fn only_the_rules_and_pod_chains_of_the_named_networks_are_deleted() {
        let script = deletions(SAVED, "nat", &["net-a".into()]).unwrap();
        assert_eq!(
            script,
            r#"*nat
-D POSTROUTING -s 10.1.1.2/32 -m comment --comment "name: \"net-a\" id: \"pod\"" -j CNI-abc
-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"net-a\" id: \"pod\"" -j CNI-DN-def
-D CNI-abc ! -d 224.0.0.0/4 -m comment --comment "name: \"net-a\" id: \"pod\"" -j MASQUERADE
-F CNI-DN-def
-X CNI-DN-def
-F CNI-abc
-X CNI-abc
COMMIT
"#
        );
        assert_eq!(deletions(SAVED, "nat", &["net-c".into()]), None);
    }
}
