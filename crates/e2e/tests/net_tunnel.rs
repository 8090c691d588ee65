//! Stock openvpn 2.6, run unprivileged by the service, gets a working tunnel; everything the
//! service changed is undone however the session ends (issue: Linux network operations,
//! "Shown end to end"). Run as root by the e2e stage, one at a time.

use std::time::Duration;

use nix::sys::signal::Signal;
use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::netns::{Netns, CLIENT_DEV};
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::vpn::{assert_same, kill_and_wait, Dns, Vpn, ORIGINAL_RESOLV_CONF};

/// Pings `dst` `count` times from the client namespace; asserts that it works and that every
/// echo request left through `tun` (its transmit counter grew by at least `count`).
fn ping_through(ns: &Netns, tun: &str, dst: &str, count: u32) {
    assert_eq!(
        ns.route_dev(dst).as_deref(),
        Some(tun),
        "ip route get {dst}"
    );
    let before = ns.tx_packets(tun);
    let n = count.to_string();
    let (ok, out) = ns.try_exec("ping", &["-n", "-c", &n, "-i", "0.2", "-W", "2", dst]);
    assert!(ok, "ping {dst} failed:\n{out}");
    let sent = ns.tx_packets(tun) - before;
    assert!(
        sent >= u64::from(count),
        "only {sent} packets left through {tun}"
    );
}

