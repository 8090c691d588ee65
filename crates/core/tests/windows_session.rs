//! The Windows channel handlers (spec §5.6) and their undo (§5.7), through the recording fake.

use openvpnserv_core::windows::fake::{RecordingNet, RegData};
use openvpnserv_core::windows::net::InterfaceDns;
use openvpnserv_core::windows::session::{
    interface_key, startup_cleanup, SessionConfig, WinSession, GPOL_DNS_KEY, SYSTEM_TCPIP_KEY,
};
use openvpnserv_proto::channel::{
    AddressMsg, CreateAdapterMsg, DnsCfgMsg, FixedStr, InetAddr, Interface, NrptCfgMsg, Request,
    RouteMsg, SetMtuMsg, WfpBlockMsg, WinsCfgMsg, AF_INET, AF_INET6, INDEX_INVALID,
};
use openvpnserv_proto::codes::{
    ERROR_INVALID_PARAMETER, ERROR_MESSAGE_DATA, ERROR_NOT_FOUND, ERROR_OBJECT_ALREADY_EXISTS,
};

const GUID: &str = "{00000000-0000-0000-0000-000000000007}";

fn session() -> (WinSession<RecordingNet>, RecordingNet) {
    let net = RecordingNet::new();
    let mut s = WinSession::new(
        net.clone(),
        SessionConfig {
            exe_path: r"C:\OpenVPN\bin\openvpn.exe".into(),
            bin_dir: r"C:\OpenVPN\bin\".into(),
        },
    );
    s.set_pid(4242);
    (s, net)
}

fn tun() -> Interface {
    Interface::by_index(7, "tun0").unwrap()
}

fn v4(a: [u8; 4]) -> InetAddr {
    InetAddr::v4(a.into())
}

fn address(n: u8) -> AddressMsg {
    AddressMsg {
        family: AF_INET,
        address: v4([10, 8, 0, n]),
        prefix_len: 24,
        iface: tun(),
    }
}

fn route(dest: [u8; 4]) -> RouteMsg {
    RouteMsg {
        family: AF_INET,
        prefix: v4(dest),
        prefix_len: 24,
        gateway: v4([10, 8, 0, 1]),
        iface: tun(),
        metric: -1,
    }
}

fn dns(family: i16, addrs: &[InetAddr], domains: &str) -> DnsCfgMsg {
    let mut addr = [InetAddr::default(); 4];
    addr[..addrs.len()].copy_from_slice(addrs);
    DnsCfgMsg {
        iface: Interface::by_name("tun0").unwrap(),
        domains: FixedStr::new(domains).unwrap(),
        family,
        addr_len: addrs.len() as u32,
        addr,
    }
}

#[test]
fn addresses_and_routes_are_undone_newest_first() {
    let (mut s, net) = session();
    assert_eq!(s.handle(&Request::AddAddress(address(2))), 0);
    assert_eq!(s.handle(&Request::AddAddress(address(3))), 0);
    assert_eq!(s.handle(&Request::DelAddress(address(2))), 0);
    assert_eq!(s.handle(&Request::AddRoute(route([192, 168, 5, 0]))), 0);
    net.clear_transcript();
    s.finish();
    assert_eq!(
        net.transcript(),
        [
            "del_address 10.8.0.3|/24 index 7",
            "del_route 192.168.5.0|/24 via 10.8.0.1| index 7 metric 4294967295",
        ]
    );
}

#[test]
fn alias_is_resolved_to_a_luid_and_unknown_alias_fails() {
    let (mut s, net) = session();
    let mut m = address(2);
    m.iface = Interface::by_name("tun0").unwrap();
    assert_eq!(s.handle(&Request::AddAddress(m.clone())), 0);
    assert_eq!(net.transcript(), ["add_address 10.8.0.2|/24 luid 70"]);
    m.iface = Interface::by_name("nope").unwrap();
    assert_eq!(s.handle(&Request::AddAddress(m)), ERROR_NOT_FOUND);
    assert_eq!(s.undo().address.len(), 1);
}

