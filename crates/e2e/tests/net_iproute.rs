//! `--iproute` mode end to end (issue 4): where the openvpn build takes `--iproute`, the
//! service detects it and appends `--iproute <hook>`, so openvpn's exact `ip` commands reach
//! the service as channel requests. Debian's openvpn is built without it, so a fake openvpn
//! that says it has it replays, through the real hook, the `ip` argv that openvpn 2.6.14
//! (rebuilt with `--enable-iproute2`) ran for `redirect-gateway def1 ipv6`
//! (`linux-captures.txt`, scenario C), its script hooks as openvpn runs them, and hostile
//! commands of the user's own; the real service applies them in the client namespace.

use std::time::Duration;

use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::netns::{CLIENT_DEV, SERVER_IP};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::vpn::{assert_same, kill_and_wait, Dns, Openvpn, Setup, Vpn};
use serde_json::Value;

/// Connect, as captured (scenario C), with the script hooks where openvpn runs them.
const CONNECT: &str = "\
ip link set dev tunX up mtu 1500
ip link set dev tunX up
ip addr add dev tunX 10.8.0.2/24
ip link set dev tunX up mtu 1500
ip link set dev tunX up
ip -6 addr add fd00:8::1000/64 dev tunX
script up
ip route add 10.200.0.1/32 dev veth-c via 10.200.0.1
ip route add 0.0.0.0/1 via 10.8.0.1
ip route add 128.0.0.0/1 via 10.8.0.1
ip route add 10.9.0.0/24 via 10.8.0.1
ip -6 route add fd00:9::/64 dev tunX
ip -6 route add ::/3 dev tunX
ip -6 route add 2000::/4 dev tunX
ip -6 route add 3000::/4 dev tunX
ip -6 route add fc00::/7 dev tunX
script route-up";

/// What the user's own program in openvpn's place could ask the hook for: changes to the
/// underlay, routes via it, a second pinned host route; each must be refused.
const HOSTILE: &str = "\
ip addr add dev veth-c 10.99.0.1/24
ip route add 10.55.0.0/16 via 10.200.0.1
ip route add 10.200.0.9/32 dev veth-c via 10.200.0.1
ip route add 10.200.0.0/25 dev veth-c
ip route del 10.200.0.0/24
ip link set dev veth-c up mtu 1200
ip -6 addr add fd00:99::1/64 dev veth-c";

/// The teardown, as captured.
const TEARDOWN: &str = "\
script route-pre-down
ip route del 10.9.0.0/24
ip route del 10.200.0.1/32
ip route del 0.0.0.0/1
ip route del 128.0.0.0/1
ip -6 route del fd00:9::/64 dev tunX
ip -6 route del ::/3 dev tunX
ip -6 route del 2000::/4 dev tunX
ip -6 route del 3000::/4 dev tunX
ip -6 route del fc00::/7 dev tunX
ip addr del dev tunX 10.8.0.2/24
ip -6 addr del fd00:8::1000/64 dev tunX
script down";

/// A world whose openvpn says it takes `--iproute`, with a default route to override.
fn world() -> Vpn {
    Vpn::with(&Setup {
        openvpn: Openvpn::FakeIproute,
        ..Setup::new(&Pushes::default(), true, Dns::FakeResolvconf)
    })
}

/// Writes the session's config: the pushed DNS as openvpn's script environment, the
/// connect commands, the hostile ones, a marker, and the teardown after SIGTERM.
fn session_config(vpn: &Vpn) -> std::path::PathBuf {
    let record = vpn.logs.join("iproute.json");
    let directives = format!(
        "record {record}\n\
         env foreign_option_1 dhcp-option DNS 10.8.0.53\n\
         env foreign_option_2 dhcp-option DOMAIN corp.example\n\
         {CONNECT}\n{HOSTILE}\n\
         touch {done}\n\
         wait\n\
         after-term\n\
         {TEARDOWN}\n",
        record = record.display(),
        done = vpn.logs.join("up.done").display(),
    );
    vpn.fake_config("iproute.conf", &directives);
    record
}

