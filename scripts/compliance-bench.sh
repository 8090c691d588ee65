#!/usr/bin/env bash
# Connect → PID reply: ours against upstream's openvpnserv.exe (built as for the compliance
# stage), both real SCM services under Wine, in interleaved rounds; prints min/median/max of
# each and the ratio of the medians (docs/BENCHMARKS.md).
#
#   scripts/compliance-bench.sh               50 rounds
#   BENCH_RUNS=200 scripts/compliance-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
OVS_UPSTREAM="$(scripts/compliance.sh --build)"
export OVS_UPSTREAM
source scripts/wine-env.sh
# Release builds of ours and of the fake openvpn, as shipped (upstream's is built with -O2).
cargo test --quiet --release --target x86_64-pc-windows-gnu -p openvpnserv-testkit-win \
    --test compliance -- --ignored --nocapture --exact bench_connect_to_pid_reply 2>&1 |
    grep -E '^bench|^test result|panicked'