#[test]
fn route_exists_is_passed_through_and_not_undone() {
    let (mut s, net) = session();
    net.fail("add_route", ERROR_OBJECT_ALREADY_EXISTS);
    assert_eq!(
        s.handle(&Request::AddRoute(route([10, 0, 0, 0]))),
        ERROR_OBJECT_ALREADY_EXISTS
    );
    assert!(s.undo().is_empty());
    // A route by name with an empty name keeps the invalid index (no alias lookup).
    let mut r = route([10, 1, 0, 0]);
    r.iface = Interface::by_index(INDEX_INVALID, "").unwrap();
    s.handle(&Request::AddRoute(r));
    assert!(net.transcript()[1].ends_with("index 4294967295 metric 4294967295"));
}

#[test]
fn wfp_block_sets_metric_3_and_restores_it() {
    let (mut s, net) = session();
    net.set_metric(7, AF_INET, 25);
    let add = Request::AddWfpBlock(WfpBlockMsg {
        flags: 1,
        iface: tun(),
    });
    assert_eq!(s.handle(&add), 0);
    assert_eq!(net.open_engines(), 1);
    let t = net.transcript();
    assert_eq!(t[0], "wfp_open 8 filters");
    assert!(t.contains(&"set_metric v4 index 7 = 3".to_owned()), "{t:?}");
    assert!(t.contains(&"set_metric v6 index 7 = 3".to_owned()), "{t:?}");
    net.clear_transcript();
    // Del pops the newest block whatever index it names.
    let del = Request::DelWfpBlock(WfpBlockMsg {
        flags: 0,
        iface: Interface::by_index(99, "").unwrap(),
    });
    assert_eq!(s.handle(&del), 0);
    assert_eq!(
        net.transcript(),
        [
            "wfp_close 1",
            "set_metric v4 index 7 = 25",
            "set_metric v6 index 7 = 0"
        ]
    );
    assert_eq!(net.open_engines(), 0);
    // Del without add succeeds and does nothing.
    net.clear_transcript();
    assert_eq!(s.handle(&del), 0);
    assert!(net.transcript().is_empty());
}

#[test]
fn wfp_block_rolls_back_when_the_v4_metric_fails() {
    let (mut s, net) = session();
    net.fail("set_metric_v4", 87);
    let add = Request::AddWfpBlock(WfpBlockMsg {
        flags: 2,
        iface: tun(),
    });
    assert_eq!(s.handle(&add), 87);
    assert_eq!(net.open_engines(), 0);
    assert!(s.undo().is_empty());
    let filters: Vec<String> = net
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("  filter"))
        .collect();
    assert_eq!(filters.len(), 8);
    assert!(
        filters[0].contains("RemotePortDns"),
        "dns-only: {}",
        filters[0]
    );
}

#[test]
fn wfp_block_is_closed_at_session_end() {
    let (mut s, net) = session();
    s.handle(&Request::AddWfpBlock(WfpBlockMsg {
        flags: 1,
        iface: tun(),
    }));
    s.finish();
    assert_eq!(net.open_engines(), 0);
}

#[test]
fn dns_servers_and_domains_then_removal() {
    let (mut s, net) = session();
    let key4 = interface_key(GUID, false);
    let key6 = interface_key(GUID, true);
    let add4 = dns(AF_INET, &[v4([10, 8, 0, 1]), v4([10, 8, 0, 2])], "");
    assert_eq!(s.handle(&Request::AddDnsCfg(add4.clone())), 0);
    assert_eq!(
        net.value(&key4, "NameServer"),
        Some(RegData::Sz("10.8.0.1,10.8.0.2".into()))
    );
    let add6 = dns(AF_INET6, &[InetAddr::v6("fd00::1".parse().unwrap())], "");
    assert_eq!(s.handle(&Request::AddDnsCfg(add6)), 0);
    assert_eq!(
        net.value(&key6, "NameServer"),
        Some(RegData::Sz("fd00::1".into()))
    );
    // No global list: the domains go to the interface's own key.
    assert_eq!(
        s.handle(&Request::AddDnsCfg(dns(
            AF_INET,
            &[],
            "corp.example,b.example"
        ))),
        0
    );
    assert_eq!(
        net.value(&key4, "SearchList"),
        Some(RegData::Sz("corp.example,b.example".into()))
    );
    assert_eq!(
        s.handle(&Request::DelDnsCfg(dns(
            AF_INET,
            &[],
            "corp.example,b.example"
        ))),
        0
    );
    assert_eq!(
        net.value(&key4, "SearchList"),
        Some(RegData::Sz(String::new()))
    );
    s.finish();
    assert_eq!(
        net.value(&key4, "NameServer"),
        Some(RegData::Sz(String::new()))
    );
    assert_eq!(
        net.value(&key6, "NameServer"),
        Some(RegData::Sz(String::new()))
    );
}

