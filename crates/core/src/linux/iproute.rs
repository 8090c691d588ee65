//! openvpn's `ip` command lines as channel requests, and requests as `ip`-like text.
//!
//! Builds of openvpn with `--enable-iproute2` accept `--iproute <cmd>` and run it with exactly
//! the argv of `ip(8)` (design §2, `linux-captures.txt`); pointed at our hook, each command
//! becomes the requests [`parse`] returns. [`describe`] renders a request in the same words,
//! for log lines and for golden tests against the captures.
//!
//! Two translations are not one-to-one:
//! * `addr add dev D local A peer B` (net30/p2p) becomes the address `A/32` plus a host route
//!   to `B` on `D`, which is what a peer address means to the kernel; there is no peer field in
//!   the channel's address message.
//! * the default route is never deleted or replaced (design §3): `route add 0.0.0.0/0 via G`
//!   becomes `0.0.0.0/1` and `128.0.0.0/1` via `G` (def1 style), and `route del 0.0.0.0/0`
//!   deletes those two. `link set dev D up` alone needs no request (links come up with their
//!   MTU and addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::linux::TranslateError;
use openvpnserv_proto::channel::{
    AddressMsg, InetAddr, Interface, Request, RouteMsg, SetMtuMsg, AF_INET, AF_INET6, INDEX_INVALID,
};

/// Builds an interface by name (empty = none). Names longer than the field are refused.
pub fn iface(name: &str) -> Result<Interface, TranslateError> {
    Interface::by_name(name).map_err(|e| TranslateError::TooLong {
        value: name.to_owned(),
        why: e.to_string(),
    })
}

fn family(a: IpAddr) -> i16 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// An address request.
pub fn address(add: bool, addr: IpAddr, prefix_len: u8, dev: &Interface) -> Request {
    let m = AddressMsg {
        family: family(addr),
        address: InetAddr::from_ip(addr),
        prefix_len: i32::from(prefix_len),
        iface: dev.clone(),
    };
    if add {
        Request::AddAddress(m)
    } else {
        Request::DelAddress(m)
    }
}

/// A route request; `gateway` none = on link; `metric` none = −1.
pub fn route(
    add: bool,
    dst: IpAddr,
    prefix_len: u8,
    gateway: Option<IpAddr>,
    dev: &Interface,
    metric: Option<u32>,
) -> Request {
    let unspecified = if dst.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let m = RouteMsg {
        family: family(dst),
        prefix: InetAddr::from_ip(dst),
        prefix_len: i32::from(prefix_len),
        gateway: InetAddr::from_ip(gateway.unwrap_or(unspecified)),
        iface: dev.clone(),
        metric: metric.map_or(-1, |m| m as i32),
    };
    if add {
        Request::AddRoute(m)
    } else {
        Request::DelRoute(m)
    }
}

/// An MTU (and link up) request.
pub fn mtu(dev: &Interface, v6: bool, mtu: u32) -> Request {
    Request::SetMtu(SetMtuMsg {
        iface: dev.clone(),
        family: if v6 { AF_INET6 } else { AF_INET },
        mtu: mtu as i32,
    })
}

fn number(key: &str, value: &str) -> Result<u32, TranslateError> {
    value
        .parse()
        .map_err(|_| TranslateError::invalid(key, value, "a number"))
}

/// `a/len` or `a` (a host).
fn prefix(s: &str, v6: bool) -> Result<(IpAddr, u8), TranslateError> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None if s == "default" => (if v6 { "::" } else { "0.0.0.0" }, Some("0")),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| TranslateError::invalid("address", s, "an address"))?;
    if addr.is_ipv6() != v6 {
        return Err(TranslateError::invalid(
            "address",
            s,
            "of the command's family",
        ));
    }
    let full = if v6 { 128 } else { 32 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= full)
            .ok_or_else(|| TranslateError::invalid("prefix", s, "a valid prefix length"))?,
        None => full,
    };
    Ok((addr, len))
}

/// A route command; the default route becomes def1's two halves, as it is never replaced.
fn route_command(
    add: bool,
    (dst, len): (IpAddr, u8),
    gateway: Option<IpAddr>,
    dev: &Interface,
    metric: Option<u32>,
) -> Vec<Request> {
    if len > 0 {
        return vec![route(add, dst, len, gateway, dev, metric)];
    }
    let upper: IpAddr = if dst.is_ipv6() {
        Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0).into()
    } else {
        Ipv4Addr::new(128, 0, 0, 0).into()
    };
    [dst, upper]
        .iter()
        .map(|&d| route(add, d, 1, gateway, dev, metric))
        .collect()
}

