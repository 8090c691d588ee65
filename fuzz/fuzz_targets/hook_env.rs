//! The hook's view of openvpn: script environments (the variables openvpn 2.6 exports to
//! every script, and the `dns_*` set 2.7 gives its `--dns-updown` command) and `--iproute`
//! argv turn into channel requests
//! without panicking, the same way every time, and every request encodes and decodes to
//! itself (what the hook sends is what the service reads).
#![no_main]
use libfuzzer_sys::fuzz_target;
use openvpnserv_core::linux::hook::{translate, translate_dns, Env, Options, Phase};
use openvpnserv_core::linux::iproute;
use openvpnserv_proto::channel::{Codec, Envelope, Request};

/// The variables openvpn sets for scripts (2.6), plus 2.7's, with indexed names expanded.
const NAMES: &[&str] = &[
    "dev", "tun_mtu", "ifconfig_local", "ifconfig_netmask", "ifconfig_remote",
    "ifconfig_ipv6_local", "ifconfig_ipv6_netbits", "ifconfig_ipv6_remote", "route_vpn_gateway",
    "route_net_gateway", "net_gateway_ipv6", "trusted_ip", "trusted_port", "redirect_gateway",
    "route_redirect_gateway_ipv4", "route_redirect_gateway_ipv6", "script_type",
    "dns_search_domain_1", "dns_search_domain_2", "dns_server_1_address_1",
    "dns_server_1_address_2", "dns_server_1_port_1", "dns_server_1_transport",
    "dns_server_1_dnssec", "dns_server_1_resolve_domain_1", "dns_server_1_resolve_domain_2",
    "dns_server_2_address_1", "dns_server_2_resolve_domain_1",
];
const INDEXED: &[&str] = &[
    "route_network_", "route_netmask_", "route_gateway_", "route_metric_",
    "route_ipv6_network_", "route_ipv6_gateway_", "route_ipv6_metric_", "foreign_option_",
];

fn requests_round_trip(requests: &[Request]) {
    let codec = Codec::NATIVE;
    for (i, request) in requests.iter().enumerate() {
        let envelope = Envelope { message_id: i as i32, request: request.clone() };
        let bytes = codec.encode(&envelope).expect("a translated request encodes");
        let back = codec.decode_request(&bytes).expect("and decodes");
        assert_eq!(back, envelope);
    }
}

fuzz_target!(|input: (u8, u8, Vec<(u8, u8, String)>, Vec<String>)| {
    let (phase, flags, vars, argv) = input;
    let mut env = Env::new();
    for (name, index, value) in vars {
        let name = usize::from(name);
        let key = if name < NAMES.len() {
            NAMES[name].to_owned()
        } else {
            format!("{}{}", INDEXED[name % INDEXED.len()], index % 8)
        };
        env.insert(key, value);
    }
    let phase = Phase::ALL[usize::from(phase) % Phase::ALL.len()];
    let opts = Options {
        addresses_and_routes: flags & 1 == 0,
        block_outside_dns: flags & 2 != 0,
        openvpn_2_7: flags & 4 != 0,
        route_noexec: flags & 8 != 0,
    };
    let first = translate(phase, &env, opts);
    assert_eq!(first, translate(phase, &env, opts), "deterministic");
    if let Ok(requests) = &first {
        requests_round_trip(requests);
    }
    // openvpn 2.7's --dns-updown, from the same variables.
    let dns = translate_dns(flags & 16 != 0, &env);
    assert_eq!(dns, translate_dns(flags & 16 != 0, &env), "deterministic");
    if let Ok(requests) = &dns {
        requests_round_trip(requests);
    }
    if let Ok(requests) = iproute::parse(&argv) {
        requests_round_trip(&requests);
        for r in &requests {
            let _ = iproute::describe(r);
        }
    }
});
