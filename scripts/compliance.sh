#!/usr/bin/env bash
# The compliance stage: upstream's own openvpnserv.exe, built here from Debian's source
# packages of openvpn, and ours, side by side under Wine (docs/WINDOWS.md, "Compared with
# upstream"). Fails on any difference that is not a row of that table.
#
#   scripts/compliance.sh             build (or reuse) upstream's service, run every case
#   scripts/compliance.sh --build     only build, print the OVS_UPSTREAM value
#
# Upstream's sources come from `apt-get source` with a deb-src entry derived from this
# machine's own apt sources (scripts/lib/debian-apt.sh): Debian 12's openvpn (2.6.14) and,
# where trixie-backports has one, a 2.7 release. Only src/openvpnserv and the WFP file it uses
# are compiled, with x86_64-w64-mingw32-gcc, plus tools/compliance/ (our config header and the
# group check that finds no groups). The builds are cached per version in
# /var/cache/openvpnserv-rs/compliance/; nothing of upstream's is committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
source scripts/lib/debian-apt.sh
ROOT=$(pwd)

cache=/var/cache/openvpnserv-rs/compliance
mkdir -p "$cache"

# The package lists: fetched again at most once a day.
apt_lists() {
    local dir="$cache/apt-src"
    if [ -n "$(find "$dir/lists" -maxdepth 1 -name '*Sources*' -mtime -1 2>/dev/null | head -n 1)" ]; then
        APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/parts"
            -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
            -o Dir::State::status=/dev/null -o APT::Architecture=amd64
            -o APT::Sandbox::User=root)
        return 0
    fi
    apt_private "$dir" deb-src "bookworm bookworm-updates trixie-backports"
}

