#!/usr/bin/env bash
# Connect time through the service against root openvpn (docs/BENCHMARKS.md): builds release
# binaries and runs crates/e2e/src/bin/bench-connect.rs. Runs as root (through sudo when
# started by another user: it creates namespaces, a user and tun devices). BENCH_ROUNDS (20)
# and BENCH_WARMUP (2) change the sizes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
cargo build --quiet --release -p openvpnserv -p iservice -p openvpnserv-e2e --bins
echo "# Connect benchmark run of $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname) ($(nproc) cores), commit $(git rev-parse --short HEAD)"
echo
target/release/bench-connect
