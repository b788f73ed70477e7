//! Memory of a runtime as the machine pays for it: the proportional set size (shared pages
//! split among the processes sharing them) of every process whose command line names the
//! runtime's directory: its daemons and per-container monitors (conmon, shims), not the
//! containers' own processes.

use std::path::Path;

/// The PSS, in MiB, of every process whose command line mentions `dir`.
pub fn of_processes_naming(dir: &Path) -> f64 {
    let marker = dir.display().to_string();
    let kib: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&marker))
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("smaps_rollup")).ok())
        .filter_map(|rollup| {
            rollup.lines().find_map(|line| {
                line.strip_prefix("Pss:").and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
        })
        .sum();
    kib as f64 / 1024.0
}
