//! What a session may change (design §3), decided over the session's facts.
//!
//! Everything on the channel comes from a process the user controls, so each request is
//! checked against what the service itself knows: the session's tun (created by the service),
//! the addresses it put there (which define the VPN gateways), the kernel's current path to a
//! host (looked up by the service), and the session's own journal. The rules:
//!
//! * link, address, MTU, DNS and DNS-block changes only on the session's tun;
//! * routes only on the tun or via a VPN gateway (a next hop inside a prefix the session put
//!   on its tun), installed with the tun as output device so the kernel cannot send them
//!   elsewhere; plus exactly one host route via the underlay, and only along the path the
//!   kernel already uses for that host (the route to the VPN server that keeps the tunnel's
//!   own packets out of the tunnel) — it pins the current path and diverts nothing;
//! * deletes only of what this session added; the default route is never deleted.

use std::net::IpAddr;

use openvpnserv_proto::channel::linux::{
    NRPT_DNSSEC_NO, NRPT_DNSSEC_OPTIONAL, NRPT_DOH, NRPT_DOT, NRPT_PROFILES_SHIFT,
    NRPT_PROFILE_SHIFT, WFP_BLOCK_IF_DNS,
};
use openvpnserv_proto::channel::{
    AddressMsg, DnsCfgMsg, Interface, NrptCfgMsg, Request, RouteMsg, AF_INET, AF_INET6,
    INDEX_INVALID, NRPT_DNSSEC, WFP_BLOCK_DNS,
};
use openvpnserv_proto::codes::{ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED};

use crate::linux::dns::{self, Caps, DnsState, Dnssec, Profile, Transport};
use crate::linux::journal::{AddressSpec, Change, Journal, RouteSpec};

/// The session's tun, as the service created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tun {
    /// Device name.
    pub name: String,
    /// Link index.
    pub ifindex: u32,
}

/// The kernel's current path to a host (`ip route get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Next hop, none when the host is on link.
    pub gateway: Option<IpAddr>,
    /// Output link index.
    pub oif: u32,
    /// Output link name.
    pub dev: String,
}

/// What to do for an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set the tun's MTU and bring it up.
    SetLink {
        /// The MTU.
        mtu: u32,
    },
    /// Add an address.
    AddAddress(AddressSpec),
    /// Delete the journal's change `seq` (an address).
    DelAddress(u64),
    /// Add a route.
    AddRoute(RouteSpec),
    /// Delete the journal's change `seq` (a route).
    DelRoute(u64),
    /// Apply these DNS settings (the session's whole state after the request).
    Dns(DnsState),
    /// Keep this DNS state without applying anything yet (more profiles are to come).
    KeepDns(DnsState),
    /// Block DNS (or all traffic) outside the tun.
    Block {
        /// Only DNS (flags 2), else everything.
        dns_only: bool,
    },
    /// Remove the block.
    Unblock,
    /// Nothing to change; acknowledge success.
    Nothing,
}

/// A refused request: the ack's code and the reason for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// Error code for the ack.
    pub code: u32,
    /// Why, for the log line.
    pub reason: String,
}

fn deny(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: ERROR_ACCESS_DENIED,
        reason: reason.into(),
    }
}

fn invalid(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: ERROR_INVALID_PARAMETER,
        reason: reason.into(),
    }
}

fn unsupported(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: ERROR_NOT_SUPPORTED,
        reason: reason.into(),
    }
}

/// The facts a decision is made over.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The session's tun.
    pub tun: &'a Tun,
    /// What the session changed so far.
    pub journal: &'a Journal,
    /// The session's DNS settings so far.
    pub dns: &'a DnsState,
    /// What the DNS backend can apply.
    pub caps: Caps,
}

/// Which link a message names.
enum Named {
    Tun,
    Nothing,
    Other(String),
}

