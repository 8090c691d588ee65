//! openvpn's script environment as channel requests, per hook (design §2).
//!
//! The service runs openvpn with `--ifconfig-noexec` and our hook as `--up`, `--route-up`,
//! `--route-pre-down` and `--down`. openvpn still *tries* to add its routes itself (they fail
//! with EPERM, harmlessly): that is what makes it export `redirect_gateway` to `--route-up`,
//! which `--route-noexec` would hide (design §2, known gaps). From the environment:
//!
//! * `up`: link up and MTU (which `--ifconfig-noexec` skips), the IPv4 address (subnet, or
//!   net30/p2p as `local/32` plus a host route to the peer on the tun), the IPv6 address, and
//!   DNS (`--dns` servers and domains if present, else `dhcp-option DNS/DNS6/DOMAIN/
//!   DOMAIN-SEARCH`);
//! * `route-up`: for `redirect-gateway` the host route to the server via the underlay, then
//!   `0.0.0.0/1` and `128.0.0.0/1` via the VPN gateway — def1 style even without `def1`, since
//!   the default route is never replaced (design §3); every pushed IPv4 route via its gateway;
//!   every IPv6 route on the tun (including the `def1 ipv6` ones, which openvpn lists as
//!   routes); and the DNS-leak block when asked for;
//! * `route-pre-down` and `down`: the matching deletes, in openvpn's order.
//!
//! With `--iproute` (builds that have it) openvpn configures addresses and routes through our
//! hook as `ip` commands ([`crate::linux::iproute`]) and the script hooks only do DNS and the
//! block ([`Options::addresses_and_routes`] false).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use openvpnserv_proto::channel::linux::{
    NRPT_DNSSEC_NO, NRPT_DNSSEC_OPTIONAL, NRPT_DOH, NRPT_DOT, NRPT_PROFILES_SHIFT,
    NRPT_PROFILE_SHIFT, WFP_BLOCK_IF_DNS,
};
use openvpnserv_proto::channel::{
    DnsCfgMsg, FixedStr, InetAddr, Interface, NrptCfgMsg, Request, WfpBlockMsg, AF_INET, AF_INET6,
    NRPT_ADDR_NUM, NRPT_DNSSEC, WFP_BLOCK_DNS,
};

use crate::linux::iproute::{address, iface, mtu, route};
use crate::linux::TranslateError;

/// The script hooks openvpn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `--up`: after the tun is opened.
    Up,
    /// `--route-up`: after routes would have been added.
    RouteUp,
    /// `--route-pre-down`: before routes are removed.
    RoutePreDown,
    /// `--down`: after the tun is closed.
    Down,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 4] = [Phase::Up, Phase::RouteUp, Phase::RoutePreDown, Phase::Down];

    /// The phase named like openvpn's option (and `script_type`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// openvpn's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Up => "up",
            Phase::RouteUp => "route-up",
            Phase::RoutePreDown => "route-pre-down",
            Phase::Down => "down",
        }
    }
}

/// How the hook is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Whether addresses and routes come from the environment (false when openvpn runs `ip`
    /// commands through `--iproute`).
    pub addresses_and_routes: bool,
    /// The config asks for `block-outside-dns`.
    pub block_outside_dns: bool,
    /// openvpn is 2.7 or later: DNS comes through the `--dns-updown` hook
    /// ([`translate_dns`]), scripts other than it cannot tell whether DNS was pushed, and a
    /// full tunnel shows in `route_redirect_gateway_ipv4`.
    pub openvpn_2_7: bool,
    /// The user's config or options say `route-noexec`: no route is applied, IPv4 and IPv6
    /// alike.
    pub route_noexec: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addresses_and_routes: true,
            block_outside_dns: false,
            openvpn_2_7: false,
            route_noexec: false,
        }
    }
}

/// The script environment.
pub type Env = HashMap<String, String>;

fn get<'a>(env: &'a Env, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn ip(env: &Env, key: &str) -> Result<Option<IpAddr>, TranslateError> {
    get(env, key)
        .map(|v| {
            v.parse()
                .map_err(|_| TranslateError::invalid(key, v, "an address"))
        })
        .transpose()
}

fn missing(key: &str) -> TranslateError {
    TranslateError::Missing(key.to_owned())
}

/// `255.255.255.0` → 24; refuses non-contiguous masks.
pub fn netmask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

