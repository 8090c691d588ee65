#!/usr/bin/env bash
# Chaos with real openvpn (the reliability issue), measured: openvpn killed with kill -9 at a
# random moment of a real connection (connecting, connected, disconnecting), and the service
# killed with kill -9 while real sessions live, each followed by a restart; after every round
# the full snapshot must equal the baseline. Prints the counts docs/BENCHMARKS.md records.
#
#   scripts/chaos.sh            100 rounds of each
#   CHAOS_ROUNDS=1000 scripts/chaos.sh
#   FAULT_SEED=<seed> scripts/chaos.sh    repeat the random moments of an earlier run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
export CHAOS_ROUNDS="${CHAOS_ROUNDS:-100}"
scripts/setup.sh linux >/dev/null
cargo build --quiet -p openvpnserv -p openvpnserv-e2e -p iservice --bins
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), openvpn $(openvpn --version | awk 'NR==1{print $2}'), commit $(git rev-parse --short HEAD)"
cargo test --quiet -p openvpnserv-e2e --test chaos -- --ignored --test-threads=1 --nocapture 2>&1 |
    grep -E '^CHAOS|seed|panicked|test result'