impl Facts<'_> {
    fn named(&self, iface: &Interface) -> Named {
        let name = iface.name.as_bytes();
        if iface.index != INDEX_INVALID {
            if iface.index == self.tun.ifindex {
                Named::Tun
            } else {
                Named::Other(format!("link #{}", iface.index))
            }
        } else if name.is_empty() {
            Named::Nothing
        } else if name == self.tun.name.as_bytes() {
            Named::Tun
        } else {
            Named::Other(String::from_utf8_lossy(name).into_owned())
        }
    }

    fn on_tun(&self, iface: &Interface, what: &str) -> Result<(), Refusal> {
        match self.named(iface) {
            Named::Tun => Ok(()),
            Named::Nothing => Err(deny(format!(
                "{what} names no link; only {} is allowed",
                self.tun.name
            ))),
            Named::Other(o) => Err(deny(format!(
                "{what} on {o}: only the session's own {} may be changed",
                self.tun.name
            ))),
        }
    }

    /// Whether `gw` is reached through the tun: inside a prefix of an address the session put
    /// there, or a peer it routed there. (An IPv6 link-local next hop names no link by itself:
    /// it counts only with the tun named.)
    fn is_vpn_gateway(&self, gw: IpAddr) -> bool {
        let full = full_len(gw);
        self.journal.addresses().any(|a| {
            a.ifindex == self.tun.ifindex && a.addr != gw && contains(a.addr, a.prefix_len, gw)
        }) || self
            .journal
            .routes_to(gw, full)
            .any(|(_, r)| r.oif == self.tun.ifindex && r.gateway.is_none())
    }

    fn server_route_exists(&self) -> bool {
        self.journal
            .find(|c| matches!(c, Change::Route(r) if r.oif != self.tun.ifindex))
            .is_some()
    }
}

/// Decides a request. `path` answers the kernel's current route to a host; it is asked only
/// for a host route that does not go through the tun.
pub fn decide(
    facts: Facts<'_>,
    request: &Request,
    path: &dyn Fn(IpAddr) -> Option<Path>,
) -> Result<Action, Refusal> {
    match request {
        Request::SetMtu(m) => {
            facts.on_tun(&m.iface, "MTU change")?;
            let min = if m.family == AF_INET6 { 1280 } else { 68 };
            if !(min..=65535).contains(&m.mtu) {
                return Err(invalid(format!("MTU {} is outside {min}..=65535", m.mtu)));
            }
            Ok(Action::SetLink { mtu: m.mtu as u32 })
        }
        Request::AddAddress(m) => add_address(facts, m),
        Request::DelAddress(m) => {
            facts.on_tun(&m.iface, "address delete")?;
            let addr = address_of(m.family, &m.address)?;
            facts
                .journal
                .addresses_of(addr)
                .find(|(_, a)| a.ifindex == facts.tun.ifindex)
                .map(|(seq, _)| Action::DelAddress(seq))
                .ok_or_else(|| deny(format!("address {addr} was not added by this session")))
        }
        Request::AddRoute(m) => add_route(facts, m, path),
        Request::DelRoute(m) => del_route(facts, m),
        Request::AddDnsCfg(m) | Request::DelDnsCfg(m) => {
            facts.on_tun(&m.iface, "DNS change")?;
            dns_cfg(facts.dns, m, matches!(request, Request::AddDnsCfg(_))).map(Action::Dns)
        }
        Request::AddNrptCfg(m) => {
            facts.on_tun(&m.iface, "DNS change")?;
            nrpt(facts, m)
        }
        Request::DelNrptCfg(m) => {
            facts.on_tun(&m.iface, "DNS change")?;
            Ok(Action::Dns(DnsState::default()))
        }
        Request::AddWfpBlock(m) => {
            facts.on_tun(&m.iface, "DNS block")?;
            // Asked for only if the session has DNS servers (openvpn 2.7's route-up cannot
            // tell): a block without the VPN's servers would leave no DNS at all.
            if m.flags & WFP_BLOCK_IF_DNS != 0 && !facts.dns.has_servers() {
                return Ok(Action::Nothing);
            }
            Ok(Action::Block {
                dns_only: m.flags & !WFP_BLOCK_IF_DNS == WFP_BLOCK_DNS,
            })
        }
        Request::AddBlockDns(iface) => {
            facts.on_tun(iface, "DNS block")?;
            Ok(Action::Block { dns_only: true })
        }
        Request::DelWfpBlock(m) => {
            facts.on_tun(&m.iface, "DNS block")?;
            Ok(Action::Unblock)
        }
        Request::DelBlockDns(iface) => {
            facts.on_tun(iface, "DNS block")?;
            Ok(Action::Unblock)
        }
        Request::FlushNeighbors(m) => {
            facts.on_tun(&m.iface, "neighbour flush")?;
            Ok(Action::Nothing)
        }
        Request::RegisterDns => Ok(Action::Nothing),
        Request::AddWinsCfg(m) | Request::DelWinsCfg(m) => {
            facts.on_tun(&m.iface, "WINS change")?;
            Err(unsupported("WINS does not exist on Linux"))
        }
        Request::EnableDhcp(_)
        | Request::CreateAdapter(_)
        | Request::RegisterRingBuffers(_)
        | Request::AddNbtCfg(_)
        | Request::DelNbtCfg(_) => Err(unsupported(format!(
            "{:?} is a Windows-only request",
            request.kind()
        ))),
    }
}

