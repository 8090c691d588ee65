#!/usr/bin/env bash
# Shows the main job. Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet --release -p openvpnserv
echo "== the service's effective settings (built-in defaults unless /etc/openvpn/iservice.toml exists)"
target/release/openvpnserv --check-config