fn nft_tables(ns: &Netns) -> String {
    ns.exec("nft", &["list", "tables"])
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn pushed_routes_and_direct_dns_then_a_clean_disconnect_leaves_nothing() {
    let vpn = Vpn::new(&Pushes::default(), false, Dns::Direct);
    vpn.config("client.ovpn", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("client.ovpn");
    let tun = vpn.tun().expect("the session's tun");
    let c = &vpn.topo.client;

    // The address and both pushed routes, on the tun the service made for the user.
    let addrs = c.ip(&["addr", "show", "dev", &tun]);
    assert!(addrs.contains("inet 10.8.0.2/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd00:8::1000/64"), "{addrs}");
    let link = c.ip(&["-d", "link", "show", "dev", &tun]);
    assert!(link.contains("mtu 1500") && link.contains(",UP"), "{link}");
    ping_through(c, &tun, "10.9.0.1", 3);
    ping_through(c, &tun, "fd00:9::1", 3);

    // DNS: resolv.conf (here a bind mount in the service's mount namespace) names the VPN's.
    let rc = std::fs::read_to_string(&vpn.resolv_conf).unwrap();
    assert!(
        rc.contains("nameserver 10.8.0.53") && rc.contains("nameserver fd00:8::53"),
        "{rc}"
    );
    assert!(rc.contains("search corp.example"), "{rc}");
    // No full tunnel, no block-outside-dns in the config: no leak block.
    assert!(!nft_tables(c).contains("openvpnserv"), "{}", nft_tables(c));

    // A clean disconnect: openvpn ends on SIGTERM and runs its down hooks.
    kill_and_wait(pid, Signal::SIGTERM);
    vpn.wait_undone(1);
    assert_eq!(
        std::fs::read_to_string(&vpn.resolv_conf).unwrap(),
        ORIGINAL_RESOLV_CONF
    );
    assert_same(&before, &vpn.snapshot(), &vpn);
    let log = vpn.service.log();
    assert!(
        !log.contains("refused"),
        "nothing of stock openvpn is refused:\n{log}"
    );
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn full_tunnel_def1_with_resolvconf_and_leak_block_then_kill_9_of_openvpn() {
    let pushes = Pushes {
        def1: true,
        ..Pushes::default()
    };
    let vpn = Vpn::new(&pushes, true, Dns::FakeResolvconf);
    vpn.config("full.ovpn", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("full.ovpn");
    let tun = vpn.tun().expect("the session's tun");
    let c = &vpn.topo.client;

    // Everything goes through the tunnel, except the server itself (the one host route,
    // along the path it had).
    let routes = c.ip(&["route", "show"]);
    assert!(
        routes.contains(&format!("0.0.0.0/1 via 10.8.0.1 dev {tun}")),
        "{routes}"
    );
    assert!(
        routes.contains(&format!("128.0.0.0/1 via 10.8.0.1 dev {tun}")),
        "{routes}"
    );
    assert!(
        routes.contains("default via 10.200.0.1"),
        "the default route stays: {routes}"
    );
    assert_eq!(c.route_dev("10.200.0.1").as_deref(), Some(CLIENT_DEV));
    ping_through(c, &tun, "198.51.100.7", 3);
    ping_through(c, &tun, "10.9.0.1", 2);

    // DNS through resolvconf (auto-detected: no bus, a resolvconf on PATH).
    let state = vpn.resolvconf_state();
    assert_eq!(state, format!("{{\"{tun}\"}}\n"));
    let log = std::fs::read_to_string(&vpn.resolvconf_log).unwrap();
    assert!(log.contains("nameserver 10.8.0.53"), "{log}");
    // Full tunnel with VPN DNS: DNS outside the tunnel is blocked while connected.
    let tables = nft_tables(c);
    assert!(tables.contains("table inet openvpnserv_"), "{tables}");
    let (ok, out) = c.try_exec(
        "sh",
        &[
            "-c",
            "nft list table inet $(nft list tables | grep -o 'openvpnserv_[^ ]*')",
        ],
    );
    assert!(
        ok && out.contains("dport 53") && out.contains(&tun),
        "{out}"
    );
    // ... and it drops: DNS to a server outside the tunnel is refused by the kernel, while
    // another port to the same host still goes out.
    let send = |port: u16| {
        let code = format!(
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('10.200.0.1', {port}))"
        );
        c.try_exec("python3", &["-c", &code])
    };
    let (ok, out) = send(53);
    assert!(
        !ok && out.contains("Operation not permitted"),
        "DNS leaked: {out}"
    );
    let (ok, out) = send(54);
    assert!(ok, "{out}");

    // openvpn dies without running any hook.
    kill_and_wait(pid, Signal::SIGKILL);
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn def1_ipv6_with_resolved_then_kill_9_of_the_service_and_a_restart() {
    let pushes = Pushes {
        def1_ipv6: true,
        dns_option: true,
        ..Pushes::default()
    };
    let mut vpn = Vpn::new(&pushes, true, Dns::MockResolved);
    vpn.config("v6.ovpn", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("v6.ovpn");
    let tun = vpn.tun().expect("the session's tun");
    let c = &vpn.topo.client;

    ping_through(c, &tun, "2001:db8:77::1", 3);
    ping_through(c, &tun, "198.51.100.7", 2);
    let routes6 = c.ip(&["-6", "route", "show"]);
    for r in ["::/3", "2000::/4", "3000::/4", "fc00::/7"] {
        assert!(
            routes6.contains(&format!("{r} dev {tun}")),
            "{r}: {routes6}"
        );
    }

    // resolved (a mock on a private bus, auto-detected) got the servers, the search domain
    // and the resolve-domain as a routing domain, and the link is not the default DNS route.
    let ifindex: i32 = c
        .exec("cat", &[&format!("/sys/class/net/{tun}/ifindex")])
        .trim()
        .parse()
        .unwrap();
    let bus = vpn.bus.as_ref().unwrap();
    let link = bus.links().get(&ifindex).cloned().unwrap_or_default();
    assert!(link.contains("dns=10.8.0.53,fd00:8::53"), "{link}");
    assert!(link.contains("domains=corp.example,~lab.example"), "{link}");
    assert!(link.contains("default-route=false"), "{link}");

    // The service dies hard; its openvpn child is told to stop (PDEATHSIG) and its hooks find
    // no service. Everything stays until the service starts again and replays its journal.
    vpn.service.crash();
    assert!(eventually(Duration::from_secs(20), || {
        !openvpnserv_e2e::fixture::alive(pid)
    }));
    assert!(
        vpn.tun().is_some(),
        "the crash left the tun (to be undone at restart)"
    );
    vpn.restart_service();
    let log = vpn.service.log();
    assert!(log.contains("undoing what session"), "{log}");
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn net30_topology_gets_a_peer_route_and_works() {
    let pushes = Pushes {
        net30: true,
        ..Pushes::default()
    };
    let vpn = Vpn::new(&pushes, false, Dns::Direct);
    vpn.config("p2p.ovpn", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("p2p.ovpn");
    let tun = vpn.tun().expect("the session's tun");
    let c = &vpn.topo.client;
    // net30: the local address alone, and the peer (the VPN gateway) routed on the tun.
    let addrs = c.ip(&["addr", "show", "dev", &tun]);
    assert!(addrs.contains("inet 10.10.0.6/32"), "{addrs}");
    let routes = c.ip(&["route", "show"]);
    assert!(routes.contains(&format!("10.10.0.5 dev {tun}")), "{routes}");
    assert!(
        routes.contains(&format!("10.9.0.0/24 via 10.10.0.5 dev {tun}")),
        "{routes}\n{}\n{}",
        vpn.service.log(),
        vpn.client_log("p2p.ovpn")
    );
    ping_through(c, &tun, "10.9.0.1", 3);
    kill_and_wait(pid, Signal::SIGTERM);
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn service_stop_undoes_every_session() {
    let mut vpn = Vpn::new(&Pushes::default(), false, Dns::FakeResolvconf);
    vpn.config("one.ovpn", "");
    vpn.config("two.ovpn", "");
    let before = vpn.snapshot();
    let first = vpn.connect("one.ovpn");
    let second = vpn.connect("two.ovpn");
    let links = vpn.topo.client.ip(&["-o", "link", "show"]);
    assert_eq!(
        links.matches(": ovs").count(),
        2,
        "two sessions, two tuns: {links}"
    );
    let status = vpn.service.stop();
    assert!(status.success(), "the service exits 0 on SIGTERM: {status}");
    for pid in [first, second] {
        assert!(
            !openvpnserv_e2e::fixture::alive(pid),
            "openvpn {pid} outlived the service"
        );
    }
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn sigusr1_restart_reconfigures_the_same_tun() {
    let vpn = Vpn::new(&Pushes::default(), false, Dns::Direct);
    vpn.config("restart.ovpn", "");
    let before = vpn.snapshot();
    let pid = vpn.connect("restart.ovpn");
    let tun = vpn.tun().expect("the session's tun");
    // A soft restart: openvpn runs its down hooks, reconnects and runs the up hooks again
    // on the same (persistent) tun; the session deletes and re-adds its changes.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGUSR1);
    let again = eventually(Duration::from_secs(30), || {
        vpn.client_log("restart.ovpn")
            .matches("Initialization Sequence Completed")
            .count()
            >= 2
    });
    assert!(again, "no reconnect:\n{}", vpn.client_log("restart.ovpn"));
    assert_eq!(vpn.tun().as_deref(), Some(tun.as_str()));
    ping_through(&vpn.topo.client, &tun, "10.9.0.1", 2);
    let rc = std::fs::read_to_string(&vpn.resolv_conf).unwrap();
    assert!(rc.contains("nameserver 10.8.0.53"), "{rc}");
    kill_and_wait(pid, Signal::SIGTERM);
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
    assert!(
        !vpn.service.log().contains("refused"),
        "{}",
        vpn.service.log()
    );
}
