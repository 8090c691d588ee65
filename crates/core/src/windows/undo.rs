//! A session's undo lists (spec §5.7): eight LIFO lists, processed at the end of a session in
//! a fixed order, each newest first.

use crate::windows::net::{AddressRow, RouteRow};

/// What `add_wfp_block` left to undo: the engine and the metrics it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WfpUndo<E> {
    /// The open WFP session.
    pub engine: E,
    /// The tunnel's interface index.
    pub index: u32,
    /// Its IPv4 metric before (0 = automatic); `None` if it could not be read.
    pub metric_v4: Option<u32>,
    /// Its IPv6 metric before.
    pub metric_v6: Option<u32>,
}

/// Search domains a session added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainsUndo {
    /// The interface alias (the key of a per-interface list is found from it).
    pub alias: String,
    /// The comma-separated domains added.
    pub domains: String,
}

/// One undo step, in the order [`UndoLists::drain`] yields them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoStep<E> {
    /// Delete an address.
    Address(AddressRow),
    /// Delete a route.
    Route(RouteRow),
    /// Close a WFP session and restore metrics.
    WfpBlock(WfpUndo<E>),
    /// Clear the IPv4 `NameServer` of the interface with this GUID.
    Dns4(String),
    /// Clear the IPv6 `NameServer`.
    Dns6(String),
    /// Delete the NRPT rules of this openvpn pid.
    Nrpt(u32),
    /// Remove search domains.
    Domains(DomainsUndo),
    /// Delete the WINS servers of this interface index.
    Wins(u32),
}

/// The eight lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoLists<E> {
    /// Addresses added.
    pub address: Vec<AddressRow>,
    /// Routes added.
    pub route: Vec<RouteRow>,
    /// WFP sessions opened.
    pub wfp_block: Vec<WfpUndo<E>>,
    /// Interfaces whose IPv4 DNS servers were set.
    pub dns4: Vec<String>,
    /// Interfaces whose IPv6 DNS servers were set.
    pub dns6: Vec<String>,
    /// openvpn pids with NRPT rules.
    pub nrpt: Vec<u32>,
    /// Search domains added.
    pub domains: Vec<DomainsUndo>,
    /// Interfaces whose WINS servers were set.
    pub wins: Vec<u32>,
}

impl<E> Default for UndoLists<E> {
    fn default() -> Self {
        Self {
            address: Vec::new(),
            route: Vec::new(),
            wfp_block: Vec::new(),
            dns4: Vec::new(),
            dns6: Vec::new(),
            nrpt: Vec::new(),
            domains: Vec::new(),
            wins: Vec::new(),
        }
    }
}

/// Removes the newest item equal to `item`; whether one was found.
pub fn remove_newest<T: PartialEq>(list: &mut Vec<T>, item: &T) -> bool {
    match list.iter().rposition(|x| x == item) {
        Some(at) => {
            list.remove(at);
            true
        }
        None => false,
    }
}

impl<E> UndoLists<E> {
    /// Whether nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.address.is_empty()
            && self.route.is_empty()
            && self.wfp_block.is_empty()
            && self.dns4.is_empty()
            && self.dns6.is_empty()
            && self.nrpt.is_empty()
            && self.domains.is_empty()
            && self.wins.is_empty()
    }

    /// Empties every list and returns the steps in the order of spec §5.7: address, route,
    /// `wfp_block`, dns4, dns6, nrpt, domains, wins; each list newest first.
    pub fn drain(&mut self) -> Vec<UndoStep<E>> {
        let mut steps = Vec::new();
        steps.extend(self.address.drain(..).rev().map(UndoStep::Address));
        steps.extend(self.route.drain(..).rev().map(UndoStep::Route));
        steps.extend(self.wfp_block.drain(..).rev().map(UndoStep::WfpBlock));
        steps.extend(self.dns4.drain(..).rev().map(UndoStep::Dns4));
        steps.extend(self.dns6.drain(..).rev().map(UndoStep::Dns6));
        steps.extend(self.nrpt.drain(..).rev().map(UndoStep::Nrpt));
        steps.extend(self.domains.drain(..).rev().map(UndoStep::Domains));
        steps.extend(self.wins.drain(..).rev().map(UndoStep::Wins));
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::net::IfRef;
    use openvpnserv_proto::channel::InetAddr;

    fn addr(n: u8) -> AddressRow {
        AddressRow {
            family: 2,
            address: InetAddr::v4([10, 0, 0, n].into()),
            prefix_len: 24,
            iface: IfRef::Index(7),
        }
    }

    #[test]
    fn drain_is_list_order_then_newest_first() {
        let mut u: UndoLists<u32> = UndoLists::default();
        u.wins.push(7);
        u.dns4.push("{A}".into());
        u.address.push(addr(1));
        u.address.push(addr(2));
        u.nrpt.push(99);
        u.wfp_block.push(WfpUndo {
            engine: 5,
            index: 7,
            metric_v4: Some(0),
            metric_v6: None,
        });
        u.dns6.push("{B}".into());
        u.domains.push(DomainsUndo {
            alias: "tun".into(),
            domains: "a".into(),
        });
        let steps = u.drain();
        let names: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                UndoStep::Address(_) => "address",
                UndoStep::Route(_) => "route",
                UndoStep::WfpBlock(_) => "wfp",
                UndoStep::Dns4(_) => "dns4",
                UndoStep::Dns6(_) => "dns6",
                UndoStep::Nrpt(_) => "nrpt",
                UndoStep::Domains(_) => "domains",
                UndoStep::Wins(_) => "wins",
            })
            .collect();
        assert_eq!(
            names,
            ["address", "address", "wfp", "dns4", "dns6", "nrpt", "domains", "wins"]
        );
        assert_eq!(steps[0], UndoStep::Address(addr(2)));
        assert!(u.is_empty());
    }

    #[test]
    fn remove_newest_equal_item_only() {
        let mut list = vec![addr(1), addr(2), addr(1)];
        assert!(remove_newest(&mut list, &addr(1)));
        assert_eq!(list, vec![addr(1), addr(2)]);
        assert!(!remove_newest(&mut list, &addr(3)));
        assert_eq!(list.len(), 2);
    }
}
