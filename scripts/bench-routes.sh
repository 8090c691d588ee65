#!/usr/bin/env bash
# Route benchmark (issue 4): route add+delete over the service's channel vs `ip route` run
# once per route vs `ip -batch`, side by side in one run, in a fresh network namespace.
#
#   scripts/bench-routes.sh [N]           N routes (default 10000)
#
# Prints a Markdown table; docs/BENCHMARKS.md records a run with the machine it ran on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
cargo build --release --quiet -p openvpnserv --example bench_routes
ns="ovsbench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
ip netns exec "$ns" target/release/examples/bench_routes "${1:-10000}"
