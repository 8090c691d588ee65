#!/usr/bin/env bash
# The project's benchmark command: builds release binaries and measures, side by side in one
# run, what docs/BENCHMARKS.md reports. Runs as root (through sudo when started by another
# user: it starts the service and holds sessions). BENCH_RUNS and BENCH_SESSIONS change the
# sizes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
cargo build --quiet --release -p openvpnserv -p openvpnserv-e2e --bins
echo "# Benchmark run of $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname) ($(nproc) cores), commit $(git rev-parse --short HEAD)"
echo
target/release/bench-service
