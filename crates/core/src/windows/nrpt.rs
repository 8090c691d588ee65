//! NRPT rule names and values (spec §5.6.7), as pure functions.

/// Prefix of every rule subkey the service creates.
pub const RULE_PREFIX: &str = "OpenVPNDNSRouting";
/// Group-policy NRPT base key (used when it exists).
pub const GPOL_BASE: &str = r"SOFTWARE\Policies\Microsoft\Windows NT\DNSClient\DnsPolicyConfig";
/// Local NRPT base key (created when the policy key does not exist).
pub const LOCAL_BASE: &str =
    r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
/// Most exclude rules one session creates.
pub const MAX_EXCLUDE_RULES: usize = 8;
/// `ConfigOptions` without and with DNSSEC.
pub const CONFIG_OPTIONS: u32 = 0x8;
/// `ConfigOptions` with DNSSEC validation required.
pub const CONFIG_OPTIONS_DNSSEC: u32 = 0xA;

/// The main rule of the openvpn process `pid`: `OpenVPNDNSRouting-<pid>`.
pub fn main_rule(pid: u32) -> String {
    format!("{RULE_PREFIX}-{pid}")
}

/// Exclude rule `n` (0-based) of `pid`: `OpenVPNDNSRoutingX-<nn as %02x>-<pid>`.
pub fn exclude_rule(n: usize, pid: u32) -> String {
    format!("{RULE_PREFIX}X-{n:02x}-{pid}")
}

/// Whether subkey `name` is one of ours and belongs to `pid` (`0` = any pid).
pub fn is_rule_of(name: &str, pid: u32) -> bool {
    name.starts_with(RULE_PREFIX) && (pid == 0 || name.ends_with(&format!("-{pid}")))
}

/// The `Name` multi-string of a rule: the comma-separated resolve domains, or `.` (every
/// name) when there are none.
pub fn rule_names(resolve_domains: &str) -> Vec<String> {
    if resolve_domains.is_empty() {
        vec![".".to_owned()]
    } else {
        resolve_domains
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// One value of a rule key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleValue {
    /// `REG_SZ`.
    Sz(String),
    /// `REG_MULTI_SZ`.
    MultiSz(Vec<String>),
    /// `REG_DWORD`.
    Dword(u32),
}

/// The values of one rule, in the order they are written.
pub fn rule_values(
    names: Vec<String>,
    servers: &[String],
    dnssec: bool,
) -> Vec<(&'static str, RuleValue)> {
    let mut values = vec![
        ("Name", RuleValue::MultiSz(names)),
        ("GenericDNSServers", RuleValue::Sz(servers.join(";"))),
    ];
    if dnssec {
        values.push(("DNSSECValidationRequired", RuleValue::Dword(1)));
        values.push(("DNSSECQueryIPSECRequired", RuleValue::Dword(0)));
        values.push(("DNSSECQueryIPSECEncryption", RuleValue::Dword(0)));
    }
    values.push((
        "ConfigOptions",
        RuleValue::Dword(if dnssec {
            CONFIG_OPTIONS_DNSSEC
        } else {
            CONFIG_OPTIONS
        }),
    ));
    values.push(("Version", RuleValue::Dword(2)));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(main_rule(4242), "OpenVPNDNSRouting-4242");
        assert_eq!(exclude_rule(10, 4242), "OpenVPNDNSRoutingX-0a-4242");
        assert!(is_rule_of("OpenVPNDNSRouting-4242", 4242));
        assert!(is_rule_of("OpenVPNDNSRoutingX-00-4242", 4242));
        assert!(!is_rule_of("OpenVPNDNSRouting-14242x", 4242));
        assert!(!is_rule_of("OpenVPNDNSRouting-42", 4242));
        assert!(is_rule_of("OpenVPNDNSRouting-42", 0));
        assert!(!is_rule_of("Other-42", 0));
    }

    #[test]
    fn catch_all_and_domains() {
        assert_eq!(rule_names(""), vec!["."]);
        assert_eq!(rule_names(".a.com,.b.com"), vec![".a.com", ".b.com"]);
    }

    #[test]
    fn values_with_and_without_dnssec() {
        let v = rule_values(
            vec![".".into()],
            &["10.0.0.1".into(), "10.0.0.2".into()],
            false,
        );
        assert_eq!(
            v[1],
            (
                "GenericDNSServers",
                RuleValue::Sz("10.0.0.1;10.0.0.2".into())
            )
        );
        assert_eq!(v[2], ("ConfigOptions", RuleValue::Dword(8)));
        assert_eq!(v.len(), 4);
        let v = rule_values(vec![".".into()], &[], true);
        assert!(v.contains(&("DNSSECValidationRequired", RuleValue::Dword(1))));
        assert!(v.contains(&("ConfigOptions", RuleValue::Dword(0xA))));
        assert_eq!(v.last(), Some(&("Version", RuleValue::Dword(2))));
    }
}
