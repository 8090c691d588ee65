#!/usr/bin/env bash
# Supply-chain check: cargo deny on licenses, advisories, duplicate versions and sources
# (deny.toml). The advisory database comes from github.com when it can be reached, otherwise
# from the dated snapshot in tools/advisory-db/, and the output says which.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export OPENVPNSERV_ADVISORY_DBS="$PWD/target/advisory-dbs"
# cargo-deny keeps the default database in a folder named after its URL.
db="$OPENVPNSERV_ADVISORY_DBS/advisory-db-3157b0e258782691"
mkdir -p "$OPENVPNSERV_ADVISORY_DBS"

# Every crate of every target, so the checks below can run without the network.
cargo fetch --quiet --locked

if timeout 60 cargo deny fetch db >/dev/null 2>&1; then
    echo "deny: advisory database fetched from github.com"
else
    rm -rf "$db"
    git -c init.defaultBranch=snapshot clone --quiet -c advice.detachedHead=false tools/advisory-db/rustsec-advisory-db.bundle "$db"
    echo "deny: github.com unreachable; advisories checked against the snapshot of" \
        "$(git -C "$db" log -1 --format=%cs) (tools/advisory-db/README.md)"
fi
cargo deny --offline check
