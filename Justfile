# Crimson's everyday commands. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build every crate and binary (debug profile; dependencies are optimised).
build:
    cargo build --workspace

# Start the five daemons in the background (config: /etc/crimson/crimson.toml if present).
up: build
    ./target/debug/crimsonctl up

# Stop the daemons started by `up`.
down:
    ./target/debug/crimsonctl down

# Health, pid and version of each daemon.
status:
    ./target/debug/crimsonctl status

# The whole test suite: unit tests and end-to-end tests (root, real registry and mounts).
test: build
    cargo test --workspace

# Under load, against release binaries (optimised builds behave differently: sled's concurrent
# flush deadlock shows only there, and so does a start answered before the container's
# process exec'd): many writers flushing one database, the pod lifecycle tests, then 100 pods
# with a container each started and removed at once and 3 churn rounds with a leak check.
stress pods="100":
    cargo build --release --workspace
    cargo test --release -p crimson-store
    cargo test --release -p crimson-integration --test pod_lifecycle
    CRIMSON_STRESS_PODS={{pods}} cargo test --release -p crimson-integration --test stress -- --ignored --nocapture

# Chaos under pod churn, against release binaries: workers loop the pod lifecycle through the
# front door while a random daemon is kill -9'd every few seconds; long-lived pods are probed.
chaos seconds="90":
    cargo build --release --workspace
    CRIMSON_CHAOS_SECONDS={{seconds}} cargo test --release -p crimson-integration --test chaos -- --ignored --nocapture

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Pod + container lifecycle latency (median, p95 per step) and the wall time of a burst of
# pods started at once vs one by one, beside raw runc; then side by side with a private
# containerd (the peer, Debian's package, installed if missing): every CRI call of a pod's
# life by one client and by 3 at once, the calls kubelet polls with 50 pods running, the reads
# right after a write beside a no-op call in their place, bursts of 20 and 100 pods started at
# once, and memory (PSS) idle and with the pods; release build.
bench iterations="20" burst="20":
    command -v containerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd
    cargo build --release --workspace
    ./target/release/crimson-bench --iterations {{iterations}} --burst {{burst}}
