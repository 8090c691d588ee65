//! Hostile channel requests, written to the channel (fd 3) by an `up` script in the user's
//! config — code the user controls, as design §3 assumes. Every one is refused and nothing
//! outside the session's tun changes; an oversized message ends the session, and that too
//! leaves nothing behind.

use std::net::IpAddr;
use std::time::Duration;

use openvpnserv_core::linux::iproute::{address, iface, mtu, route};
use openvpnserv_e2e::fixture::eventually;
use openvpnserv_e2e::netns::CLIENT_DEV;
use openvpnserv_e2e::openvpn::Pushes;
use openvpnserv_e2e::service::to_hex;
use openvpnserv_e2e::vpn::{assert_same, Dns, Vpn};
use openvpnserv_proto::channel::{
    Codec, DnsCfgMsg, Envelope, FixedStr, InetAddr, Interface, Request, AF_INET,
};
use openvpnserv_proto::codes::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, ERROR_MESSAGE_DATA, ERROR_MESSAGE_TYPE,
};

const WRITER: &str = r"
import json, os, socket, struct, sys
# The messages name the tun by a 15-byte placeholder; put openvpn's `dev` in its place.
dev = os.environ['dev'].encode().ljust(15, b'\0')
s = socket.socket(fileno=3)
s.settimeout(3)
PLACEHOLDER = b'@TUN@@@@@@@@@@@'
out = []
for line in open(sys.argv[1]):
    name, data = line.split()
    s.send(bytes.fromhex(data).replace(PLACEHOLDER, dev))
    try:
        ack = s.recv(64)
    except socket.timeout:
        ack = b''
    if len(ack) == 32:
        out.append([name, struct.unpack_from('<I', ack, 24)[0], struct.unpack_from('<i', ack, 16)[0]])
    else:  # no ack: the service dropped the channel
        out.append([name, None, None])
json.dump(out, open(sys.argv[2], 'w'))
";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn encode(r: Request) -> Vec<u8> {
    Codec::NATIVE
        .encode(&Envelope {
            message_id: 7,
            request: r,
        })
        .unwrap()
}

/// The hostile messages, with the ack code each must get (`None`: no ack, the channel is
/// dropped).
/// Stands for the tun's name in the messages (15 bytes, the longest name).
const PLACEHOLDER: &str = "@TUN@@@@@@@@@@@";

#[allow(clippy::too_many_lines)] // one list, one entry per case
fn messages(tun: &str, veth_index: u32) -> Vec<(&'static str, Vec<u8>, Option<u32>)> {
    let veth = iface(CLIENT_DEV).unwrap();
    let none = iface("").unwrap();
    let tun = iface(tun).unwrap();
    let denied = Some(ERROR_ACCESS_DENIED);
    let mut injection = DnsCfgMsg {
        iface: tun.clone(),
        domains: FixedStr::new("corp.example\nnameserver 6.6.6.6").unwrap(),
        family: AF_INET,
        addr_len: 1,
        addr: [InetAddr::default(); 4],
    };
    injection.addr[0] = InetAddr::v4("10.8.0.53".parse().unwrap());
    let mut on_veth_dns = injection.clone();
    on_veth_dns.iface = veth.clone();
    on_veth_dns.domains = FixedStr::new("").unwrap();
    let mut wrong_size = encode(route(true, ip("10.9.9.0"), 24, None, &tun, None));
    wrong_size.truncate(100);
    wrong_size[8..16].copy_from_slice(&100u64.to_le_bytes());
    let mut unknown = encode(Request::RegisterDns);
    unknown[0..4].copy_from_slice(&99u32.to_le_bytes());
    let mut garbage = vec![0xa5u8; 200];
    garbage[8..16].copy_from_slice(&200u64.to_le_bytes());
    vec![
        (
            "address-on-underlay",
            encode(address(true, ip("10.200.0.77"), 24, &veth)),
            denied,
        ),
        (
            "address-on-underlay-by-index",
            encode(address(
                true,
                ip("10.200.0.78"),
                24,
                &Interface::by_index(veth_index, "").unwrap(),
            )),
            denied,
        ),
        (
            "delete-underlay-route",
            encode(route(false, ip("10.200.0.0"), 24, None, &veth, None)),
            denied,
        ),
        (
            "delete-default-route",
            encode(route(false, ip("0.0.0.0"), 0, None, &none, None)),
            denied,
        ),
        (
            "underlay-to-other-network",
            encode(route(
                true,
                ip("10.77.0.0"),
                16,
                Some(ip("10.200.0.1")),
                &none,
                None,
            )),
            denied,
        ),
        (
            "underlay-default-route",
            encode(route(
                true,
                ip("0.0.0.0"),
                0,
                Some(ip("10.200.0.1")),
                &veth,
                Some(1),
            )),
            denied,
        ),
        (
            "host-route-via-another-gateway",
            encode(route(
                true,
                ip("192.0.2.1"),
                32,
                Some(ip("10.200.0.99")),
                &veth,
                None,
            )),
            denied,
        ),
        ("mtu-of-underlay", encode(mtu(&veth, false, 1280)), denied),
        (
            "dns-on-underlay",
            encode(Request::AddDnsCfg(on_veth_dns)),
            denied,
        ),
        (
            "dns-injection",
            encode(Request::AddDnsCfg(injection)),
            Some(ERROR_INVALID_PARAMETER),
        ),
        (
            "short",
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            Some(ERROR_MESSAGE_DATA),
        ),
        ("wrong-size", wrong_size, Some(ERROR_MESSAGE_DATA)),
        ("unknown-type", unknown, Some(ERROR_MESSAGE_TYPE)),
        ("garbage", garbage, Some(ERROR_MESSAGE_TYPE)),
        // Larger than any request: the service drops the channel (CVE-2024-27459).
        ("oversized", vec![0u8; 4000], None),
    ]
}

