//! The WFP filter plan of `add_wfp_block` (spec §5.6.4), as data.
//!
//! The platform turns each [`Filter`] into an `FWPM_FILTER0` inside a dynamic session; the
//! plan itself (which filters, in which order, with which weights and conditions) is decided
//! here so that it is tested without WFP.

/// `wfp_block_message_t.flags` value that limits blocking to DNS.
pub const FLAGS_DNS_ONLY: u32 = 2;
/// Interface metric given to the tunnel while blocking is active.
pub const BLOCK_IFACE_METRIC: u32 = 3;
/// The sublayer key `{2f660d7e-6a37-11e6-a181-001e8c6e04a2}`.
pub const SUBLAYER_KEY: &str = "2f660d7e-6a37-11e6-a181-001e8c6e04a2";
/// The sublayer weight.
pub const SUBLAYER_WEIGHT: u16 = 0x100;
/// Name (and description) of the sublayer and of every filter.
pub const NAME: &str = "OpenVPN";

/// `ALE_AUTH_CONNECT` layer of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V4`.
    V4,
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V6`.
    V6,
}

/// What a filter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `FWP_ACTION_PERMIT`.
    Permit,
    /// `FWP_ACTION_BLOCK`.
    Block,
}

/// One match condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `FWPM_CONDITION_ALE_APP_ID` equal to the app id of this executable.
    AppId(String),
    /// `FWPM_CONDITION_IP_REMOTE_PORT` equal to 53.
    RemotePortDns,
    /// `FWPM_CONDITION_FLAGS` with the loopback flag not set (`FWP_MATCH_FLAGS_NONE_SET`).
    NotLoopback,
    /// `FWPM_CONDITION_FLAGS` with the loopback flag set (`FWP_MATCH_FLAGS_ALL_SET`).
    Loopback,
    /// `FWPM_CONDITION_IP_LOCAL_INTERFACE` equal to this LUID.
    LocalInterface(u64),
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Layer.
    pub layer: Layer,
    /// Action.
    pub action: Action,
    /// `FWP_UINT8` weight, or `None` for `FWP_EMPTY` (automatic).
    pub weight: Option<u8>,
    /// Conditions, all of which must match.
    pub conditions: Vec<Condition>,
}

/// Whether a message's flags ask for DNS-only blocking (exactly 2; anything else blocks all).
pub fn dns_only(flags: u32) -> bool {
    flags == FLAGS_DNS_ONLY
}

/// The eight filters, in the order they are added.
pub fn plan(exe_path: &str, tunnel_luid: u64, dns_only: bool) -> Vec<Filter> {
    let with_dns = |mut c: Vec<Condition>| {
        if dns_only {
            c.push(Condition::RemotePortDns);
        }
        c
    };
    let mut filters = Vec::with_capacity(8);
    let both = |filters: &mut Vec<Filter>, action, weight, conditions: Vec<Condition>| {
        for layer in [Layer::V4, Layer::V6] {
            filters.push(Filter {
                layer,
                action,
                weight,
                conditions: conditions.clone(),
            });
        }
    };
    both(
        &mut filters,
        Action::Permit,
        Some(15),
        with_dns(vec![Condition::AppId(exe_path.to_owned())]),
    );
    both(
        &mut filters,
        Action::Block,
        None,
        with_dns(vec![Condition::NotLoopback]),
    );
    both(
        &mut filters,
        Action::Permit,
        Some(14),
        with_dns(vec![Condition::LocalInterface(tunnel_luid)]),
    );
    both(
        &mut filters,
        Action::Block,
        None,
        vec![Condition::Loopback, Condition::RemotePortDns],
    );
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_flags_two_is_dns_only() {
        assert!(dns_only(2));
        for f in [0, 1, 3, u32::MAX] {
            assert!(!dns_only(f), "{f}");
        }
    }

    #[test]
    fn eight_filters_block_all() {
        let p = plan(r"C:\o\openvpn.exe", 77, false);
        assert_eq!(p.len(), 8);
        assert_eq!(
            p[0],
            Filter {
                layer: Layer::V4,
                action: Action::Permit,
                weight: Some(15),
                conditions: vec![Condition::AppId(r"C:\o\openvpn.exe".into())]
            }
        );
        assert_eq!(p[1].layer, Layer::V6);
        assert_eq!(p[2].conditions, vec![Condition::NotLoopback]);
        assert_eq!((p[2].action, p[2].weight), (Action::Block, None));
        assert_eq!(p[4].conditions, vec![Condition::LocalInterface(77)]);
        assert_eq!(p[5].weight, Some(14));
        assert_eq!(
            p[6].conditions,
            vec![Condition::Loopback, Condition::RemotePortDns]
        );
        assert_eq!(p[7].action, Action::Block);
    }

    #[test]
    fn dns_only_adds_port_53_to_the_first_six() {
        let p = plan("x", 1, true);
        for f in &p[..6] {
            assert_eq!(
                f.conditions.last(),
                Some(&Condition::RemotePortDns),
                "{f:?}"
            );
        }
        assert_eq!(
            p[6].conditions,
            vec![Condition::Loopback, Condition::RemotePortDns]
        );
    }
}