#[test]
fn dns_cfg_needs_a_name() {
    let (mut s, _net) = session();
    let mut m = dns(AF_INET, &[v4([1, 1, 1, 1])], "");
    m.iface = Interface::by_index(7, "").unwrap();
    assert_eq!(s.handle(&Request::AddDnsCfg(m)), ERROR_MESSAGE_DATA);
    // addr_len is clamped to 4.
    let (mut s, net) = session();
    let mut m = dns(AF_INET, &[v4([1, 1, 1, 1]); 4], "");
    m.addr_len = 1000;
    assert_eq!(s.handle(&Request::AddDnsCfg(m)), 0);
    assert_eq!(
        net.value(&interface_key(GUID, false), "NameServer"),
        Some(RegData::Sz("1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1".into()))
    );
}

/// Two sessions share the system list; each takes back exactly its own tokens, and the
/// original list and `InitialSearchList` come back when both are gone.
#[test]
fn cve_2026_13379_two_sessions_share_the_system_search_list() {
    let net = RecordingNet::new();
    net.preset_sz(SYSTEM_TCPIP_KEY, "SearchList", "corp.local");
    let config = SessionConfig {
        exe_path: "x".into(),
        bin_dir: String::new(),
    };
    let mut one = WinSession::new(net.clone(), config.clone());
    let mut two = WinSession::new(net.clone(), config);
    one.handle(&Request::AddDnsCfg(dns(AF_INET, &[], "vpn.corp.local")));
    two.handle(&Request::AddDnsCfg(dns(
        AF_INET,
        &[],
        "test.vpn.corp.local,vpn.corp.local",
    )));
    let list = |n: &RecordingNet| n.value(SYSTEM_TCPIP_KEY, "SearchList");
    assert_eq!(
        list(&net),
        Some(RegData::Sz(
            "corp.local,vpn.corp.local,test.vpn.corp.local,vpn.corp.local".into()
        ))
    );
    assert_eq!(
        net.value(SYSTEM_TCPIP_KEY, "InitialSearchList"),
        Some(RegData::Sz("corp.local".into()))
    );
    one.finish();
    assert_eq!(
        list(&net),
        Some(RegData::Sz(
            "corp.local,vpn.corp.local,test.vpn.corp.local".into()
        ))
    );
    assert!(net.value(SYSTEM_TCPIP_KEY, "InitialSearchList").is_some());
    two.finish();
    assert_eq!(list(&net), Some(RegData::Sz("corp.local".into())));
    assert_eq!(net.value(SYSTEM_TCPIP_KEY, "InitialSearchList"), None);
}

#[test]
fn policy_search_list_wins_and_notifies_policy() {
    let (mut s, net) = session();
    net.preset_sz(GPOL_DNS_KEY, "SearchList", "gp.example");
    s.handle(&Request::AddDnsCfg(dns(AF_INET, &[], "vpn.example")));
    assert_eq!(
        net.value(GPOL_DNS_KEY, "SearchList"),
        Some(RegData::Sz("gp.example,vpn.example".into()))
    );
    assert_eq!(net.transcript().last().unwrap(), "notify_dns gpol=true");
}

fn nrpt(addresses: &[&str], resolve: &str, search: &str, flags: u32) -> NrptCfgMsg {
    let mut slots: [FixedStr<48>; 8] = Default::default();
    for (slot, a) in slots.iter_mut().zip(addresses) {
        *slot = FixedStr::new(a).unwrap();
    }
    NrptCfgMsg {
        iface: Interface::by_name("tun0").unwrap(),
        addresses: slots,
        resolve_domains: FixedStr::new(resolve).unwrap(),
        search_domains: FixedStr::new(search).unwrap(),
        flags,
    }
}