/// The underlay as the user must not be able to change it.
fn underlay(vpn: &Vpn) -> String {
    let c = &vpn.topo.client;
    let routes: String = c
        .ip(&["route", "show", "table", "all"])
        .lines()
        .chain(c.ip(&["-6", "route", "show", "table", "all"]).lines())
        .filter(|l| !l.contains(" ovs"))
        .fold(String::new(), |acc, l| acc + l + "\n");
    format!(
        "{}{}{routes}",
        c.ip(&["-d", "link", "show", "dev", CLIENT_DEV]),
        c.ip(&["addr", "show", "dev", CLIENT_DEV])
    )
}

#[test]
#[ignore = "needs root: namespaces, users, tun devices, real openvpn (e2e stage)"]
fn hostile_channel_requests_are_refused_and_change_nothing() {
    let vpn = Vpn::new(&Pushes::default(), true, Dns::Direct);
    let before = vpn.snapshot();
    let underlay_before = underlay(&vpn);
    let c = &vpn.topo.client;
    let veth_index: u32 = c
        .exec("cat", &[&format!("/sys/class/net/{CLIENT_DEV}/ifindex")])
        .trim()
        .parse()
        .unwrap();
    let writer = vpn.dir.write("writer.py", WRITER, 0o644);
    let results = vpn.logs.join("results.json");
    let script = vpn.dir.write(
        "hostile-up.sh",
        &format!(
            "#!/bin/sh\nexec /usr/bin/python3 {} {} {}\n",
            writer.display(),
            vpn.dir.join("messages.txt").display(),
            results.display()
        ),
        0o755,
    );
    let expected = messages(PLACEHOLDER, veth_index);
    let text: String = expected.iter().fold(String::new(), |acc, (n, bytes, _)| {
        acc + n + " " + &to_hex(bytes) + "\n"
    });
    vpn.dir.write("messages.txt", &text, 0o644);
    vpn.config("hostile.ovpn", &format!("up \"{}\"", script.display()));
    let t = openvpnserv_e2e::service::probe(
        openvpnserv_e2e::service::probe_command(&vpn.user),
        &vpn.service.socket,
        &openvpnserv_e2e::service::Send::Startup {
            dir: vpn.config_dir.display().to_string(),
            options: "--config hostile.ovpn".into(),
            stdin: String::new(),
        },
        Duration::from_secs(5),
        true,
    );
    let pid = t.pid();
    assert!(
        eventually(Duration::from_secs(30), || results.exists()),
        "the hostile script wrote no results.\nclient log:\n{}\nservice log:\n{}",
        vpn.client_log("hostile.ovpn"),
        vpn.service.log()
    );
    let got: Vec<(String, Option<u32>, Option<i32>)> =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((name, code, id), (want_name, _, want)) in got.iter().zip(&expected) {
        assert_eq!(name, want_name);
        assert_eq!(code, want, "{name}: ack {code:?}, id {id:?}");
        // The ack echoes the request's id, or -1 when the header could not be read.
        let want_id = match (name.as_str(), want) {
            (_, None) => None,
            ("short", _) => Some(-1),
            ("garbage", _) => Some(i32::from_le_bytes([0xa5; 4])),
            _ => Some(7),
        };
        assert_eq!(*id, want_id, "{name}");
    }
    assert_eq!(underlay(&vpn), underlay_before, "the underlay changed");
    let log = vpn.service.log();
    assert!(
        log.contains("refused") && log.contains(&vpn.user.name) && log.contains("session"),
        "refusals are logged with user and session:\n{log}"
    );
    // The oversized message ended the session; everything is undone.
    assert!(eventually(Duration::from_secs(20), || {
        !openvpnserv_e2e::fixture::alive(pid)
    }));
    vpn.wait_undone(1);
    assert_same(&before, &vpn.snapshot(), &vpn);
}