fn mask_of(env: &Env, key: &str) -> Result<u8, TranslateError> {
    match ip(env, key)? {
        Some(IpAddr::V4(m)) => {
            netmask_len(m).ok_or_else(|| TranslateError::invalid(key, m.to_string(), "a netmask"))
        }
        _ => Err(missing(key)),
    }
}

/// The requests for one hook.
pub fn translate(phase: Phase, env: &Env, opts: Options) -> Result<Vec<Request>, TranslateError> {
    let dev_name = get(env, "dev").ok_or_else(|| missing("dev"))?;
    let dev = iface(dev_name)?;
    let mut out = Vec::new();
    match phase {
        Phase::Up => {
            if opts.addresses_and_routes {
                up_addresses(env, &dev, &mut out)?;
            }
            // openvpn 2.7 normally shows DNS only to --dns-updown and none of it here; when it
            // does not run that (after a PUSH_UPDATE of `dns`), it passes it here instead.
            out.extend(dns(env, &dev, true)?);
        }
        Phase::RouteUp => {
            if opts.addresses_and_routes && !opts.route_noexec {
                out.extend(routes(env, true)?);
            }
            if let Some(flags) = wants_block(env, opts) {
                out.push(block(&dev, true, flags));
            }
        }
        Phase::RoutePreDown => {
            if let Some(flags) = wants_block(env, opts) {
                out.push(block(&dev, false, flags));
            }
            if opts.addresses_and_routes && !opts.route_noexec {
                out.extend(routes(env, false)?);
            }
        }
        Phase::Down => {
            if opts.addresses_and_routes {
                down_addresses(env, &dev, &mut out)?;
            }
            out.extend(dns(env, &dev, false)?);
        }
    }
    Ok(out)
}

fn up_addresses(env: &Env, dev: &Interface, out: &mut Vec<Request>) -> Result<(), TranslateError> {
    let tun_mtu = get(env, "tun_mtu")
        .map(|m| {
            m.parse::<u32>()
                .map_err(|_| TranslateError::invalid("tun_mtu", m, "a number"))
        })
        .transpose()?
        .unwrap_or(1500);
    let local = ip(env, "ifconfig_local")?;
    let local6 = ip(env, "ifconfig_ipv6_local")?;
    if local.is_some() || local6.is_none() {
        out.push(mtu(dev, false, tun_mtu));
    }
    if let Some(a) = local {
        match ip(env, "ifconfig_remote")? {
            Some(peer) if get(env, "ifconfig_netmask").is_none() => {
                out.push(address(true, a, 32, dev));
                out.push(route(true, peer, 32, None, dev, None));
            }
            _ => out.push(address(true, a, mask_of(env, "ifconfig_netmask")?, dev)),
        }
    }
    if let Some(a6) = local6 {
        out.push(mtu(dev, true, tun_mtu));
        out.push(address(true, a6, netbits(env)?, dev));
    }
    Ok(())
}

fn netbits(env: &Env) -> Result<u8, TranslateError> {
    const KEY: &str = "ifconfig_ipv6_netbits";
    let value = get(env, KEY).ok_or_else(|| missing(KEY))?;
    value
        .parse::<u8>()
        .ok()
        .filter(|b| *b <= 128)
        .ok_or_else(|| TranslateError::invalid(KEY, value, "0..=128"))
}

fn down_addresses(
    env: &Env,
    dev: &Interface,
    out: &mut Vec<Request>,
) -> Result<(), TranslateError> {
    if let Some(a) = ip(env, "ifconfig_local")? {
        match ip(env, "ifconfig_remote")? {
            Some(peer) if get(env, "ifconfig_netmask").is_none() => {
                out.push(route(false, peer, 32, None, dev, None));
                out.push(address(false, a, 32, dev));
            }
            _ => out.push(address(false, a, mask_of(env, "ifconfig_netmask")?, dev)),
        }
    }
    if let Some(a6) = ip(env, "ifconfig_ipv6_local")? {
        out.push(address(false, a6, netbits(env)?, dev));
    }
    Ok(())
}

