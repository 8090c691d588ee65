//! Properties of the Linux network core over arbitrary input: the parsers are total, and the
//! policy never lets a change leave the session's tun except the one host route that keeps
//! a host on its current path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openvpnserv_core::linux::dns::{Backend, DnsState};
use openvpnserv_core::linux::iproute::{describe, parse};
use openvpnserv_core::linux::journal::{self, AddressSpec, Change, Journal, Record, RouteSpec};
use openvpnserv_core::linux::policy::{decide, Action, Facts, Path, Tun};
use openvpnserv_proto::channel::{
    AddressMsg, InetAddr, Interface, Request, RouteMsg, SetMtuMsg, AF_INET, AF_INET6,
};
use proptest::prelude::*;

const TUN: u32 = 7;
const UNDERLAY: u32 = 2;

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        // Mostly addresses near the test's networks, so that matches happen.
        (0u8..4, any::<u8>()).prop_map(|(a, b)| IpAddr::V4(Ipv4Addr::new(
            10,
            [8, 9, 200, 77][a as usize],
            0,
            b
        ))),
        any::<u32>().prop_map(|x| IpAddr::V4(Ipv4Addr::from(x))),
        any::<u128>().prop_map(|x| IpAddr::V6(Ipv6Addr::from(x))),
        Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    ]
}

fn any_iface() -> impl Strategy<Value = Interface> {
    prop_oneof![
        Just(Interface::by_name("tun7").unwrap()),
        Just(Interface::by_index(TUN, "").unwrap()),
        Just(Interface::by_name("").unwrap()),
        Just(Interface::by_name("veth-c").unwrap()),
        Just(Interface::by_index(UNDERLAY, "").unwrap()),
        Just(Interface::by_index(TUN, "veth-c").unwrap()),
        "[a-z0-9]{0,20}".prop_map(|n| Interface::by_name(&n).unwrap()),
    ]
}

fn family(a: IpAddr) -> i16 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn any_request() -> impl Strategy<Value = Request> {
    let route = (
        any::<bool>(),
        any_ip(),
        prop_oneof![0i32..140, Just(32), Just(128)],
        any_ip(),
        any_iface(),
        -2i32..100,
        any::<bool>(),
    )
        .prop_map(|(add, dst, len, gw, iface, metric, same_family)| {
            let gw = if same_family && gw.is_ipv4() != dst.is_ipv4() {
                dst
            } else {
                gw
            };
            let m = RouteMsg {
                family: family(dst),
                prefix: InetAddr::from_ip(dst),
                prefix_len: len,
                gateway: InetAddr::from_ip(gw),
                iface,
                metric,
            };
            if add {
                Request::AddRoute(m)
            } else {
                Request::DelRoute(m)
            }
        });
    let address = (
        any::<bool>(),
        any_ip(),
        0i32..140,
        any_iface(),
        any::<i16>(),
    )
        .prop_map(|(add, a, len, iface, f)| {
            let m = AddressMsg {
                family: if f % 3 == 0 { f } else { family(a) },
                address: InetAddr::from_ip(a),
                prefix_len: len,
                iface,
            };
            if add {
                Request::AddAddress(m)
            } else {
                Request::DelAddress(m)
            }
        });
    let mtu = (any_iface(), any::<i32>()).prop_map(|(iface, mtu)| {
        Request::SetMtu(SetMtuMsg {
            iface,
            family: AF_INET,
            mtu,
        })
    });
    prop_oneof![4 => route, 2 => address, 1 => mtu]
}