#[test]
fn nrpt_rules_with_domains_and_their_removal() {
    let (mut s, net) = session();
    let base = r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
    let m = nrpt(&["10.8.0.1", "fd00::1"], ".a.com,.b.com", "", 1);
    assert_eq!(s.handle(&Request::AddNrptCfg(m.clone())), 0);
    let rule = format!(r"{base}\OpenVPNDNSRouting-4242");
    assert_eq!(
        net.value(&rule, "Name"),
        Some(RegData::MultiSz(vec![".a.com".into(), ".b.com".into()]))
    );
    assert_eq!(
        net.value(&rule, "GenericDNSServers"),
        Some(RegData::Sz("10.8.0.1;fd00::1".into()))
    );
    assert_eq!(net.value(&rule, "ConfigOptions"), Some(RegData::Dword(0xA)));
    assert_eq!(
        net.value(&rule, "DNSSECValidationRequired"),
        Some(RegData::Dword(1))
    );
    // Resolve domains and no search domains: NameServer is left alone.
    assert_eq!(net.value(&interface_key(GUID, false), "NameServer"), None);
    assert_eq!(s.handle(&Request::DelNrptCfg(m)), 0);
    assert!(!net.has_key(&rule));
    assert!(s.undo().is_empty());
}

#[test]
fn nrpt_catch_all_gets_exclude_rules_and_name_servers() {
    let (mut s, net) = session();
    net.set_other_interfaces(vec![
        InterfaceDns {
            servers: vec!["192.168.1.1".into()],
            domains: vec!["home.lan".into(), "vpn.example".into()],
        },
        InterfaceDns {
            servers: vec![],
            domains: vec!["nodns.lan".into()],
        },
    ]);
    let m = nrpt(&["10.8.0.1", "fd00::53"], "", "vpn.example", 0);
    assert_eq!(s.handle(&Request::AddNrptCfg(m)), 0);
    let base = r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
    assert_eq!(
        net.value(&format!(r"{base}\OpenVPNDNSRouting-4242"), "Name"),
        Some(RegData::MultiSz(vec![".".into()]))
    );
    let x = format!(r"{base}\OpenVPNDNSRoutingX-00-4242");
    assert_eq!(
        net.value(&x, "Name"),
        Some(RegData::MultiSz(vec![".home.lan".into()]))
    );
    assert!(!net.has_key(&format!(r"{base}\OpenVPNDNSRoutingX-01-4242")));
    assert_eq!(
        net.value(&interface_key(GUID, false), "NameServer"),
        Some(RegData::Sz("10.8.0.1".into()))
    );
    assert_eq!(
        net.value(&interface_key(GUID, true), "NameServer"),
        Some(RegData::Sz("fd00::53".into()))
    );
    assert_eq!(
        net.value(&interface_key(GUID, false), "SearchList"),
        Some(RegData::Sz("vpn.example".into()))
    );
    s.finish();
    assert!(!net.has_key(&x));
    assert!(!net.has_key(&format!(r"{base}\OpenVPNDNSRouting-4242")));
    assert_eq!(
        net.value(&interface_key(GUID, false), "SearchList"),
        Some(RegData::Sz(String::new()))
    );
}

#[test]
fn nrpt_refuses_missing_address_and_name() {
    let (mut s, _net) = session();
    assert_eq!(
        s.handle(&Request::AddNrptCfg(nrpt(&[], "", "", 0))),
        ERROR_MESSAGE_DATA
    );
    let mut m = nrpt(&["1.1.1.1"], "", "", 0);
    m.iface = Interface::by_index(7, "").unwrap();
    assert_eq!(s.handle(&Request::AddNrptCfg(m)), ERROR_MESSAGE_DATA);
}