/// Whether IPv4 goes through the tunnel: openvpn 2.7 says so in
/// `route_redirect_gateway_ipv4` as soon as the option is read (even with `route-noexec`);
/// 2.6 says `redirect_gateway` only to `route-up`, after it tried the routes itself.
fn redirect(env: &Env) -> bool {
    ["route_redirect_gateway_ipv4", "redirect_gateway"]
        .iter()
        .any(|k| get(env, k).is_some_and(|v| v != "0"))
}

/// Routes in openvpn's order: adds are redirect routes first, then pushed IPv4 routes, then
/// IPv6 routes; deletes are pushed IPv4 routes, then redirect routes, then IPv6 routes.
fn routes(env: &Env, add: bool) -> Result<Vec<Request>, TranslateError> {
    let dev = iface(get(env, "dev").unwrap_or_default())?;
    let none = iface("")?;
    let metric = |key: String| -> Result<Option<u32>, TranslateError> {
        get(env, &key)
            .map(|m| {
                m.parse::<u32>()
                    .map_err(|_| TranslateError::invalid(&key, m, "a number"))
            })
            .transpose()
    };
    let mut redirect_routes = Vec::new();
    if redirect(env) {
        if let Some(vpn_gw @ IpAddr::V4(_)) = ip(env, "route_vpn_gateway")? {
            if let Some(server @ IpAddr::V4(_)) = ip(env, "trusted_ip")? {
                let net_gw = ip(env, "route_net_gateway")?.filter(|g| !g.is_unspecified());
                let gw = if add { net_gw } else { None };
                redirect_routes.push(route(add, server, 32, gw, &none, None));
            }
            for half in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(128, 0, 0, 0)] {
                let gw = add.then_some(vpn_gw);
                redirect_routes.push(route(add, half.into(), 1, gw, &none, None));
            }
        }
    }
    let mut v4 = Vec::new();
    for i in 1.. {
        let Some(net) = ip(env, &format!("route_network_{i}"))? else {
            break;
        };
        let len = mask_of(env, &format!("route_netmask_{i}"))?;
        let gw = ip(env, &format!("route_gateway_{i}"))?.filter(|g| !g.is_unspecified());
        let m = metric(format!("route_metric_{i}"))?;
        v4.push(route(add, net, len, if add { gw } else { None }, &none, m));
    }
    let mut v6 = Vec::new();
    for i in 1.. {
        let Some(spec) = get(env, &format!("route_ipv6_network_{i}")) else {
            break;
        };
        let (net, len) = spec
            .split_once('/')
            .and_then(|(a, l)| Some((a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?)))
            .filter(|(a, l)| a.is_ipv6() && *l <= 128)
            .ok_or_else(|| {
                TranslateError::invalid(format!("route_ipv6_network_{i}"), spec, "an IPv6 prefix")
            })?;
        let m = metric(format!("route_ipv6_metric_{i}"))?;
        // On a tun the next hop is meaningless: openvpn routes IPv6 on the device.
        v6.push(route(add, net, len, None, &dev, m));
    }
    // An IPv6 server inside the IPv6 routes (`redirect-gateway ipv6` sends ::/3 and 2000::/4
    // into the tunnel) needs its own host route via the underlay first, or the tunnel would
    // carry its own packets.
    let mut server6 = Vec::new();
    if let Some(server @ IpAddr::V6(s6)) = ip(env, "trusted_ip")? {
        let covered = (1..)
            .map_while(|i| get(env, &format!("route_ipv6_network_{i}")))
            .filter_map(|spec| {
                let (a, l) = spec.split_once('/')?;
                Some((
                    a.parse::<std::net::Ipv6Addr>().ok()?,
                    l.parse::<u32>().ok()?,
                ))
            })
            .any(|(net, len)| {
                let mask = u128::MAX.checked_shl(128 - len.min(128)).unwrap_or(0);
                (u128::from(net) ^ u128::from(s6)) & mask == 0
            });
        if covered {
            let gw = ip(env, "net_gateway_ipv6")?.filter(|g| add && g.is_ipv6());
            server6.push(route(add, server, 128, gw, &none, None));
        }
    }
    Ok(if add {
        redirect_routes
            .into_iter()
            .chain(v4)
            .chain(server6)
            .chain(v6)
            .collect()
    } else {
        v4.into_iter()
            .chain(redirect_routes)
            .chain(v6)
            .chain(server6)
            .collect()
    })
}