/// The requests for one `ip` command line (without the program name).
pub fn parse(argv: &[String]) -> Result<Vec<Request>, TranslateError> {
    let command = |why: &str| TranslateError::Command {
        command: argv.join(" "),
        why: why.to_owned(),
    };
    let mut words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let v6 = match words.first() {
        Some(&"-6") => {
            words.remove(0);
            true
        }
        Some(&"-4") => {
            words.remove(0);
            false
        }
        _ => false,
    };
    let (object, verb, rest) = match words.as_slice() {
        [o, v, rest @ ..] => (*o, *v, rest),
        _ => return Err(command("too short")),
    };
    let mut dev = String::new();
    let mut positional = Vec::new();
    let mut opts: Vec<(&str, &str)> = Vec::new();
    let mut it = rest.iter();
    while let Some(&word) = it.next() {
        match word {
            "up" => opts.push(("up", "")),
            "dev" | "mtu" | "via" | "metric" | "local" | "peer" | "broadcast" | "table" => {
                let value = it
                    .next()
                    .ok_or_else(|| command(&format!("{word} needs a value")))?;
                if word == "dev" {
                    (*value).clone_into(&mut dev);
                } else {
                    opts.push((word, value));
                }
            }
            w => positional.push(w),
        }
    }
    let opt = |k: &str| opts.iter().find(|(o, _)| *o == k).map(|(_, v)| *v);
    let dev = iface(&dev)?;
    let bad = |why: &str| Err(command(why));
    let metric = opt("metric").map(|m| number("metric", m)).transpose()?;
    if opt("table").is_some() {
        return bad("routing tables other than main are not supported");
    }
    if matches!(object, "link" | "addr" | "address") && dev.name.is_empty() {
        return bad("a link must be named with dev");
    }
    match (object, verb) {
        ("link", "set") => match opt("mtu") {
            Some(m) => Ok(vec![mtu(&dev, v6, number("mtu", m)?)]),
            None if opt("up").is_some() => Ok(Vec::new()),
            None => bad("only 'up' and 'mtu' are supported"),
        },
        ("addr" | "address", "add" | "del") => {
            let add = verb == "add";
            if let (Some(local), Some(peer)) = (opt("local"), opt("peer")) {
                let (a, _) = prefix(local, v6)?;
                let (p, plen) = prefix(peer, v6)?;
                let full = if v6 { 128 } else { 32 };
                let addr = address(add, a, full, &dev);
                let peer = route(add, p, plen, None, &dev, None);
                return Ok(if add {
                    vec![addr, peer]
                } else {
                    vec![peer, addr]
                });
            }
            let [p] = positional.as_slice() else {
                return bad("expected one address");
            };
            let (a, len) = prefix(p, v6)?;
            Ok(vec![address(add, a, len, &dev)])
        }
        ("route" | "r", "add" | "del") => {
            let [p] = positional.as_slice() else {
                return bad("expected one destination");
            };
            let gateway = opt("via").map(|g| prefix(g, v6).map(|x| x.0)).transpose()?;
            Ok(route_command(
                verb == "add",
                prefix(p, v6)?,
                gateway,
                &dev,
                metric,
            ))
        }
        _ => bad("unsupported command"),
    }
}

fn name(i: &Interface) -> String {
    if !i.name.is_empty() {
        String::from_utf8_lossy(i.name.as_bytes()).into_owned()
    } else if i.index != INDEX_INVALID {
        format!("#{}", i.index)
    } else {
        String::new()
    }
}