fn full_len(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Whether `net/len` contains `a` (same family).
fn contains(net: IpAddr, len: u8, a: IpAddr) -> bool {
    net.is_ipv4() == a.is_ipv4() && (bits(net) ^ bits(a)) & mask(len) == 0
}

fn address_of(family: i16, raw: &openvpnserv_proto::channel::InetAddr) -> Result<IpAddr, Refusal> {
    raw.to_ip(family).ok_or_else(|| {
        invalid(format!(
            "address family {family} is neither AF_INET (2) nor AF_INET6 (23)"
        ))
    })
}

fn prefix_len(family: i16, len: i32) -> Result<u8, Refusal> {
    let max = if family == AF_INET { 32 } else { 128 };
    u8::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| invalid(format!("prefix length {len} is outside 0..={max}")))
}

fn add_address(facts: Facts<'_>, m: &AddressMsg) -> Result<Action, Refusal> {
    facts.on_tun(&m.iface, "address")?;
    let addr = address_of(m.family, &m.address)?;
    let len = prefix_len(m.family, m.prefix_len)?;
    let special = match addr {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    };
    if special || len == 0 {
        return Err(invalid(format!(
            "{addr}/{len} is not a usable interface address"
        )));
    }
    if facts
        .journal
        .addresses_of(addr)
        .any(|(_, a)| a.ifindex == facts.tun.ifindex && a.prefix_len == len)
    {
        return Ok(Action::Nothing);
    }
    Ok(Action::AddAddress(AddressSpec {
        ifindex: facts.tun.ifindex,
        dev: facts.tun.name.clone(),
        addr,
        prefix_len: len,
    }))
}

struct Wanted {
    dst: IpAddr,
    len: u8,
    gateway: Option<IpAddr>,
    metric: Option<u32>,
}

fn route_msg(m: &RouteMsg) -> Result<Wanted, Refusal> {
    let dst = address_of(m.family, &m.prefix)?;
    let len = prefix_len(m.family, m.prefix_len)?;
    if bits(dst) & !mask(len) != 0 {
        return Err(invalid(format!("{dst}/{len} has host bits set")));
    }
    let gateway = address_of(m.family, &m.gateway)?;
    let metric = match m.metric {
        -1 => None,
        x if x >= 0 => Some(x as u32),
        x => return Err(invalid(format!("metric {x} is negative"))),
    };
    Ok(Wanted {
        dst,
        len,
        gateway: (!gateway.is_unspecified()).then_some(gateway),
        metric,
    })
}

