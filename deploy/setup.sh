#!/usr/bin/env bash
# One command from a fresh Debian 12 (root, Rust toolchain present) to a running Crimson:
# installs what is missing, builds, installs default configuration where none exists, and
# starts the five daemons. Prints the CRI socket to point kubelet or crictl at.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

deploy/install-deps.sh
cargo build --workspace --quiet
deploy/install-config.sh
./target/debug/crimsonctl up