/// The kernel's path to any host: via 10.200.0.1 on the underlay.
#[allow(clippy::unnecessary_wraps)] // the policy asks for an Option
fn underlay(_: IpAddr) -> Option<Path> {
    Some(Path {
        gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1))),
        oif: UNDERLAY,
        dev: "veth-c".into(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_policy_keeps_every_change_on_the_tun(requests in proptest::collection::vec(any_request(), 1..40)) {
        let tun = Tun { name: "tun7".into(), ifindex: TUN };
        let mut journal = Journal::new();
        journal.intend(Change::Tun { name: "tun7".into() });
        journal.intend(Change::Address(AddressSpec {
            ifindex: TUN,
            dev: "tun7".into(),
            addr: IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2)),
            prefix_len: 24,
        }));
        let dns = DnsState::default();
        let mut outside = 0;
        for r in &requests {
            let before: Vec<u64> = journal.live().map(|(s, _)| s).collect();
            let decision = decide(Facts { tun: &tun, journal: &journal, dns: &dns, caps: Backend::Resolved.caps() }, r, &underlay);
            match decision {
                Ok(Action::AddAddress(a)) => {
                    prop_assert_eq!(a.ifindex, TUN);
                    journal.intend(Change::Address(a));
                }
                Ok(Action::AddRoute(rt)) => {
                    if rt.oif != TUN {
                        // The one exception: a host route along the current path.
                        let full = if rt.dst.is_ipv4() { 32 } else { 128 };
                        prop_assert_eq!(rt.prefix_len, full);
                        prop_assert_eq!(Some(rt.clone()), underlay(rt.dst).map(|p| RouteSpec {
                            dst: rt.dst, prefix_len: full, gateway: p.gateway, oif: p.oif, dev: p.dev, metric: rt.metric,
                        }));
                        outside += 1;
                        prop_assert!(outside <= 1, "more than one route outside the tunnel");
                    }
                    journal.intend(Change::Route(rt));
                }
                Ok(Action::DelAddress(seq) | Action::DelRoute(seq)) => {
                    // Only what this session added.
                    prop_assert!(before.contains(&seq));
                    if let Some(Change::Route(rt)) = journal.get(seq).map(|e| e.change.clone()) {
                        if rt.oif != TUN {
                            outside -= 1;
                        }
                    }
                    journal.forget(seq);
                }
                Ok(Action::SetLink { mtu }) => prop_assert!((68..=65535).contains(&mtu)),
                Ok(_) | Err(_) => {}
            }
        }
    }

    #[test]
    fn ip_command_parsing_is_total_and_reads_back(
        words in proptest::collection::vec(
            prop_oneof![
                Just("-6".to_owned()), Just("addr".to_owned()), Just("route".to_owned()),
                Just("link".to_owned()), Just("add".to_owned()), Just("del".to_owned()),
                Just("set".to_owned()), Just("dev".to_owned()), Just("tun0".to_owned()),
                Just("via".to_owned()), Just("metric".to_owned()), Just("up".to_owned()),
                Just("mtu".to_owned()), Just("local".to_owned()), Just("peer".to_owned()),
                Just("10.8.0.0/24".to_owned()), Just("10.8.0.1".to_owned()), Just("fd00::/64".to_owned()),
                Just("fd00::1".to_owned()), Just("7".to_owned()), Just("1500".to_owned()),
                "[ -~]{0,12}",
            ],
            0..10,
        )
    ) {
        if let Ok(requests) = parse(&words) {
            for r in requests.iter().filter(|r| !matches!(r, Request::SetMtu(_))) {
                let text = describe(r);
                let again = parse(&text.split_whitespace().map(String::from).collect::<Vec<_>>());
                prop_assert_eq!(again, Ok(vec![r.clone()]), "{}", text);
            }
        }
    }

    #[test]
    fn journal_parsing_is_total(text in "[ -~\n]{0,400}") {
        let (records, bad) = journal::parse(&text);
        prop_assert!(records.len() + bad <= text.lines().count() + 1);
        let _ = Journal::from_records(&records).undo_plan();
    }

    #[test]
    fn journal_records_round_trip(dsts in proptest::collection::vec(any_ip(), 0..20), cut in 0usize..2000) {
        let mut j = Journal::new();
        let mut text = Record::Session { id: 1, uid: 1, user: "u".into() }.to_line();
        for (i, dst) in dsts.iter().enumerate() {
            let (seq, r) = j.intend(Change::Route(RouteSpec {
                dst: *dst, prefix_len: 32, gateway: None, oif: TUN, dev: "tun7".into(), metric: Some(i as u32),
            }));
            text += &r.to_line();
            if i % 3 == 0 {
                text += &j.forget(seq).to_line();
            } else {
                text += &j.confirm(seq).to_line();
            }
        }
        let (records, bad) = journal::parse(&text);
        prop_assert_eq!(bad, 0);
        prop_assert_eq!(Journal::from_records(&records).undo_plan(), j.undo_plan());
        // A write torn anywhere loses at most the record it tore.
        let cut = cut.min(text.len());
        let (torn, bad) = journal::parse(&text[..cut]);
        prop_assert!(bad <= 1);
        prop_assert!(torn.len() <= records.len());
    }
}
