#!/usr/bin/env bash
# Builds (once per machine) the root filesystem of a Debian guest that the `systemd` test
# stage boots with systemd-nspawn, and prints its path.
#
#   scripts/guest-rootfs.sh bookworm     Debian 12: systemd 252, openvpn 2.6
#   scripts/guest-rootfs.sh trixie       Debian 13: systemd 257, openvpn 2.7 (trixie-backports)
#
# The tree is a minimal Debian with systemd as PID 1, journald, D-Bus, systemd-resolved,
# openvpn, nftables, iproute2 and resolvconf's tools left out (the tests bring their own where
# they need one). It is kept under $GUEST_CACHE (default /var/cache/openvpnserv-rs/guests),
# keyed by the suite and a hash of this script, so a change here builds a new one; a build
# cut short leaves no `.complete` marker and is built again. Guests boot it with
# `--volatile=overlay`: nothing a test does is written to it.
#
# Mirrors come from this machine's own apt sources, read at run time (never named here).
set -euo pipefail
SUITE="${1:?usage: guest-rootfs.sh bookworm|trixie}"
CACHE="${GUEST_CACHE:-/var/cache/openvpnserv-rs/guests}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KEY="$(sha256sum "$HERE/guest-rootfs.sh" | cut -c1-12)"
ROOT="$CACHE/$SUITE-$KEY"

if [ -f "$ROOT.complete" ]; then
    echo "$ROOT"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "guest-rootfs: building a guest needs root (debootstrap)" >&2
    exit 1
fi
case "$SUITE" in
    bookworm | trixie) ;;
    *)
        echo "guest-rootfs: unknown suite $SUITE (bookworm or trixie)" >&2
        exit 2
        ;;
esac
for tool in debootstrap systemd-nspawn; do
    command -v "$tool" >/dev/null || {
        echo "guest-rootfs: $tool is missing (scripts/setup.sh installs it)" >&2
        exit 1
    }
done

# The first Debian archive among this machine's apt sources (deb822 or one-line format).
mirror_of() {
    local want="$1"
    {
        grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ for (i = 2; i <= NF; i++) print $i }'
        grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            sed -E 's/\[[^]]*\]//' | awk '{ print $2 }'
    } | grep -E "/$want/?\$" | head -n1 || true
}
MIRROR="$(mirror_of debian)"
SECURITY="$(mirror_of debian-security)"
if [ -z "$MIRROR" ]; then
    echo "guest-rootfs: no Debian archive in this machine's apt sources; cannot debootstrap" >&2
    exit 1
fi

mkdir -p "$CACHE"
# Older builds of this suite (another key) are of no use any more.
for old in "$CACHE/$SUITE"-*; do
    [ "$old" = "$ROOT" ] || [ "$old" = "$ROOT.complete" ] || rm -rf --one-file-system "$old"
done
rm -rf --one-file-system "$ROOT" "$ROOT.tmp"
mkdir -p "$ROOT.tmp"
echo "guest-rootfs: building $SUITE in $ROOT (debootstrap, a few minutes)" >&2
INCLUDE=systemd,systemd-sysv,dbus,systemd-resolved,libnss-systemd,iproute2,nftables,procps,iputils-ping,ca-certificates
[ "$SUITE" = bookworm ] && INCLUDE+=,openvpn
nice -n 10 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT.tmp" "$MIRROR" \
    >"$CACHE/$SUITE.debootstrap.log" 2>&1 || {
    echo "guest-rootfs: debootstrap failed; the end of $CACHE/$SUITE.debootstrap.log:" >&2
    tail -n 30 "$CACHE/$SUITE.debootstrap.log" >&2
    exit 1
}

{
    echo "deb $MIRROR $SUITE main"
    [ -n "$SECURITY" ] && echo "deb $SECURITY $SUITE-security main"
    [ "$SUITE" = trixie ] && echo "deb $MIRROR $SUITE-backports main"
} >"$ROOT.tmp/etc/apt/sources.list"
in_root() { nice -n 10 chroot "$ROOT.tmp" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
# apt inside the tree resolves names with this machine's resolver meanwhile (systemd-resolved's
# package made resolv.conf a link to its stub, which does not run in a chroot).
rm -f "$ROOT.tmp/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf"
in_root apt-get update -qq
if [ "$SUITE" = trixie ]; then
    # openvpn 2.7 comes from trixie-backports.
    in_root apt-get install -y -qq --no-install-recommends -t trixie-backports openvpn >/dev/null
fi
rm -f "$ROOT.tmp/etc/resolv.conf"
# resolved answers on the stub, as on an installed Debian with systemd-resolved.
ln -sf ../run/systemd/resolve/stub-resolv.conf "$ROOT.tmp/etc/resolv.conf"
# A fresh machine id at each boot; no login prompts on the console; no network management
# (the tests give the guest its network); openvpn's own units stay off.
: >"$ROOT.tmp/etc/machine-id"
echo ovsguest >"$ROOT.tmp/etc/hostname"
in_root systemctl mask console-getty.service getty@.service systemd-networkd.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
in_root apt-get clean
mv "$ROOT.tmp" "$ROOT"
touch "$ROOT.complete"
echo "$ROOT"
