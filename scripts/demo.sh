#!/usr/bin/env bash
# Shows the main job: an ordinary user gets a real VPN tunnel through the service, with stock
# openvpn 2.6 running as that user, in two network namespaces on this machine; then a clean
# disconnect leaves the network exactly as it was. Runs as root (through sudo when started by
# another user); takes about a minute the first time (it installs openvpn and builds the
# service), a few seconds after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
scripts/setup.sh linux
echo "== building the service, its hook, iservice and the demo"
cargo build --quiet --release -p openvpnserv -p iservice -p openvpnserv-e2e --bins
exec target/release/demo