/// DNS settings from `dhcp-option`s (openvpn 2.6 without `--dns`).
struct Dns {
    servers4: Vec<IpAddr>,
    servers6: Vec<IpAddr>,
    domains: Vec<String>,
}

fn dhcp_options(env: &Env) -> Dns {
    let mut d = Dns {
        servers4: Vec::new(),
        servers6: Vec::new(),
        domains: Vec::new(),
    };
    for i in 1.. {
        let Some(opt) = get(env, &format!("foreign_option_{i}")) else {
            break;
        };
        let mut words = opt.split_whitespace();
        if words.next() != Some("dhcp-option") {
            continue;
        }
        match (words.next(), words.next()) {
            (Some("DNS"), Some(a)) => d
                .servers4
                .extend(a.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4)),
            (Some("DNS6"), Some(a)) => d
                .servers6
                .extend(a.parse::<IpAddr>().ok().filter(IpAddr::is_ipv6)),
            (Some("DOMAIN" | "DOMAIN-SEARCH"), Some(dom))
                if !d.domains.iter().any(|x| x == dom) =>
            {
                d.domains.push(dom.to_owned());
            }
            _ => {}
        }
    }
    d
}

/// One `--dns server N` profile as openvpn's `dns_server_N_*` variables give it.
struct EnvProfile {
    /// `a`, or `a:port` / `[a]:port` for another port than 53.
    servers: Vec<String>,
    resolve: Vec<String>,
    flags: u32,
}

/// Every `dns_server_N_*` profile (openvpn numbers them 1, 2, … in priority order) and the
/// `dns_search_domain_N` list.
fn dns_profiles(env: &Env) -> (Vec<EnvProfile>, Vec<String>) {
    let list = |prefix: &str| -> Vec<String> {
        (1..)
            .map_while(|m| get(env, &format!("{prefix}{m}")).map(str::to_owned))
            .collect()
    };
    let mut profiles = Vec::new();
    for n in 1.. {
        let addresses = list(&format!("dns_server_{n}_address_"));
        if addresses.is_empty() {
            break;
        }
        let servers = addresses
            .iter()
            .enumerate()
            .map(
                |(m, a)| match get(env, &format!("dns_server_{n}_port_{}", m + 1)) {
                    Some(p) if p != "53" && a.contains(':') => format!("[{a}]:{p}"),
                    Some(p) if p != "53" => format!("{a}:{p}"),
                    _ => a.clone(),
                },
            )
            .collect();
        let resolve = list(&format!("dns_server_{n}_resolve_domain_"))
            .into_iter()
            .map(|r| format!(".{}", r.trim_start_matches('.')))
            .collect();
        let mut flags = match get(env, &format!("dns_server_{n}_dnssec")) {
            Some("yes") => NRPT_DNSSEC,
            Some("optional") => NRPT_DNSSEC_OPTIONAL,
            Some("no") => NRPT_DNSSEC_NO,
            _ => 0,
        };
        flags |= match get(env, &format!("dns_server_{n}_transport")) {
            Some("DoT") => NRPT_DOT,
            Some("DoH") => NRPT_DOH,
            _ => 0,
        };
        profiles.push(EnvProfile {
            servers,
            resolve,
            flags,
        });
    }
    (profiles, list("dns_search_domain_"))
}

fn fixed<const N: usize>(s: &str) -> Result<FixedStr<N>, TranslateError> {
    FixedStr::new(s).map_err(|e| TranslateError::TooLong {
        value: s.to_owned(),
        why: e.to_string(),
    })
}

fn dns_cfg(
    add: bool,
    dev: &Interface,
    v6: bool,
    servers: &[IpAddr],
    domains: &str,
) -> Result<Request, TranslateError> {
    let mut addr = [InetAddr::default(); 4];
    for (slot, a) in addr.iter_mut().zip(servers) {
        *slot = InetAddr::from_ip(*a);
    }
    let m = DnsCfgMsg {
        iface: dev.clone(),
        domains: fixed(domains)?,
        family: if v6 { AF_INET6 } else { AF_INET },
        addr_len: servers.len().min(4) as u32,
        addr,
    };
    Ok(if add {
        Request::AddDnsCfg(m)
    } else {
        Request::DelDnsCfg(m)
    })
}