/// The record's `commands`: what ran and its exit code.
fn commands(path: &std::path::Path) -> Vec<(String, i64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let record: Value = serde_json::from_str(&text).unwrap();
    record["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_owned(), c[1].as_i64().unwrap()))
        .collect()
}

/// The `ip` words of a command line the fake ran (the hook's path dropped).
fn words(line: &str) -> String {
    line.split_once(' ').map_or("", |(_, w)| w).to_owned()
}

/// Starts the session and waits until its connect steps are done; returns openvpn's pid
/// and what the connect steps ran.
fn connect(vpn: &Vpn) -> (u32, Vec<(String, i64)>) {
    let record = session_config(vpn);
    let pid = vpn
        .start("iproute.conf")
        .unwrap_or_else(|| panic!("service unreachable:\n{}", vpn.service.log()))
        .pid();
    let up = eventually(Duration::from_secs(20), || {
        vpn.logs.join("up.done").exists() && record.exists()
    });
    assert!(up, "the connect steps did not end:\n{}", vpn.service.log());
    let ran = commands(&record);
    let argv = std::fs::read_to_string(&record).unwrap();
    assert!(
        argv.contains("\"--iproute\"") && !argv.contains("--ifconfig-noexec"),
        "the service did not use --iproute mode: {argv}"
    );
    (pid, ran)
}

/// Checks the connected state: every captured command and script succeeded, every hostile
/// one failed, and the namespace routes as a `def1 ipv6` tunnel must.
fn check_connected(vpn: &Vpn, ran: &[(String, i64)]) {
    let tun = vpn.tun().expect("the session's tun");
    let expected = CONNECT.lines().count() + HOSTILE.lines().count();
    assert_eq!(ran.len(), expected, "{ran:#?}");
    let (good, bad) = ran.split_at(CONNECT.lines().count());
    for (line, code) in good {
        assert_eq!(*code, 0, "{line} failed:\n{}", vpn.service.log());
    }
    for ((line, code), hostile) in bad.iter().zip(HOSTILE.lines()) {
        assert_eq!(words(line), hostile.trim_start_matches("ip "));
        assert_ne!(*code, 0, "{line} was not refused");
    }
    let log = vpn.service.log();
    assert!(
        log.contains("refused"),
        "refusals are logged with the session:\n{log}"
    );

    let addrs = vpn.topo.client.ip(&["addr", "show", "dev", &tun]);
    assert!(
        addrs.contains("10.8.0.2/24") && addrs.contains("fd00:8::1000/64"),
        "{addrs}"
    );
    let route = |dst: &str| vpn.topo.client.route_dev(dst);
    for dst in ["198.51.100.7", "10.9.0.1", "2001:db8::1", "fd00:9::1"] {
        assert_eq!(route(dst).as_deref(), Some(tun.as_str()), "{dst}");
    }
    // The server itself stays on the underlay (the pinned host route).
    assert_eq!(route(SERVER_IP).as_deref(), Some(CLIENT_DEV));
    assert!(
        vpn.resolvconf_state().contains(&tun),
        "DNS from the up script: {}",
        vpn.resolvconf_state()
    );

    // Nothing hostile took effect.
    let underlay = vpn.topo.client.ip(&["addr", "show", "dev", CLIENT_DEV]);
    assert!(
        !underlay.contains("10.99.0.1")
            && !underlay.contains("fd00:99::1")
            && !underlay.contains("mtu 1200"),
        "{underlay}"
    );
    let routes = vpn.topo.client.ip(&["route", "show", "table", "all"]);
    for (needle, what) in [
        ("10.55.0.0/16", "a route via the underlay"),
        ("10.200.0.9", "a second host route via the underlay"),
        ("10.200.0.0/25", "a route on the underlay"),
        ("default via 10.200.0.1", "the default route"),
        ("10.200.0.0/24 dev veth-c", "the underlay route"),
    ] {
        let present = routes.contains(needle);
        let want = !what.starts_with('a');
        assert_eq!(present, want, "{what} ({needle}):\n{routes}");
    }
}

/// A world with one session connected and checked; the snapshot taken before it.
struct Connected {
    vpn: Vpn,
    before: String,
    pid: u32,
    ran: Vec<(String, i64)>,
}

fn connected() -> Connected {
    let vpn = world();
    let before = vpn.snapshot();
    let (pid, ran) = connect(&vpn);
    check_connected(&vpn, &ran);
    Connected {
        vpn,
        before,
        pid,
        ran,
    }
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn iproute_mode_applies_openvpns_ip_commands_and_its_own_teardown() {
    let Connected {
        vpn,
        before,
        pid,
        ran,
    } = connected();
    let tun = vpn.tun().unwrap();

    // SIGTERM: openvpn's teardown runs through the same path, every delete of its own
    // changes accepted; then the service finds nothing left but the tun.
    kill_and_wait(pid, nix::sys::signal::Signal::SIGTERM);
    let all = commands(&vpn.logs.join("iproute.json.teardown"));
    let teardown = &all[ran.len()..];
    assert_eq!(teardown.len(), TEARDOWN.lines().count(), "{teardown:#?}");
    for ((line, code), expected) in teardown.iter().zip(TEARDOWN.lines()) {
        let expected = expected
            .trim_start_matches("ip ")
            .trim_start_matches("script ")
            .replace("tunX", &tun);
        assert!(words(line).starts_with(&expected), "{line} for {expected}");
        assert_eq!(*code, 0, "{line} failed:\n{}", vpn.service.log());
    }
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices (e2e stage)"]
fn iproute_mode_changes_are_undone_after_kill_9() {
    let c = connected();
    kill_and_wait(c.pid, nix::sys::signal::Signal::SIGKILL);
    c.vpn.wait_undone(1);
    assert_same(&c.before, &c.vpn.snapshot(), &c.vpn);
}
