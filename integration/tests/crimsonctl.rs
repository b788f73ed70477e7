//! crimsonctl up / status / pull / images / restart / down with a private state and run root.

use std::process::Command;

use crimson_integration::{
    image_builder::{Pusher, TestImage},
    registry::TestRegistry,
    require_root,
    stack::{bin_dir, unmount_under},
};

fn ctl(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("crimsonctl"))
        .arg("--config")
        .arg(root.join("crimson.toml"))
        .args(args)
        .output()
        .expect("running crimsonctl")
}

#[tokio::test(flavor = "multi_thread")]
async fn up_status_pull_images_down() {
    require_root!();
    let registry = TestRegistry::start();
    Pusher::new(&registry.address, None)
        .push("ctl", "1", &TestImage::busybox())
        .await;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("registries.conf"),
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.address
        ),
    )
    .unwrap();
    std::fs::write(
        root.path().join("crimson.toml"),
        format!(
            "state_root = {:?}\nrun_root = {:?}\n[image]\nregistries_conf = {:?}\n[network]\ncni_conf_dir = {:?}\n",
            root.path().join("state"),
            root.path().join("run"),
            root.path().join("registries.conf"),
            root.path().join("cni"),
        ),
    )
    .unwrap();

    let up = ctl(root.path(), &["up"]);
    let stdout = String::from_utf8_lossy(&up.stdout).to_string();
    assert!(
        up.status.success(),
        "up failed: {stdout}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(
        stdout.trim_end().ends_with("crimson.sock"),
        "up prints the front-door socket: {stdout}"
    );

    let status = ctl(root.path(), &["status"]);
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.status.success(), "{table}");
    assert_eq!(table.matches("SERVING").count(), 5, "{table}");

    let image = format!("{}/ctl:1", registry.address);
    assert!(ctl(root.path(), &["pull", &image]).status.success());
    let images = String::from_utf8_lossy(&ctl(root.path(), &["images"]).stdout).to_string();
    assert!(images.contains(&image), "{images}");

    for daemon in ["sandbox", "crimson-cri"] {
        let restart = ctl(root.path(), &["restart", daemon]);
        assert!(
            restart.status.success(),
            "restart {daemon}: {}{}",
            String::from_utf8_lossy(&restart.stdout),
            String::from_utf8_lossy(&restart.stderr)
        );
    }
    let status = ctl(root.path(), &["status"]);
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    assert_eq!(
        table.matches("SERVING").count(),
        5,
        "after restarts: {table}"
    );
    for counts in ["images=1", "layers=1", "pods=0 ", "attachments=0"] {
        assert!(table.contains(counts), "status shows {counts}: {table}");
    }
    let restarts = |daemon: &str| {
        let row = table.lines().find(|l| l.starts_with(daemon)).unwrap();
        row.split_whitespace().nth(5).unwrap().to_string()
    };
    assert_eq!(restarts("crimson-sandbox"), "1", "{table}");
    assert_eq!(restarts("crimson-cri"), "1", "{table}");
    assert_eq!(restarts("crimson-image"), "0", "{table}");

    // reload: SIGHUP to each daemon, which reads its configuration again and keeps serving.
    let reload = ctl(root.path(), &["reload"]);
    assert!(reload.status.success(), "{reload:?}");
    let log = root.path().join("state/logs/crimson-storage.log");
    let mut reread = false;
    for _ in 0..100 {
        reread = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("SIGHUP: configuration read again, nothing changed");
        if reread {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(reread, "crimson-storage logs the reload");
    assert!(ctl(root.path(), &["reload", "image"]).status.success());
    let images = String::from_utf8_lossy(&ctl(root.path(), &["images"]).stdout).to_string();
    assert!(images.contains(&image), "after restarts: {images}");
    assert!(!ctl(root.path(), &["restart", "nosuch"]).status.success());

    assert!(ctl(root.path(), &["down"]).status.success());
    let after = ctl(root.path(), &["status"]);
    assert!(
        !after.status.success(),
        "status fails when the daemons are down"
    );
    assert_eq!(
        String::from_utf8_lossy(&after.stdout)
            .matches("DOWN")
            .count(),
        5
    );
    assert!(
        !root.path().join("run/crimson.sock").exists(),
        "down stops the socket holder too"
    );
    unmount_under(root.path());
}
