#!/usr/bin/env bash
# Installs everything the test suites need, from the project's own files. Idempotent; run as
# root on Debian 12 (what CI and the development machines are).
#
#   apt packages  openvpn, nftables, iproute2, openssl, dbus (private test buses), mingw-w64,
#                 Wine, a PKCS#11 module (opensc-pkcs11), FUSE for Python (python3-fusepy,
#                 a mount that hangs), systemd-nspawn and debootstrap (the systemd stage's
#                 guests), dpkg-dev (the package), and small tools the tests use
#   rustup        the x86_64-pc-windows-gnu target
#   cargo         cargo-fuzz, cargo-deny
#   Wine          a prefix under target/wine-prefix with our ProcessPrng stub DLL
#
#   scripts/setup.sh         everything
#   scripts/setup.sh linux   only what the Linux service and its demo need
set -euo pipefail
PART="${1:-all}"
source "$(dirname "${BASH_SOURCE[0]}")/wine-env.sh"
cd "$ROOT"

say() { printf '\n== setup: %s\n' "$*"; }

APT_PACKAGES=(openvpn nftables iproute2 openssl dbus procps psmisc util-linux passwd iputils-ping python3
    opensc-pkcs11 python3-fusepy systemd-container debootstrap binutils dpkg-dev)
if [ "$PART" = all ]; then
    APT_PACKAGES+=(gcc-mingw-w64-x86-64 wine wine64)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$PART" = linux ]; then
    say "ready (Linux part)"
    exit 0
fi

if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    say "adding the Rust target x86_64-pc-windows-gnu"
    if ! rustup target add x86_64-pc-windows-gnu; then
        echo "setup: 'rustup target add x86_64-pc-windows-gnu' failed; the Windows build and its tests need it (docs/WINDOWS.md describes a rustc-web fallback)" >&2
        exit 1
    fi
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

# scripts/deny.sh knows where this version keeps its advisory database.
DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]; then
    say "installing cargo-deny $DENY_VERSION"
    cargo install cargo-deny --locked --quiet --version "$DENY_VERSION"
fi

stub="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$stub" ] || [ tools/wine/processprng.c -nt "$stub" ]; then
    say "preparing the Wine prefix $WINEPREFIX"
    mkdir -p "$(dirname "$WINEPREFIX")"
    wineboot -i >/dev/null 2>&1 || true
    # wineboot returns before the prefix is complete; wait for the server to finish.
    wineserver -w || true
    x86_64-w64-mingw32-gcc -O2 -shared -o target/bcryptprimitives.dll \
        tools/wine/processprng.c tools/wine/processprng.def -lbcrypt
    cp target/bcryptprimitives.dll "$stub"
fi
say "ready"