# Unpacks openvpn $1 (a Debian source version) into $2: with Debian's patches when the whole
# source package can be had, else the upstream tarball alone (backports sometimes list a
# version whose Debian part is gone from the mirror).
fetch_source() {
    local version="$1" dest="$2" tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get -q "${APT_OPTS[@]}" source --download-only "openvpn=$version" >/dev/null 2>&1) || true
    if ls "$tmp"/*.dsc >/dev/null 2>&1 && ls "$tmp"/*.debian.tar.* >/dev/null 2>&1; then
        (cd "$tmp" && dpkg-source -q --no-check -x ./*.dsc src >/dev/null)
    elif ls "$tmp"/*.orig.tar.gz >/dev/null 2>&1; then
        mkdir -p "$tmp/src" && tar -xzf "$tmp"/*.orig.tar.gz -C "$tmp/src" --strip-components=1
    else
        rm -rf "$tmp"
        return 1
    fi
    mv "$tmp/src" "$dest"
    rm -rf "$tmp"
}

# Builds upstream's service from the unpacked source $1 into $2: openvpnserv.exe (its own
# group check) and openvpnserv-nogroups.exe (ours, which finds no groups).
build_service() {
    local src="$1" out="$2" wfp libs flags
    if [ -f "$src/src/openvpn/wfp_block.c" ]; then
        wfp="$src/src/openvpn/wfp_block.c"
    else
        wfp="$src/src/openvpn/block_dns.c"
    fi
    libs=(-ladvapi32 -luserenv -liphlpapi -lfwpuclnt -lrpcrt4 -lshlwapi -lnetapi32 -lws2_32 -lntdll -lole32)
    if grep -q pathcch "$src/src/openvpnserv/Makefile.am"; then libs+=(-lpathcch); fi
    # The compile flags of upstream's Makefile.am for the service.
    flags=(-municode -D_UNICODE -DUNICODE -DHAVE_CONFIG_H -UNTDDI_VERSION -U_WIN32_WINNT
        -D_WIN32_WINNT=_WIN32_WINNT_VISTA -O2 -w -I"$ROOT/tools/compliance"
        -I"$src/include" -I"$src/src/openvpn" -I"$src/src/compat" -I"$src/src/tapctl")
    # Debian 12's mingw headers predate this code.
    if ! grep -q ERROR_CANT_WAIT /usr/share/mingw-w64/include/winerror.h; then
        flags+=(-DERROR_CANT_WAIT=554L)
    fi
    local c="$src/src/openvpnserv"
    mkdir -p "$out.tmp"
    x86_64-w64-mingw32-gcc "${flags[@]}" -o "$out.tmp/openvpnserv.exe" \
        "$c/common.c" "$c/interactive.c" "$c/service.c" "$c/validate.c" "$wfp" "${libs[@]}"
    # Upstream's group check renamed out of the way; tools/compliance/nogroups.c instead.
    x86_64-w64-mingw32-gcc "${flags[@]}" -DIsAuthorizedUser=upstream_IsAuthorizedUser \
        -c -o "$out.tmp/validate-nogroups.o" "$c/validate.c"
    x86_64-w64-mingw32-gcc "${flags[@]}" -o "$out.tmp/openvpnserv-nogroups.exe" \
        "$c/common.c" "$c/interactive.c" "$c/service.c" "$out.tmp/validate-nogroups.o" "$wfp" \
        "$ROOT/tools/compliance/nogroups.c" "${libs[@]}"
    rm -f "$out.tmp/validate-nogroups.o"
    rm -rf "$out" && mv "$out.tmp" "$out"
}

# The versions to compare with: Debian 12's, and the newest 2.7 the backports offer whose
# source can be had.
apt_lists
versions=$(apt-cache "${APT_OPTS[@]}" showsrc openvpn 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -u)
v26=$(echo "$versions" | grep '^2\.6\.' | sort -V | tail -n 1)
[ -n "$v26" ] || { echo "compliance: Debian's sources offer no openvpn 2.6" >&2; exit 1; }
upstream=""
for version in "$v26" $(echo "$versions" | grep '^2\.7\.' | sort -rV); do
    short="${version%%-*}"
    out="$cache/openvpnserv-$short"
    # Built with the same compat files as now (they are part of the cache key).
    key=$(cat tools/compliance/* | sha256sum | cut -c1-16)
    if [ ! -f "$out/openvpnserv-nogroups.exe" ] || [ "$(cat "$out/key" 2>/dev/null)" != "$key" ]; then
        # A version whose source the mirror lacks is tried again a day later, not every run.
        if [ -n "$(find "$cache/unfetchable-$version" -mtime -1 2>/dev/null)" ]; then
            continue
        fi
        echo "compliance: building upstream's openvpnserv.exe $short from Debian's source package" >&2
        rm -rf "$cache/src-$short"
        if ! fetch_source "$version" "$cache/src-$short"; then
            echo "compliance: the source of openvpn $version cannot be fetched; skipping it" >&2
            touch "$cache/unfetchable-$version"
            continue
        fi
        build_service "$cache/src-$short" "$out"
        echo "$key" >"$out/key"
        rm -rf "$cache/src-$short"
    fi
    upstream+="$short=$out/openvpnserv-nogroups.exe;"
    # One 2.7 release is enough.
    case "$short" in 2.7.*) break ;; esac
done
export OVS_UPSTREAM="$upstream"
if [ "${1:-}" = "--build" ]; then
    echo "$OVS_UPSTREAM"
    exit 0
fi
echo "compliance: upstream builds: $OVS_UPSTREAM" >&2
source scripts/wine-env.sh
# Everything but the documented differences' details goes to the terminal; the whole run
# stays in last-run.log.
cargo test --quiet --target x86_64-pc-windows-gnu -p openvpnserv-testkit-win --test compliance \
    -- --ignored --nocapture --exact upstream_and_ours_answer_every_case_alike 2>&1 | tee "$cache/last-run.log" |
    awk '/^documented difference/ { skip = 1; next } skip && /^$/ { skip = 0; next } !skip' || true
# The summary line and the test's verdict decide.
grep -q '^compliance: .* 0 undocumented' "$cache/last-run.log" &&
    grep -q '^test result: ok' "$cache/last-run.log"
