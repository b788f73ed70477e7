#!/usr/bin/env bash
# Installs what Crimson needs on Debian 12 besides the Rust toolchain: the OCI runtime, conmon,
# CNI plugins, protoc (for the gRPC code), and what the tests use (docker-registry,
# busybox-static, htpasswd, iproute2, iptables, a Python with grpcio for the gRPC C-core client
# test), plus `just`. Safe to run again.
set -euo pipefail

packages=(
  runc conmon containernetworking-plugins   # running containers and pod networks
  protobuf-compiler                         # protoc, for the gRPC code generation
  iproute2 iptables                         # network namespaces, veths, port maps
  docker-registry busybox-static apache2-utils  # tests: loopback registry, image content, htpasswd
  python3 python3-venv                      # tests: a gRPC C-core client (grpcio from PyPI)
  ca-certificates curl
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package may start a registry on :5000; the tests start their own.
if command -v service >/dev/null && [ -x /etc/init.d/docker-registry ]; then
  service docker-registry stop >/dev/null 2>&1 || true
fi

# just: a prebuilt binary from PyPI (rust-just) when pip is there, else built by cargo.
if ! command -v just >/dev/null; then
  if command -v pip3 >/dev/null; then
    echo "installing just (pip: rust-just)"
    pip3 install --quiet rust-just 2>/dev/null || pip3 install --quiet --break-system-packages rust-just
  else
    echo "installing just (cargo install)"
    cargo install just --locked --quiet
  fi
fi

# grpcio (PyPI) in its own virtualenv: the integration tests' gRPC C-core client.
test_python=/opt/crimson-tests/python
if ! "$test_python/bin/python3" -c 'import grpc' 2>/dev/null; then
  echo "installing grpcio (pip, in $test_python)"
  python3 -m venv "$test_python"
  "$test_python/bin/pip" install --quiet grpcio
fi
