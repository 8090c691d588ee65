//! What openvpn 2.7 changed, and the DNS and routing rules both versions share (the issue
//! on openvpn 2.7 on Linux). The e2e stage runs this file with this machine's openvpn 2.6 and
//! again with `OPENVPN=$(scripts/openvpn27.sh)`; the tests named `openvpn_2_7_*` need 2.7
//! and run only in that second pass (`--skip openvpn_2_7_` in the first).

use std::time::Duration;

use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::openvpn::{client_is_2_7, Pushes};
use openvpnserv_e2e::vpn::{assert_same, Dns, Vpn};

fn ifindex(vpn: &Vpn, tun: &str) -> i32 {
    vpn.topo
        .client
        .exec("cat", &[&format!("/sys/class/net/{tun}/ifindex")])
        .trim()
        .parse()
        .unwrap()
}

fn resolved_link(vpn: &Vpn, tun: &str) -> String {
    let bus = vpn.bus.as_ref().expect("a mock resolved");
    bus.links()
        .get(&ifindex(vpn, tun))
        .cloned()
        .unwrap_or_default()
}

/// Two `--dns` server profiles: DNS over TLS on port 853 first, then plain DNS.
fn two_profiles() -> Pushes {
    Pushes {
        extra: "push \"dns server 1 address 10.8.0.53:853\"\npush \"dns server 1 transport DoT\"\n\
                push \"dns server 1 resolve-domains lab.example\"\n\
                push \"dns server 2 address 10.8.0.54\"\npush \"dns server 2 resolve-domains lab.example\"\n\
                push \"dns search-domains corp.example\"\n"
            .into(),
        ..Pushes::default()
    }
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn dns_profiles_each_backend_gets_the_first_it_can_apply() {
    // systemd-resolved takes DNS over TLS on port 853, with split DNS.
    let mut vpn = Vpn::new(&two_profiles(), false, Dns::MockResolved);
    vpn.config("p.ovpn", "");
    let before = vpn.snapshot();
    vpn.connect("p.ovpn");
    let tun = vpn.tun().expect("tun");
    let link = resolved_link(&vpn, &tun);
    assert!(link.contains("dns=10.8.0.53:853"), "{link}");
    assert!(link.contains("dnsovertls=yes"), "{link}");
    assert!(link.contains("domains=corp.example,~lab.example"), "{link}");
    assert!(link.contains("default-route=false"), "{link}");
    assert!(vpn.service.stop().success());
    assert_same(&before, &vpn.snapshot(), &vpn);

    // resolvconf cannot do TLS: the plain profile, and the log says why the first was skipped.
    let vpn = Vpn::new(&two_profiles(), false, Dns::FakeResolvconf);
    vpn.config("p.ovpn", "");
    vpn.connect("p.ovpn");
    let log = std::fs::read_to_string(&vpn.resolvconf_log).unwrap();
    assert!(log.contains("nameserver 10.8.0.54"), "{log}");
    assert!(!log.contains("10.8.0.53"), "{log}");
    assert!(
        vpn.service
            .log()
            .contains("DNS server profile 1 skipped: DNS over TLS needs systemd-resolved"),
        "{}",
        vpn.service.log()
    );
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn route_noexec_in_the_config_with_def1_ipv6_routes_neither_family() {
    let pushes = Pushes {
        def1_ipv6: true,
        ..Pushes::default()
    };
    let mut vpn = Vpn::new(&pushes, true, Dns::FakeResolvconf);
    vpn.config("n.ovpn", "route-noexec");
    let before = vpn.snapshot();
    vpn.connect("n.ovpn");
    let tun = vpn.tun().expect("tun");
    let c = &vpn.topo.client;
    let v4 = c.ip(&["route", "show"]);
    let v6 = c.ip(&["-6", "route", "show"]);
    for r in ["0.0.0.0/1", "128.0.0.0/1", "10.9.0.0/24"] {
        assert!(!v4.contains(r), "{r} applied despite route-noexec:\n{v4}");
    }
    for r in ["::/3", "2000::/4", "fd00:9::/64"] {
        assert!(!v6.contains(r), "{r} applied despite route-noexec:\n{v6}");
    }
    // The tunnel's own addresses are there, and the user is told what happened.
    assert!(c.ip(&["addr", "show", "dev", &tun]).contains("10.8.0.2"));
    assert!(
        eventually(Duration::from_secs(5), || vpn
            .client_log("n.ovpn")
            .contains("route-noexec is set")),
        "{}",
        vpn.client_log("n.ovpn")
    );
    assert!(vpn.service.stop().success());
    assert_same(&before, &vpn.snapshot(), &vpn);
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn 2.7 (e2e stage, 2.7 pass)"]
fn openvpn_2_7_full_tunnel_without_failed_route_attempts() {
    assert!(client_is_2_7(), "run with OPENVPN=$(scripts/openvpn27.sh)");
    let pushes = Pushes {
        def1_ipv6: true,
        dns_option: true,
        ..Pushes::default()
    };
    let mut vpn = Vpn::new(&pushes, true, Dns::MockResolved);
    vpn.config("f.ovpn", "");
    let before = vpn.snapshot();
    vpn.connect("f.ovpn");
    let tun = vpn.tun().expect("tun");
    let c = &vpn.topo.client;
    let v4 = c.ip(&["route", "show"]);
    assert!(
        v4.contains(&format!("0.0.0.0/1 via 10.8.0.1 dev {tun}")),
        "{v4}"
    );
    assert!(
        v4.contains(&format!("128.0.0.0/1 via 10.8.0.1 dev {tun}")),
        "{v4}"
    );
    let log = vpn.client_log("f.ovpn");
    for bad in [
        "Operation not permitted",
        "ERROR: Linux route",
        "route addition fails",
    ] {
        assert!(!log.contains(bad), "{bad:?} in the client log:\n{log}");
    }
    assert!(log.contains("DCO) is off for this session"), "{log}");
    // DNS arrived once, through --dns-updown, with the resolve-domain as a routing domain.
    let link = resolved_link(&vpn, &tun);
    assert_eq!(link.matches("dns=").count(), 1, "{link}");
    assert!(link.contains("domains=corp.example,~lab.example"), "{link}");
    assert!(vpn.service.stop().success());
    assert_same(&before, &vpn.snapshot(), &vpn);
}

/// Sends one command to the server's management interface (on loopback in the server's
/// namespace) and returns its answer line.
fn management(vpn: &Vpn, port: u16, command: &str) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; read -r greeting <&3; printf '%s\\n' \"$0\" >&3; read -r answer <&3; printf '%s' \"$answer\""
    );
    vpn.topo.server.exec("bash", &["-c", &script, command])
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn 2.7 (e2e stage, 2.7 pass)"]
fn openvpn_2_7_push_update_goes_through_the_service_and_is_undone() {
    assert!(client_is_2_7(), "run with OPENVPN=$(scripts/openvpn27.sh)");
    let pushes = Pushes {
        dns_option: true,
        extra: "management 127.0.0.1 7505\n".into(),
        ..Pushes::default()
    };
    let mut vpn = Vpn::new(&pushes, false, Dns::MockResolved);
    vpn.config("u.ovpn", "");
    let before = vpn.snapshot();
    vpn.connect("u.ovpn");
    let tun = vpn.tun().expect("tun");
    let answer = management(
        &vpn,
        7505,
        "push-update-broad \"route 10.77.0.0 255.255.255.0, dns server 1 address 10.8.0.99\"",
    );
    assert!(answer.starts_with("SUCCESS"), "{answer}");
    let c = &vpn.topo.client;
    assert!(
        eventually(Duration::from_secs(15), || c
            .ip(&["route", "show"])
            .contains("10.77.0.0/24")),
        "the updated route did not arrive:\n{}\n{}",
        c.ip(&["route", "show"]),
        vpn.client_log("u.ovpn")
    );
    let link = || resolved_link(&vpn, vpn.tun().as_deref().unwrap_or(&tun));
    assert!(
        eventually(Duration::from_secs(10), || link().contains("10.8.0.99")),
        "{}\nclient log:\n{}\nservice log:\n{}",
        link(),
        vpn.client_log("u.ovpn"),
        vpn.service.log()
    );
    assert!(vpn.service.stop().success());
    assert_same(&before, &vpn.snapshot(), &vpn);
}
