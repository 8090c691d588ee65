#!/usr/bin/env bash
# Installs what the tests need (scripts/setup.sh) and runs every test suite. Runs as root
# (through sudo when started by another user): the Linux end-to-end suites create users,
# network namespaces and tun devices.
#
#   scripts/test-all.sh                 everything (what CI runs)
#   STAGES="unit wine" scripts/test-all.sh   only some stages
#
# Stages: lint, unit, wine, compliance, e2e, systemd, fuzz. Each stage prints its own header; the script
# stops at the first failing stage and exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
STAGES="${STAGES:-lint unit wine compliance e2e systemd fuzz}"
started=$(date +%s)
# A one-off build gains nothing from incremental caches; they only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

stage() { printf '\n======== %s (at %d s) ========\n' "$*" "$(( $(date +%s) - started ))"; }
want() { [[ " $STAGES " == *" $1 "* ]]; }

# A whole run's builds (target/ and fuzz/target/) take about 4.3 GB (measured on a clean
# clone); with less free, a compiler fails half-way with "No space left on device". Say so
# up front.
need_kb=$((5 * 1024 * 1024))
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt "$need_kb" ]; then
    echo "warning: only $((free_kb / 1024)) MB free on the disk holding $(pwd); a full run needs" \
        "about 5 GB for its builds. Free some space (cargo clean in old checkouts) if a build fails." >&2
fi

stage "setup"
scripts/setup.sh

if want lint; then
    stage "lint: rustfmt, clippy (Linux and Windows targets), cargo deny"
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    # The systemd stage's tests are built only with their feature.
    cargo clippy -p openvpnserv-e2e --features systemd-guests --all-targets --quiet -- -D warnings
    # The end-to-end crate is Linux-only (users, namespaces); it is left out of the Windows build.
    cargo clippy --workspace --exclude openvpnserv-e2e --all-targets --quiet --target x86_64-pc-windows-gnu -- -D warnings
    scripts/deny.sh
fi

if want unit; then
    stage "unit and integration tests (Linux)"
    cargo test --workspace --quiet
fi

if want wine; then
    stage "Windows tests under Wine"
    cargo test --workspace --exclude openvpnserv-e2e --quiet --target x86_64-pc-windows-gnu
fi

if want compliance; then
    stage "compliance: upstream's openvpnserv.exe (built from Debian's source) and ours, side by side under Wine"
    scripts/compliance.sh
fi

if want e2e; then
    stage "Linux end-to-end tests (root, namespaces, real openvpn)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "the end-to-end tests need root" >&2
        exit 1
    fi
    # The tests start these binaries; build them first.
    cargo build --quiet -p openvpnserv -p openvpnserv-e2e -p iservice --bins
    # Root-only tests are #[ignore]d in normal runs; here they run, one at a time, with this
    # machine's openvpn (2.6 on Debian 12); the openvpn_2_7_* tests need 2.7.
    before=$(scripts/leftovers.sh)
    cargo test --quiet -p openvpnserv-e2e -- --ignored --test-threads=1 --skip openvpn_2_7_
    # Every suite that runs real openvpn, again with Debian 13's openvpn 2.7.
    OPENVPN="$(scripts/openvpn27.sh)" cargo test --quiet -p openvpnserv-e2e --test net_tunnel \
        --test net_hostile --test net_openvpn27 --test client_openvpn --test chaos \
        --test control_socket -- --ignored --test-threads=1
    # Every user, group, namespace, link, directory and process the tests made is gone.
    new=$(scripts/leftovers.sh | grep -vxF -e "$before" || true)
    if [ -n "$before" ]; then
        echo "note: left from before this run (not counted):"
        echo "$before"
    fi
    if [ -n "$new" ]; then
        echo "the end-to-end tests left these behind:" >&2
        echo "$new" >&2
        exit 1
    fi
fi

if want systemd; then
    stage "Linux under a real systemd: the package in Debian 12 and 13 guests (systemd-nspawn)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "the systemd stage needs root (systemd-nspawn, namespaces)" >&2
        exit 1
    fi
    t0=$(date +%s)
    # The guests' root filesystems: built once per machine (a few minutes each), then reused.
    export OVS_GUEST_ROOTFS_BOOKWORM OVS_GUEST_ROOTFS_TRIXIE
    OVS_GUEST_ROOTFS_BOOKWORM="$(scripts/guest-rootfs.sh bookworm)"
    OVS_GUEST_ROOTFS_TRIXIE="$(scripts/guest-rootfs.sh trixie)"
    t1=$(date +%s)
    OVS_DEB="$(pwd)/$(scripts/package.sh)"
    export OVS_DEB
    before=$(scripts/leftovers.sh)
    cargo test --quiet -p openvpnserv-e2e --features systemd-guests --test systemd -- --ignored --test-threads=1
    new=$(scripts/leftovers.sh | grep -vxF -e "$before" || true)
    if [ -n "$new" ]; then
        echo "the systemd tests left these behind:" >&2
        echo "$new" >&2
        exit 1
    fi
    echo "systemd stage: guests ready in $((t1 - t0)) s, package and tests in $(($(date +%s) - t1)) s"
fi

if want fuzz; then
    stage "fuzz smoke runs"
    scripts/fuzz-smoke.sh
fi

stage "all stages passed in $(( $(date +%s) - started )) s: $STAGES"