/// The `--dns` configuration as NRPT messages, one per server profile (the service picks the
/// profile its DNS backend can apply); a single delete takes it all back.
fn nrpt(env: &Env, dev: &Interface, add: bool) -> Result<Vec<Request>, TranslateError> {
    let (profiles, search) = dns_profiles(env);
    if profiles.is_empty() {
        return Ok(Vec::new());
    }
    if !add {
        return Ok(vec![Request::DelNrptCfg(NrptCfgMsg {
            iface: dev.clone(),
            addresses: Default::default(),
            resolve_domains: fixed("")?,
            search_domains: fixed("")?,
            flags: 0,
        })]);
    }
    let count = profiles.len().min(MAX_PROFILES);
    let mut out = Vec::new();
    for (index, p) in profiles.iter().take(count).enumerate() {
        let mut addresses: [FixedStr<48>; NRPT_ADDR_NUM] = Default::default();
        for (slot, s) in addresses.iter_mut().zip(&p.servers) {
            *slot = fixed(s)?;
        }
        // A lone profile is sent as openvpn itself would (no profile numbers).
        let numbering = if count > 1 {
            ((index as u32) << NRPT_PROFILE_SHIFT) | ((count as u32) << NRPT_PROFILES_SHIFT)
        } else {
            0
        };
        out.push(Request::AddNrptCfg(NrptCfgMsg {
            iface: dev.clone(),
            addresses,
            resolve_domains: fixed(&p.resolve.join(","))?,
            search_domains: fixed(&search.join(","))?,
            flags: p.flags | numbering,
        }));
    }
    Ok(out)
}

/// Most server profiles sent (the service takes no more).
const MAX_PROFILES: usize = 16;

/// openvpn 2.6's DNS in its script environment: `--dns` if present, else `dhcp-option`s.
fn dns(env: &Env, dev: &Interface, add: bool) -> Result<Vec<Request>, TranslateError> {
    let from_dns = nrpt(env, dev, add)?;
    if !from_dns.is_empty() {
        return Ok(from_dns);
    }
    let d = dhcp_options(env);
    let mut out = Vec::new();
    for (v6, servers) in [(false, &d.servers4), (true, &d.servers6)] {
        if !servers.is_empty() {
            let sent: &[IpAddr] = if add { servers } else { &[] };
            out.push(dns_cfg(add, dev, v6, sent, "")?);
        }
    }
    if !d.domains.is_empty() {
        out.push(dns_cfg(add, dev, false, &[], &d.domains.join(","))?);
    }
    Ok(out)
}

/// The requests of openvpn 2.7's `--dns-updown` command (`script_type` `dns-up` or
/// `dns-down`): its whole DNS configuration (`--dns`, or the `dhcp-option`s openvpn copies
/// into it), from a bare environment: `dev`, `script_type` and the `dns_*` variables.
pub fn translate_dns(up: bool, env: &Env) -> Result<Vec<Request>, TranslateError> {
    let dev = iface(get(env, "dev").ok_or_else(|| missing("dev"))?)?;
    nrpt(env, &dev, up)
}

/// Whether the leak block is asked for, and with which flags: for a full tunnel with VPN DNS
/// servers, or when the config asks (design §4). openvpn 2.7 shows scripts other than
/// `--dns-updown` nothing of DNS, so there the service decides whether DNS servers exist.
fn wants_block(env: &Env, opts: Options) -> Option<u32> {
    let asked = opts.block_outside_dns || redirect(env);
    if opts.openvpn_2_7 {
        return asked.then_some(WFP_BLOCK_DNS | WFP_BLOCK_IF_DNS);
    }
    let d = dhcp_options(env);
    let has_dns =
        !dns_profiles(env).0.is_empty() || !d.servers4.is_empty() || !d.servers6.is_empty();
    (has_dns && asked).then_some(WFP_BLOCK_DNS)
}