#[test]
fn wins_commands_and_undo() {
    let (mut s, net) = session();
    let mut addr = [InetAddr::default(); 4];
    addr[0] = v4([10, 8, 0, 5]);
    addr[1] = v4([10, 8, 0, 6]);
    let m = WinsCfgMsg {
        iface: tun(),
        addr_len: 2,
        addr,
    };
    assert_eq!(s.handle(&Request::AddWinsCfg(m.clone())), 0);
    let netsh = r"run C:\windows\system32\netsh.exe";
    assert_eq!(
        net.transcript(),
        [
            format!("{netsh} [netsh interface ip delete wins 7  all] 30s"),
            format!("{netsh} [netsh interface ip set wins 7 static 10.8.0.5] 30s"),
            format!("{netsh} [netsh interface ip add wins 7  10.8.0.6] 30s"),
        ]
    );
    net.clear_transcript();
    s.finish();
    assert_eq!(
        net.transcript(),
        [format!(
            "{netsh} [netsh interface ip delete wins 7  all] 30s"
        )]
    );
    let (mut s, _) = session();
    let mut zero = m.clone();
    zero.iface = Interface::by_index(0, "tun0").unwrap();
    assert_eq!(s.handle(&Request::AddWinsCfg(zero)), ERROR_MESSAGE_DATA);
    // The index is a C int upstream (`%d`): the invalid index -1 is written as -1, never
    // as 4294967295.
    let (mut s, net) = session();
    let mut invalid = m;
    invalid.iface = Interface::by_index(u32::MAX, "").unwrap();
    assert_eq!(s.handle(&Request::DelWinsCfg(invalid)), 0);
    assert_eq!(
        net.transcript(),
        [format!(
            "{netsh} [netsh interface ip delete wins -1  all] 30s"
        )]
    );
}

#[test]
fn helpers_dhcp_mtu_adapter() {
    let (mut s, net) = session();
    net.fail("run", 1);
    assert_eq!(s.handle(&Request::EnableDhcp(tun())), 1);
    assert_eq!(
        s.handle(&Request::SetMtu(SetMtuMsg {
            iface: tun(),
            family: AF_INET6,
            mtu: 1400
        })),
        0
    );
    assert_eq!(
        s.handle(&Request::CreateAdapter(CreateAdapterMsg {
            adapter_type: 1
        })),
        1
    );
    assert_eq!(
        s.handle(&Request::CreateAdapter(CreateAdapterMsg {
            adapter_type: 2
        })),
        ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        net.transcript(),
        [
            r#"run C:\windows\system32\netsh.exe [netsh interface ipv4 set address name="7" source=dhcp] 5s"#,
            "set_mtu v6 index 7 = 1400",
            r"run C:\OpenVPN\bin\tapctl.exe [tapctl create --hwid root\tap0901] 10s",
        ]
    );
}

#[test]
fn startup_cleanup_removes_rules_and_restores_lists() {
    let net = RecordingNet::new();
    let base = r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
    net.preset_sz(
        &format!(r"{base}\OpenVPNDNSRouting-1"),
        "GenericDNSServers",
        "x",
    );
    net.preset_sz(
        &format!(r"{base}\OpenVPNDNSRoutingX-00-2"),
        "GenericDNSServers",
        "x",
    );
    net.preset_sz(&format!(r"{base}\SomeoneElse"), "GenericDNSServers", "x");
    net.preset_sz(SYSTEM_TCPIP_KEY, "SearchList", "a,vpn");
    net.preset_sz(SYSTEM_TCPIP_KEY, "InitialSearchList", "a");
    let mut n = net.clone();
    assert!(startup_cleanup(&mut n));
    assert!(!net.has_key(&format!(r"{base}\OpenVPNDNSRouting-1")));
    assert!(!net.has_key(&format!(r"{base}\OpenVPNDNSRoutingX-00-2")));
    assert!(net.has_key(&format!(r"{base}\SomeoneElse")));
    assert_eq!(
        net.value(SYSTEM_TCPIP_KEY, "SearchList"),
        Some(RegData::Sz("a".into()))
    );
    assert_eq!(net.value(SYSTEM_TCPIP_KEY, "InitialSearchList"), None);
    let mut n = net.clone();
    assert!(!startup_cleanup(&mut n));
}
