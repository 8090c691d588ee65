#!/usr/bin/env bash
# Builds the Debian package of the Linux service: target/debian/openvpnserv_<version>_<arch>.deb
#
#   scripts/package.sh             release build, then the package
#   NO_BUILD=1 scripts/package.sh  package what target/release holds
#
# What it holds: the service, its hook and `iservice` (stripped), the systemd units, a
# commented example of the settings file (/etc/openvpn/iservice.toml, a conffile: every line
# commented, so the built-in defaults apply until an administrator changes one), the README
# and docs/LINUX.md under /usr/share/doc/openvpnserv/, and maintainer scripts that create the
# group `openvpn-admin` and enable and start openvpnserv.socket. Install it with
# `apt-get install ./target/debian/openvpnserv_*.deb` (apt pulls in openvpn and nftables).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --quiet --release -p openvpnserv -p iservice --bins
fi
for b in openvpnserv openvpnserv-hook iservice; do
    [ -x "target/release/$b" ] || {
        echo "package: target/release/$b is missing; run without NO_BUILD" >&2
        exit 1
    }
done

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
ARCH="$(dpkg --print-architecture)"
OUT=target/debian
STAGE="$OUT/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"

put() { # put MODE SOURCE DEST
    install -D -m "$1" "$2" "$STAGE/$3"
}
for b in openvpnserv openvpnserv-hook; do
    put 0755 "target/release/$b" "usr/sbin/$b"
done
put 0755 target/release/iservice usr/bin/iservice
strip --strip-unneeded "$STAGE/usr/sbin/openvpnserv" "$STAGE/usr/sbin/openvpnserv-hook" \
    "$STAGE/usr/bin/iservice"
for u in dist/systemd/*; do
    put 0644 "$u" "usr/lib/systemd/system/$(basename "$u")"
done
put 0644 dist/iservice.toml etc/openvpn/iservice.toml
DOC=usr/share/doc/openvpnserv
put 0644 README.md "$DOC/README.md"
put 0644 docs/LINUX.md "$DOC/LINUX.md"
put 0644 docs/ISERVICE.md "$DOC/ISERVICE.md"
mkdir -p "$STAGE/$DOC"
{
    echo "openvpnserv-rs: the OpenVPN Interactive Service, in Rust."
    echo
    echo "License: $(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
} >"$STAGE/$DOC/copyright"
mkdir -p "$STAGE/etc/openvpn/client"

# --- iservice completions and manual page -------------------------------------------------
# `iservice completions SHELL` and `iservice man` are being added to the client; when the
# built iservice has them, their output is packaged here. Until then this block installs
# nothing (the subcommands answer with a usage error).
if target/release/iservice completions bash >/dev/null 2>&1; then
    mkdir -p "$STAGE/usr/share/bash-completion/completions" "$STAGE/usr/share/zsh/vendor-completions" \
        "$STAGE/usr/share/fish/vendor_completions.d"
    target/release/iservice completions bash >"$STAGE/usr/share/bash-completion/completions/iservice"
    target/release/iservice completions zsh >"$STAGE/usr/share/zsh/vendor-completions/_iservice"
    target/release/iservice completions fish >"$STAGE/usr/share/fish/vendor_completions.d/iservice.fish"
fi
if target/release/iservice man >/dev/null 2>&1; then
    mkdir -p "$STAGE/usr/share/man/man1"
    target/release/iservice man | gzip -9n >"$STAGE/usr/share/man/man1/iservice.1.gz"
fi
# -------------------------------------------------------------------------------------------

# Shared-library dependencies of the binaries, as dpkg-shlibdeps computes them.
shlibs="$(
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/debian"
    printf 'Source: openvpnserv\n\nPackage: openvpnserv\nArchitecture: any\n' >"$tmp/debian/control"
    bins=("$PWD/$STAGE/usr/sbin/openvpnserv" "$PWD/$STAGE/usr/sbin/openvpnserv-hook" "$PWD/$STAGE/usr/bin/iservice")
    (cd "$tmp" && dpkg-shlibdeps -O "${bins[@]}" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
    rm -rf "$tmp"
)"
[ -n "$shlibs" ] || shlibs="libc6, libgcc-s1"

cp dist/debian/postinst dist/debian/prerm dist/debian/postrm "$STAGE/DEBIAN/"
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"
echo /etc/openvpn/iservice.toml >"$STAGE/DEBIAN/conffiles"
SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: openvpnserv
Version: $VERSION
Architecture: $ARCH
Maintainer: openvpnserv-rs developers <openvpnserv@example.invalid>
Installed-Size: $SIZE
Depends: $shlibs, openvpn (>= 2.6), nftables, adduser
Recommends: systemd-resolved | resolvconf
Section: net
Priority: optional
Homepage: https://example.invalid/openvpnserv-rs
Description: OpenVPN Interactive Service: VPN for users who are not administrators
 A root service that ordinary users ask, over /run/openvpn/service, to start openvpn as
 themselves. It checks who they are and what they ask for, creates their tun device, and
 performs every network change openvpn requests (addresses, routes, DNS through
 systemd-resolved, resolvconf or resolv.conf, DNS-leak blocking with nftables), undoing
 them when openvpn ends, when the service stops and after a crash. Includes the iservice
 client command.
EOF
# Reproducible: every file dated at the last commit.
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
find "$STAGE" -exec touch -h -d "@$epoch" {} +
deb="$OUT/openvpnserv_${VERSION}_${ARCH}.deb"
rm -f "$OUT"/openvpnserv_*.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
rm -rf "$STAGE"
echo "$deb"