fn block(dev: &Interface, add: bool, flags: u32) -> Request {
    let m = WfpBlockMsg {
        flags,
        iface: dev.clone(),
    };
    if add {
        Request::AddWfpBlock(m)
    } else {
        Request::DelWfpBlock(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::iproute::describe;

    fn described(phase: Phase, env: &Env, opts: Options) -> Vec<String> {
        translate(phase, env, opts)
            .unwrap()
            .iter()
            .map(describe)
            .collect()
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn masks() {
        assert_eq!(netmask_len("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(netmask_len("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(netmask_len("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(netmask_len("255.0.255.0".parse().unwrap()), None);
    }

    #[test]
    fn dhcp_options_become_dns_requests_and_dns_wins_over_them() {
        let mut e = env(&[
            ("dev", "tun1"),
            ("foreign_option_1", "dhcp-option DOMAIN corp.example"),
            ("foreign_option_2", "dhcp-option DNS 10.8.0.53"),
            ("foreign_option_3", "dhcp-option DOMAIN-SEARCH corp.example"),
            ("foreign_option_4", "dhcp-option DNS6 fd00:8::53"),
        ]);
        let opts = Options {
            addresses_and_routes: false,
            ..Options::default()
        };
        let got = described(Phase::Up, &e, opts);
        assert_eq!(
            got,
            [
                "dns add dev tun1 family 4 servers [10.8.0.53] domains []",
                "dns add dev tun1 family 6 servers [fd00:8::53] domains []",
                "dns add dev tun1 family 4 servers [] domains [corp.example]",
            ]
        );
        e.insert("dns_server_1_address_1".into(), "10.8.0.53".into());
        e.insert("dns_server_1_resolve_domain_1".into(), "lab.example".into());
        e.insert("dns_search_domain_1".into(), "corp.example".into());
        let got = described(Phase::Up, &e, opts);
        assert_eq!(
            got,
            ["dns add dev tun1 servers [10.8.0.53] resolve-domains [.lab.example] search-domains [corp.example]"]
        );
        let got = described(Phase::Down, &e, opts);
        assert_eq!(
            got,
            ["dns del dev tun1 servers [] resolve-domains [] search-domains []"]
        );
    }

    #[test]
    fn block_only_for_full_tunnel_dns_or_when_asked() {
        let mut e = env(&[
            ("dev", "tun1"),
            ("foreign_option_1", "dhcp-option DNS 10.8.0.53"),
        ]);
        let opts = Options::default();
        assert!(translate(Phase::RouteUp, &e, opts).unwrap().is_empty());
        let asked = Options {
            block_outside_dns: true,
            ..opts
        };
        assert_eq!(
            describe(&translate(Phase::RouteUp, &e, asked).unwrap()[0]),
            "block add dev tun1 flags 2"
        );
        e.insert("redirect_gateway".into(), "1".into());
        e.insert("route_vpn_gateway".into(), "10.8.0.1".into());
        let got = translate(Phase::RouteUp, &e, opts).unwrap();
        assert_eq!(describe(got.last().unwrap()), "block add dev tun1 flags 2");
        assert_eq!(
            describe(&translate(Phase::RoutePreDown, &e, opts).unwrap()[0]),
            "block del dev tun1 flags 2"
        );
    }

    #[test]
    fn an_ipv6_server_inside_the_ipv6_redirect_keeps_a_host_route() {
        let mut e = env(&[
            ("dev", "tun1"),
            ("trusted_ip", "2001:db8::1"),
            ("net_gateway_ipv6", "fe80::1"),
            ("route_ipv6_network_1", "2000::/4"),
        ]);
        let got = described(Phase::RouteUp, &e, Options::default());
        assert_eq!(
            got,
            [
                "-6 route add 2001:db8::1/128 via fe80::1",
                "-6 route add 2000::/4 dev tun1"
            ]
        );
        let got = described(Phase::RoutePreDown, &e, Options::default());
        assert_eq!(
            got,
            [
                "-6 route del 2000::/4 dev tun1",
                "-6 route del 2001:db8::1/128"
            ]
        );
        // A server outside the IPv6 routes needs none.
        e.insert("route_ipv6_network_1".into(), "fd00:9::/64".into());
        assert_eq!(
            translate(Phase::RouteUp, &e, Options::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn missing_or_bad_values_are_errors() {
        assert!(translate(Phase::Up, &env(&[]), Options::default()).is_err());
        let e = env(&[
            ("dev", "tun1"),
            ("ifconfig_local", "10.8.0.2"),
            ("ifconfig_netmask", "255.0.255.0"),
        ]);
        assert!(translate(Phase::Up, &e, Options::default()).is_err());
        let e = env(&[
            ("dev", "tun1"),
            ("route_network_1", "10.9.0.0"),
            ("route_netmask_1", "x"),
        ]);
        assert!(translate(Phase::RouteUp, &e, Options::default()).is_err());
    }

    /// openvpn 2.7's `--dns-updown` gets a bare environment with the whole `--dns`
    /// configuration: every profile goes to the service (which picks one its backend can
    /// apply), numbered, with ports, transport and DNSSEC; the down is one delete.
    #[test]
    fn dns_updown_sends_every_profile_numbered() {
        let e = env(&[
            ("dev", "tun1"),
            ("script_type", "dns-up"),
            ("dns_search_domain_1", "corp.example"),
            ("dns_server_1_address_1", "10.8.0.53"),
            ("dns_server_1_port_1", "853"),
            ("dns_server_1_address_2", "fd00:8::53"),
            ("dns_server_1_port_2", "853"),
            ("dns_server_1_transport", "DoT"),
            ("dns_server_1_dnssec", "yes"),
            ("dns_server_1_resolve_domain_1", "lab.example"),
            ("dns_server_2_address_1", "10.8.0.54"),
            ("dns_server_2_port_1", "53"),
            ("dns_server_2_resolve_domain_1", "lab.example"),
        ]);
        let got = translate_dns(true, &e).unwrap();
        assert_eq!(got.len(), 2);
        let Request::AddNrptCfg(first) = &got[0] else {
            panic!("{got:?}")
        };
        let servers: Vec<&str> = first
            .addresses
            .iter()
            .filter_map(|a| a.to_str())
            .filter(|a| !a.is_empty())
            .collect();
        assert_eq!(servers, ["10.8.0.53:853", "[fd00:8::53]:853"]);
        assert_eq!(first.flags & 0xff, NRPT_DNSSEC | NRPT_DOT);
        assert_eq!(first.flags >> NRPT_PROFILE_SHIFT & 0xff, 0);
        assert_eq!(first.flags >> NRPT_PROFILES_SHIFT & 0xff, 2);
        assert_eq!(first.resolve_domains.to_str(), Some(".lab.example"));
        assert_eq!(first.search_domains.to_str(), Some("corp.example"));
        let Request::AddNrptCfg(second) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(
            second.addresses[0].to_str(),
            Some("10.8.0.54"),
            "port 53 is not written"
        );
        assert_eq!(second.flags >> NRPT_PROFILE_SHIFT & 0xff, 1);
        let down = translate_dns(false, &e).unwrap();
        assert_eq!(down.len(), 1);
        assert!(matches!(down[0], Request::DelNrptCfg(_)));
        assert!(translate_dns(true, &env(&[("dev", "tun1")]))
            .unwrap()
            .is_empty());
    }

    /// openvpn 2.7 shows a full tunnel in `route_redirect_gateway_ipv4` (with the service's
    /// `route-noexec` too); `route-up` cannot tell whether DNS was pushed, so the leak block
    /// is asked for only if the session has DNS servers.
    #[test]
    fn openvpn_2_7_full_tunnel_from_route_redirect_gateway() {
        let e = env(&[
            ("dev", "tun1"),
            ("route_redirect_gateway_ipv4", "1"),
            ("route_vpn_gateway", "10.8.0.1"),
            ("route_net_gateway", "10.200.0.1"),
            ("trusted_ip", "10.200.0.2"),
            ("foreign_option_1", "dhcp-option DNS 10.8.0.53"),
        ]);
        let o27 = Options {
            openvpn_2_7: true,
            ..Options::default()
        };
        let got = described(Phase::RouteUp, &e, o27);
        assert_eq!(
            got,
            [
                "route add 10.200.0.2/32 via 10.200.0.1",
                "route add 0.0.0.0/1 via 10.8.0.1",
                "route add 128.0.0.0/1 via 10.8.0.1",
                "block add dev tun1 flags 258",
            ]
        );
        // Whatever DNS openvpn 2.7 shows `up` (it does after a PUSH_UPDATE) is applied.
        assert!(described(Phase::Up, &e, o27)
            .iter()
            .any(|l| l.starts_with("dns add")));
        // The user's route-noexec: neither family is routed, the block still comes.
        let noexec = Options {
            route_noexec: true,
            ..o27
        };
        assert_eq!(
            described(Phase::RouteUp, &e, noexec),
            ["block add dev tun1 flags 258"]
        );
        assert_eq!(
            described(Phase::RoutePreDown, &e, noexec),
            ["block del dev tun1 flags 258"]
        );
    }
}
