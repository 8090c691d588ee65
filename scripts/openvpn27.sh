#!/usr/bin/env bash
# Debian 13's openvpn 2.7 (from trixie-backports), runnable on this Debian 12 machine: the
# package and the libraries it needs are unpacked into a cache folder, and a small wrapper
# starts it with Debian 13's own dynamic loader and libraries. The end-to-end suites run
# against it with OPENVPN=<wrapper> (2.6 from this machine is the default); the systemd stage
# runs the same package inside a real Debian 13 guest.
#
#   scripts/openvpn27.sh          prints the wrapper's path, building the cache if needed
#
# Cached per machine in /var/cache/openvpnserv-rs/openvpn27-<version>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/as-root.sh
as_root "$0" "$@"
source scripts/lib/debian-apt.sh

cache=/var/cache/openvpnserv-rs
work="$cache/apt-trixie"
apt_private "$work" deb "trixie trixie-backports"
version=$(apt-cache "${APT_OPTS[@]}" madison openvpn | awk '$3 ~ /^2\.7/ { print $3; exit }')
case "$version" in
    2.7*) ;;
    *) echo "openvpn27: trixie-backports offers openvpn '$version', not 2.7" >&2; exit 1 ;;
esac
dest="$cache/openvpn27-$version"
if [ ! -x "$dest/bin/openvpn" ]; then
    echo "openvpn27: unpacking Debian's openvpn $version and its libraries into $dest" >&2
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/debs" "$dest.tmp/root" "$dest.tmp/bin"
    # The libraries openvpn links (ldd of Debian's build) and the C library itself.
    (cd "$dest.tmp/debs" && apt-get -q "${APT_OPTS[@]}" download "openvpn=$version" libc6 \
        libcap-ng0 liblz4-1 liblzo2-2 libnl-3-200 libnl-genl-3-200 libpkcs11-helper1t64 \
        libssl3t64 libsystemd0 libcap2 libzstd1 libgcc-s1 zlib1g openssl-provider-legacy \
        >/dev/null)
    for deb in "$dest.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$dest.tmp/root"; done
    rm -rf "$dest.tmp/debs"
    cat >"$dest.tmp/bin/openvpn" <<WRAP
#!/bin/sh
# Debian 13's openvpn $version with Debian 13's loader and libraries (scripts/openvpn27.sh).
r=$dest/root
exec "\$r/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$r/usr/lib/x86_64-linux-gnu" \\
    --argv0 openvpn "\$r/usr/sbin/openvpn" "\$@"
WRAP
    chmod 0755 "$dest.tmp/bin/openvpn"
    # Every user runs it (the service starts it as the session's user).
    chmod -R a+rX "$dest.tmp"
    sed -i "s|$dest.tmp|$dest|" "$dest.tmp/bin/openvpn"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
"$dest/bin/openvpn" --version | head -n 1 >&2
echo "$dest/bin/openvpn"
