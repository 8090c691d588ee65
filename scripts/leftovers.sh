#!/bin/sh
# Lists what the end-to-end tests create and must remove: test users and groups, network
# namespaces, links in this namespace, service run directories, test directories, and
# processes of test users, the systemd stage's guests and their mounts. One line per thing;
# nothing when all is clean.
# test-all.sh lists before and after the e2e stage and fails on anything new.
set -u
getent passwd | cut -d: -f1 | grep '^ovse2e' | sed 's/^/user /'
getent group | cut -d: -f1 | grep '^ovse2e' | sed 's/^/group /'
ip netns list 2>/dev/null | cut -d' ' -f1 | grep '^ovse2e' | sed 's/^/netns /'
ip -o link show 2>/dev/null | cut -d: -f2 | tr -d ' ' | cut -d@ -f1 | grep -E '^(ovs|veth-)' | sed 's/^/link /'
for d in /run/openvpne2e* /run/openvpndemo* /dev/openvpne2e* /dev/openvpndemo* /tmp/ovse2e-* \
    /var/cache/openvpnserv-rs/guests/*.tmp; do
    [ -e "$d" ] && echo "path $d"
done
for uid in $(getent passwd | grep '^ovse2e' | cut -d: -f3); do
    pgrep -u "$uid" | sed "s/^/process of uid $uid: /"
done
# Services, openvpn and fakes started from the tests' directories (after their user is gone).
pgrep -af 'ovse2e|fake-openvpn' | grep -v '^[0-9]* grep ' | sed 's/^/process /'
# The systemd stage's guests (systemd-nspawn, each with its own mounts).
pgrep -af 'systemd-nspawn' | sed 's/^/guest /'
grep -s ' /var/cache/openvpnserv-rs/guests' /proc/mounts | cut -d' ' -f2 | sed 's/^/mount /'
exit 0
