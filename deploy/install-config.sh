#!/usr/bin/env bash
# Installs Crimson's default configuration files, never overwriting ones that exist.
set -euo pipefail
cd "$(dirname "$0")"

install_if_missing() { # source destination
  if [ ! -e "$2" ]; then
    install -D -m 0644 "$1" "$2"
    echo "installed $2"
  fi
}
install_if_missing config/crimson.toml /etc/crimson/crimson.toml
install_if_missing config/registries.conf /etc/containers/registries.conf
if ! ls /etc/cni/net.d/*.conflist /etc/cni/net.d/*.conf >/dev/null 2>&1; then
  install_if_missing cni/10-crimson-bridge.conflist /etc/cni/net.d/10-crimson-bridge.conflist
fi
