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

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Pod + container lifecycle latency (median, p95 per step) beside raw runc, release build.
bench iterations="20":
    cargo build --release --workspace
    ./target/release/crimson-bench --iterations {{iterations}}