fn add_route(
    facts: Facts<'_>,
    m: &RouteMsg,
    path: &dyn Fn(IpAddr) -> Option<Path>,
) -> Result<Action, Refusal> {
    let w = route_msg(m)?;
    let tun = facts.tun;
    let on_tun = |gateway| {
        Ok(Action::AddRoute(RouteSpec {
            dst: w.dst,
            prefix_len: w.len,
            gateway,
            oif: tun.ifindex,
            dev: tun.name.clone(),
            metric: w.metric,
        }))
    };
    let named = facts.named(&m.iface);
    match (&named, w.gateway) {
        (Named::Tun, gw) => return on_tun(gw),
        (Named::Nothing, Some(gw)) if facts.is_vpn_gateway(gw) => return on_tun(Some(gw)),
        _ => {}
    }
    // Not through the tun: only the one host route that pins the current path to a host.
    let what = format!(
        "route {}/{}{}{}",
        w.dst,
        w.len,
        w.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
        match &named {
            Named::Other(o) => format!(" dev {o}"),
            _ => String::new(),
        }
    );
    if w.len != full_len(w.dst) {
        return Err(deny(format!(
            "{what} leaves the tunnel: only routes on {} or via its VPN gateway are allowed",
            tun.name
        )));
    }
    let p = path(w.dst).ok_or_else(|| deny(format!("{what}: the host has no current route")))?;
    if p.oif == tun.ifindex {
        return on_tun(w.gateway.filter(|g| facts.is_vpn_gateway(*g)));
    }
    let same_hop = match (w.gateway, p.gateway) {
        (None, _) => true,
        (Some(g), Some(pg)) => g == pg,
        (Some(g), None) => g == w.dst,
    };
    let same_dev = match &named {
        Named::Tun | Named::Nothing => true,
        Named::Other(_) => m.iface.index == p.oif || m.iface.name.as_bytes() == p.dev.as_bytes(),
    };
    if !same_hop || !same_dev {
        return Err(deny(format!(
            "{what} differs from the current path to {} ({}dev {}): a route outside the tunnel may only keep a host where it is",
            w.dst,
            p.gateway.map(|g| format!("via {g} ")).unwrap_or_default(),
            p.dev
        )));
    }
    if facts.server_route_exists() {
        return Err(deny(format!(
            "{what}: the session already has its one host route outside the tunnel"
        )));
    }
    Ok(Action::AddRoute(RouteSpec {
        dst: w.dst,
        prefix_len: w.len,
        gateway: p.gateway,
        oif: p.oif,
        dev: p.dev,
        metric: w.metric,
    }))
}

fn del_route(facts: Facts<'_>, m: &RouteMsg) -> Result<Action, Refusal> {
    let w = route_msg(m)?;
    facts
        .journal
        .routes_to(w.dst, w.len)
        .find(|(_, r)| w.metric.is_none() || r.metric == w.metric)
        .map(|(seq, _)| Action::DelRoute(seq))
        .ok_or_else(|| {
            if w.len == 0 {
                deny(format!(
                    "route {}/0: the default route is never deleted",
                    w.dst
                ))
            } else {
                deny(format!(
                    "route {}/{} was not added by this session",
                    w.dst, w.len
                ))
            }
        })
}

fn dns_cfg(old: &DnsState, m: &DnsCfgMsg, add: bool) -> Result<DnsState, Refusal> {
    let mut s = old.clone();
    let v6 = match m.family {
        AF_INET => false,
        AF_INET6 => true,
        f => return Err(invalid(format!("DNS address family {f} is unknown"))),
    };
    let n = m.addr_len.min(4) as usize;
    let domains = m
        .domains
        .to_str()
        .ok_or_else(|| invalid("DNS domains are not UTF-8"))?;
    let domains = dns::domain_list(domains).map_err(|e| invalid(e.to_string()))?;
    let servers = if v6 { &mut s.servers6 } else { &mut s.servers4 };
    if add {
        if n > 0 {
            *servers = m.addr[..n]
                .iter()
                .filter_map(|a| a.to_ip(m.family))
                .filter(|a| !a.is_unspecified())
                .collect();
        }
        if !domains.is_empty() {
            s.search = domains;
        }
    } else {
        servers.clear();
        if !domains.is_empty() {
            s.search.clear();
        }
    }
    Ok(s)
}