/// A request in `ip` words, in the word order openvpn uses (see the captures).
pub fn describe(r: &Request) -> String {
    let ip = |a: &InetAddr, f: i16| a.to_ip(f).map_or_else(|| "?".into(), |a| a.to_string());
    match r {
        Request::SetMtu(m) => format!("link set dev {} up mtu {}", name(&m.iface), m.mtu),
        Request::AddAddress(m) | Request::DelAddress(m) => {
            let verb = if matches!(r, Request::AddAddress(_)) {
                "add"
            } else {
                "del"
            };
            let a = format!("{}/{}", ip(&m.address, m.family), m.prefix_len);
            if m.family == AF_INET6 {
                format!("-6 addr {verb} {a} dev {}", name(&m.iface))
            } else {
                format!("addr {verb} dev {} {a}", name(&m.iface))
            }
        }
        Request::AddRoute(m) | Request::DelRoute(m) => {
            let add = matches!(r, Request::AddRoute(_));
            let verb = if add { "add" } else { "del" };
            let dst = format!("{}/{}", ip(&m.prefix, m.family), m.prefix_len);
            let gw = m
                .gateway
                .to_ip(m.family)
                .filter(|g| !g.is_unspecified())
                .map(|g| format!(" via {g}"))
                .unwrap_or_default();
            let dev = match name(&m.iface) {
                n if n.is_empty() => String::new(),
                n => format!(" dev {n}"),
            };
            let metric = if m.metric >= 0 {
                format!(" metric {}", m.metric)
            } else {
                String::new()
            };
            if m.family == AF_INET6 {
                format!("-6 route {verb} {dst}{gw}{dev}{metric}")
            } else if add {
                format!("route {verb} {dst}{dev}{metric}{gw}")
            } else {
                format!("route {verb} {dst}{dev}{metric}")
            }
        }
        Request::AddDnsCfg(m) | Request::DelDnsCfg(m) => {
            let verb = if matches!(r, Request::AddDnsCfg(_)) {
                "add"
            } else {
                "del"
            };
            let servers: Vec<String> = m.addr[..m.addr_len.min(4) as usize]
                .iter()
                .map(|a| ip(a, m.family))
                .collect();
            format!(
                "dns {verb} dev {} family {} servers [{}] domains [{}]",
                name(&m.iface),
                if m.family == AF_INET6 { 6 } else { 4 },
                servers.join(" "),
                String::from_utf8_lossy(m.domains.as_bytes())
            )
        }
        Request::AddNrptCfg(m) | Request::DelNrptCfg(m) => {
            let verb = if matches!(r, Request::AddNrptCfg(_)) {
                "add"
            } else {
                "del"
            };
            let servers: Vec<String> = m
                .addresses
                .iter()
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
                .collect();
            format!(
                "dns {verb} dev {} servers [{}] resolve-domains [{}] search-domains [{}]",
                name(&m.iface),
                servers.join(" "),
                String::from_utf8_lossy(m.resolve_domains.as_bytes()),
                String::from_utf8_lossy(m.search_domains.as_bytes())
            )
        }
        Request::AddWfpBlock(m) => format!("block add dev {} flags {}", name(&m.iface), m.flags),
        Request::DelWfpBlock(m) => format!("block del dev {} flags {}", name(&m.iface), m.flags),
        other => format!("{:?}", other.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn round_trips_openvpns_words() {
        for line in [
            "link set dev tun0 up mtu 1500",
            "addr add dev tun0 10.8.0.2/24",
            "-6 addr add fd00:8::1000/64 dev tun0",
            "route add 10.200.0.1/32 dev veth-c via 10.200.0.1",
            "route add 10.77.0.0/16 metric 50 via 10.200.0.1",
            "-6 route add fd00:77::/64 dev tun0 metric 7",
            "route del 10.9.0.0/24 metric 50",
            "-6 route del fd00:9::/64 dev tun0",
        ] {
            let r = parse(&words(line)).unwrap();
            assert_eq!(r.len(), 1, "{line}");
            assert_eq!(describe(&r[0]), line);
        }
    }

    #[test]
    fn peer_and_default_route_translations() {
        let r = parse(&words("addr add dev tun0 local 10.10.0.6 peer 10.10.0.5")).unwrap();
        let got: Vec<String> = r.iter().map(describe).collect();
        assert_eq!(
            got,
            [
                "addr add dev tun0 10.10.0.6/32",
                "route add 10.10.0.5/32 dev tun0"
            ]
        );
        let r = parse(&words("route add 0.0.0.0/0 via 10.8.0.1")).unwrap();
        let got: Vec<String> = r.iter().map(describe).collect();
        assert_eq!(
            got,
            [
                "route add 0.0.0.0/1 via 10.8.0.1",
                "route add 128.0.0.0/1 via 10.8.0.1"
            ]
        );
        assert!(parse(&words("link set dev tun0 up")).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for line in [
            "route add 10.0.0.0/8 via 1.2.3.4 table 5",
            "link set dev tun0 down",
            "addr flush dev eth0",
            "route add 10.0.0.0/33",
            "-6 route add 10.0.0.0/8 dev tun0",
            "route add",
            "addr add dev tun0",
            "addr add 10.8.0.2/24",
            "link set up mtu 1500",
        ] {
            assert!(parse(&words(line)).is_err(), "{line}");
        }
    }
}
