#!/usr/bin/env bash
# Runs every fuzz target for a short while (default 15 s each; FUZZ_SECONDS to change).
# The longer runs recorded in docs/FUZZING.md use the same command with a larger budget.
#
# cargo-fuzz needs nightly compiler flags; the stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1, so no second toolchain is needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${FUZZ_SECONDS:-15}"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
for t in $targets; do
    echo "== fuzz: $t for ${seconds}s"
    mkdir -p "fuzz/corpus/$t"
    cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
        | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|cov:|Done|==[0-9]+==|SUMMARY|thread)' | tail -4
done