/// A server as the hook writes it: `a`, `a:port` (IPv4) or `[a]:port`.
fn server_text(text: &str) -> Result<(IpAddr, Option<u16>), Refusal> {
    let bad = || invalid(format!("{text:?} is not a DNS server address"));
    if let Ok(a) = dns::server(text) {
        return Ok((a, None));
    }
    let (host, port) = text.trim().rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let a: IpAddr = host.parse().map_err(|_| bad())?;
    if a.is_ipv6() && !text.trim().starts_with('[') {
        return Err(bad());
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
    Ok((a, Some(port)))
}

fn profile(m: &NrptCfgMsg) -> Result<Profile, Refusal> {
    let mut p = Profile::default();
    for a in m.addresses.iter().filter(|a| !a.is_empty()) {
        let text = a
            .to_str()
            .ok_or_else(|| invalid("DNS server is not UTF-8"))?;
        p.servers.push(server_text(text)?);
    }
    if p.servers.is_empty() {
        return Err(Refusal {
            code: openvpnserv_proto::codes::ERROR_MESSAGE_DATA,
            reason: "DNS configuration names no server".into(),
        });
    }
    let list = |f: &openvpnserv_proto::channel::FixedStr<512>| {
        f.to_str()
            .ok_or_else(|| invalid("DNS domains are not UTF-8"))
            .and_then(|t| dns::domain_list(t).map_err(|e| invalid(e.to_string())))
    };
    p.resolve_domains = list(&m.resolve_domains)?;
    p.search_domains = list(&m.search_domains)?;
    p.dnssec = if m.flags & NRPT_DNSSEC != 0 {
        Dnssec::Yes
    } else if m.flags & NRPT_DNSSEC_OPTIONAL != 0 {
        Dnssec::Optional
    } else if m.flags & NRPT_DNSSEC_NO != 0 {
        Dnssec::No
    } else {
        Dnssec::Unset
    };
    p.transport = if m.flags & NRPT_DOH != 0 {
        Transport::Https
    } else if m.flags & NRPT_DOT != 0 {
        Transport::Tls
    } else {
        Transport::Plain
    };
    Ok(p)
}

/// Most server profiles one configuration may have.
const MAX_PROFILES: u32 = 16;

/// A `--dns` server profile; the last of a configuration's profiles chooses the one the
/// backend can apply (as openvpn's own `dns-updown` does).
fn nrpt(facts: Facts<'_>, m: &NrptCfgMsg) -> Result<Action, Refusal> {
    let index = (m.flags >> NRPT_PROFILE_SHIFT) & 0xff;
    let count = ((m.flags >> NRPT_PROFILES_SHIFT) & 0xff).max(1);
    if count > MAX_PROFILES || index >= count {
        return Err(invalid(format!(
            "DNS server profile {index} of {count} (at most {MAX_PROFILES})"
        )));
    }
    let mut pending = if index == 0 {
        Vec::new()
    } else {
        facts.dns.pending.clone()
    };
    if pending.len() != index as usize {
        return Err(invalid(format!(
            "DNS server profile {index} out of order ({} received)",
            pending.len()
        )));
    }
    pending.push(profile(m)?);
    if index + 1 < count {
        let mut state = facts.dns.clone();
        state.pending = pending;
        return Ok(Action::KeepDns(state));
    }
    dns::choose_profile(&pending, facts.caps)
        .map(Action::Dns)
        .map_err(|e| unsupported(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpnserv_proto::channel::{InetAddr, SetMtuMsg};

    fn tun() -> Tun {
        Tun {
            name: "tun7".into(),
            ifindex: 7,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn route(prefix: &str, len: i32, gw: &str, iface: Interface) -> RouteMsg {
        let p = ip(prefix);
        RouteMsg {
            family: if p.is_ipv4() { AF_INET } else { AF_INET6 },
            prefix: InetAddr::from_ip(p),
            prefix_len: len,
            gateway: InetAddr::from_ip(ip(gw)),
            iface,
            metric: -1,
        }
    }

    fn none() -> Interface {
        Interface::by_name("").unwrap()
    }

    #[allow(clippy::unnecessary_wraps)]
    fn underlay(_: IpAddr) -> Option<Path> {
        Some(Path {
            gateway: Some(ip("10.200.0.1")),
            oif: 2,
            dev: "veth-c".into(),
        })
    }

    /// A journal with 10.8.0.2/24 on the tun.
    fn connected() -> Journal {
        let mut j = Journal::new();
        j.intend(Change::Tun {
            name: "tun7".into(),
        });
        j.intend(Change::Address(AddressSpec {
            ifindex: 7,
            dev: "tun7".into(),
            addr: ip("10.8.0.2"),
            prefix_len: 24,
        }));
        j
    }

    fn run(j: &Journal, r: &Request) -> Result<Action, Refusal> {
        let t = tun();
        let dns = DnsState::default();
        decide(
            Facts {
                tun: &t,
                journal: j,
                dns: &dns,
                caps: crate::linux::dns::Backend::Resolved.caps(),
            },
            r,
            &underlay,
        )
    }

    #[test]
    fn routes_via_the_vpn_gateway_go_on_the_tun() {
        let a = run(
            &connected(),
            &Request::AddRoute(route("10.9.0.0", 24, "10.8.0.1", none())),
        )
        .unwrap();
        let Action::AddRoute(r) = a else {
            panic!("{a:?}")
        };
        assert_eq!((r.oif, r.gateway), (7, Some(ip("10.8.0.1"))));
    }

    #[test]
    fn hostile_underlay_requests_are_refused() {
        let j = connected();
        let veth = Interface::by_name("veth-c").unwrap();
        for (r, why) in [
            (
                Request::AddRoute(route("10.77.0.0", 16, "10.200.0.1", none())),
                "leaves the tunnel",
            ),
            (
                Request::AddRoute(route("8.8.8.8", 32, "10.200.0.99", veth.clone())),
                "differs from the current path",
            ),
            (
                Request::DelRoute(route("0.0.0.0", 0, "0.0.0.0", none())),
                "never deleted",
            ),
            (
                Request::DelRoute(route("10.200.0.0", 24, "0.0.0.0", veth.clone())),
                "not added by this session",
            ),
            (
                Request::AddAddress(AddressMsg {
                    family: AF_INET,
                    address: InetAddr::v4("10.200.0.77".parse().unwrap()),
                    prefix_len: 24,
                    iface: veth.clone(),
                }),
                "only the session's own",
            ),
            (
                Request::SetMtu(SetMtuMsg {
                    iface: Interface::by_index(2, "").unwrap(),
                    family: AF_INET,
                    mtu: 1400,
                }),
                "link #2",
            ),
        ] {
            let e = run(&j, &r).unwrap_err();
            assert_eq!(e.code, ERROR_ACCESS_DENIED, "{r:?}");
            assert!(e.reason.contains(why), "{}", e.reason);
        }
    }

    #[test]
    fn exactly_one_host_route_along_the_current_path() {
        let mut j = connected();
        let a = run(
            &j,
            &Request::AddRoute(route("10.200.0.1", 32, "10.200.0.1", none())),
        )
        .unwrap();
        let Action::AddRoute(spec) = a else { panic!() };
        assert_eq!((spec.oif, spec.dev.as_str()), (2, "veth-c"));
        j.intend(Change::Route(spec));
        let e = run(
            &j,
            &Request::AddRoute(route("10.200.0.5", 32, "10.200.0.1", none())),
        )
        .unwrap_err();
        assert!(e.reason.contains("one host route"), "{}", e.reason);
    }

    #[test]
    fn a_link_local_next_hop_without_a_link_is_not_the_tunnel() {
        let j = connected();
        let mut r = route("2001:db8::", 32, "fe80::1", none());
        r.family = AF_INET6;
        let e = run(&j, &Request::AddRoute(r.clone())).unwrap_err();
        assert_eq!(e.code, ERROR_ACCESS_DENIED, "{e}");
        r.iface = Interface::by_name("tun7").unwrap();
        let Action::AddRoute(spec) = run(&j, &Request::AddRoute(r)).unwrap() else {
            panic!()
        };
        assert_eq!(spec.oif, 7);
    }

    #[test]
    fn deletes_only_own_routes_and_addresses() {
        let mut j = connected();
        let (seq, _) = j.intend(Change::Route(RouteSpec {
            dst: ip("10.9.0.0"),
            prefix_len: 24,
            gateway: Some(ip("10.8.0.1")),
            oif: 7,
            dev: "tun7".into(),
            metric: Some(50),
        }));
        let mut del = route("10.9.0.0", 24, "0.0.0.0", none());
        del.metric = 51;
        assert!(run(&j, &Request::DelRoute(del.clone())).is_err());
        del.metric = 50;
        assert_eq!(
            run(&j, &Request::DelRoute(del)).unwrap(),
            Action::DelRoute(seq)
        );
    }

    #[test]
    fn bad_values_are_invalid_not_denied() {
        let j = connected();
        let e = run(
            &j,
            &Request::AddRoute(route("10.9.0.1", 24, "10.8.0.1", none())),
        )
        .unwrap_err();
        assert_eq!(e.code, ERROR_INVALID_PARAMETER);
        let e = run(
            &j,
            &Request::SetMtu(SetMtuMsg {
                iface: Interface::by_name("tun7").unwrap(),
                family: AF_INET,
                mtu: 20,
            }),
        )
        .unwrap_err();
        assert_eq!(e.code, ERROR_INVALID_PARAMETER);
    }

    #[test]
    fn dns_is_validated_and_summed() {
        let j = connected();
        let mut m = DnsCfgMsg {
            iface: Interface::by_name("tun7").unwrap(),
            domains: openvpnserv_proto::channel::FixedStr::new("corp\nnameserver 6.6.6.6").unwrap(),
            family: AF_INET,
            addr_len: 0,
            addr: [InetAddr::default(); 4],
        };
        assert_eq!(
            run(&j, &Request::AddDnsCfg(m.clone())).unwrap_err().code,
            ERROR_INVALID_PARAMETER
        );
        m.domains = openvpnserv_proto::channel::FixedStr::new("corp.example").unwrap();
        m.addr_len = 9;
        m.addr[0] = InetAddr::v4("10.8.0.53".parse().unwrap());
        let Action::Dns(s) = run(&j, &Request::AddDnsCfg(m)).unwrap() else {
            panic!()
        };
        // addr_len is clamped to the four slots, and empty (0.0.0.0) slots are no server.
        assert_eq!(s.servers4, [ip("10.8.0.53")]);
        assert_eq!(s.search, ["corp.example"]);
    }

    fn nrpt_msg(servers: &[&str], flags: u32) -> NrptCfgMsg {
        let mut addresses: [openvpnserv_proto::channel::FixedStr<48>; 8] = Default::default();
        for (slot, s) in addresses.iter_mut().zip(servers) {
            *slot = openvpnserv_proto::channel::FixedStr::new(s).unwrap();
        }
        NrptCfgMsg {
            iface: Interface::by_name("tun7").unwrap(),
            addresses,
            resolve_domains: openvpnserv_proto::channel::FixedStr::new(".lab.example").unwrap(),
            search_domains: openvpnserv_proto::channel::FixedStr::new("corp.example").unwrap(),
            flags,
        }
    }

    /// Profiles of one `--dns` configuration, one message each; the last chooses the first
    /// profile the backend can apply.
    #[test]
    fn dns_profiles_are_gathered_then_one_is_chosen_for_the_backend() {
        let t = tun();
        let j = connected();
        let two = |i: u32| (i << NRPT_PROFILE_SHIFT) | (2 << NRPT_PROFILES_SHIFT);
        let first = Request::AddNrptCfg(nrpt_msg(
            &["10.8.0.53:853", "[fd00:8::53]:853"],
            NRPT_DOT | NRPT_DNSSEC | two(0),
        ));
        let second = Request::AddNrptCfg(nrpt_msg(&["10.8.0.54"], two(1)));
        for (caps, tls, server) in [
            (
                crate::linux::dns::Backend::Resolved.caps(),
                true,
                "10.8.0.53",
            ),
            (
                crate::linux::dns::Backend::Resolvconf.caps(),
                false,
                "10.8.0.54",
            ),
        ] {
            let dns = DnsState::default();
            let facts = Facts {
                tun: &t,
                journal: &j,
                dns: &dns,
                caps,
            };
            let Ok(Action::KeepDns(kept)) = decide(facts, &first, &underlay) else {
                panic!("the first of two profiles is kept")
            };
            let facts = Facts {
                tun: &t,
                journal: &j,
                dns: &kept,
                caps,
            };
            let Ok(Action::Dns(state)) = decide(facts, &second, &underlay) else {
                panic!("the last profile chooses")
            };
            assert_eq!(state.tls, tls);
            assert_eq!(state.servers4, [ip(server)]);
            assert_eq!(state.routing, ["lab.example"]);
            assert_eq!(state.search, ["corp.example"]);
            assert!(state.pending.is_empty());
            if tls {
                assert_eq!(state.port(ip("fd00:8::53")), 853);
                assert_eq!(state.dnssec, Dnssec::Yes);
            } else {
                assert_eq!(state.skipped.len(), 1, "{:?}", state.skipped);
            }
        }
        // Out of order, or a server that is no address: refused.
        let dns = DnsState::default();
        let caps = crate::linux::dns::Backend::Resolved.caps();
        let facts = Facts {
            tun: &t,
            journal: &j,
            dns: &dns,
            caps,
        };
        assert!(decide(facts, &second, &underlay).is_err());
        let bad = Request::AddNrptCfg(nrpt_msg(&["10.8.0.53:0"], 0));
        assert!(decide(facts, &bad, &underlay).is_err());
        let bad = Request::AddNrptCfg(nrpt_msg(&["fd00::53:53"], 0));
        assert_eq!(
            decide(facts, &bad, &underlay).map(|a| matches!(a, Action::Dns(_))),
            Ok(true),
            "a bare IPv6 address ending in :53 is an address"
        );
        // Only DoH: nothing the backend can apply, and it says why.
        let doh = Request::AddNrptCfg(nrpt_msg(&["10.8.0.53"], NRPT_DOH));
        let e = decide(facts, &doh, &underlay).unwrap_err();
        assert!(e.reason.contains("DNS over HTTPS"), "{e}");
    }

    /// The 2.7 leak block is asked for conditionally: applied only with DNS servers.
    #[test]
    fn a_conditional_leak_block_needs_dns_servers() {
        let t = tun();
        let j = connected();
        let caps = crate::linux::dns::Backend::Resolved.caps();
        let req = Request::AddWfpBlock(openvpnserv_proto::channel::WfpBlockMsg {
            flags: WFP_BLOCK_DNS | WFP_BLOCK_IF_DNS,
            iface: Interface::by_name("tun7").unwrap(),
        });
        let none = DnsState::default();
        let facts = Facts {
            tun: &t,
            journal: &j,
            dns: &none,
            caps,
        };
        assert_eq!(decide(facts, &req, &underlay), Ok(Action::Nothing));
        let with = DnsState {
            servers4: vec![ip("10.8.0.53")],
            ..DnsState::default()
        };
        let facts = Facts {
            tun: &t,
            journal: &j,
            dns: &with,
            caps,
        };
        assert_eq!(
            decide(facts, &req, &underlay),
            Ok(Action::Block { dns_only: true })
        );
    }
}
