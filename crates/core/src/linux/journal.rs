//! The undo journal of a Linux session (design §5): what was changed, so it can be undone.
//!
//! Every change is written down as an *intent* before it is made and *confirmed* after; when
//! it is undone (or failed) it is marked *gone*. A journal is a sequence of [`Record`]s, one
//! JSON object per line, so a record torn by a crash is just an unreadable last line.
//! Replaying the records gives the changes still live; [`Journal::undo_plan`] lists them
//! newest first. An intent that was never confirmed is undone too: the change may have
//! happened before the crash, and every undo tolerates "already gone".

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An address placed on a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressSpec {
    /// Link index.
    pub ifindex: u32,
    /// Link name (for logs and for knowing it dies with its tun).
    pub dev: String,
    /// The address.
    pub addr: IpAddr,
    /// On-link prefix length.
    pub prefix_len: u8,
}

/// A route in the main table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Destination prefix (host bits zero).
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Next hop, if any (none = on link).
    pub gateway: Option<IpAddr>,
    /// Output link index.
    pub oif: u32,
    /// Output link name.
    pub dev: String,
    /// Route priority; none = the kernel's default.
    pub metric: Option<u32>,
}

/// How a session's DNS settings are taken back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum DnsUndo {
    /// `RevertLink(ifindex)` on systemd-resolved.
    Resolved {
        /// The tun's index.
        ifindex: u32,
    },
    /// `resolvconf -d <name>`.
    Resolvconf {
        /// The record name given to `resolvconf -a`.
        name: String,
    },
    /// Forget the session's settings kept in `backup`; `path` then shows another live
    /// session's, or the original (kept once, beside `backup`) when none is left.
    Direct {
        /// The resolv.conf that was rewritten.
        path: String,
        /// Where the session's settings are kept while it lives (in the run directory).
        backup: String,
    },
}

/// One undoable change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A persistent tun device; undo deletes it (and with it every address and route on it).
    Tun {
        /// Device name.
        name: String,
    },
    /// A private tun device node.
    DeviceNode {
        /// Its path.
        path: String,
    },
    /// An address.
    Address(AddressSpec),
    /// A route.
    Route(RouteSpec),
    /// DNS settings.
    Dns(DnsUndo),
    /// An nftables table (family `inet`).
    Firewall {
        /// Table name.
        table: String,
    },
}

impl Change {
    /// The link this change lives on, if deleting that link removes it.
    pub fn on_link(&self) -> Option<&str> {
        match self {
            Change::Address(a) => Some(&a.dev),
            Change::Route(r) => Some(&r.dev),
            _ => None,
        }
    }
}

/// One line of a journal file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// Who the journal belongs to (first line; for log lines at replay).
    Session {
        /// Session number.
        id: u64,
        /// User id.
        uid: u32,
        /// Login name.
        user: String,
    },
    /// A change is about to be made.
    Intent {
        /// Sequence number, increasing within a journal.
        seq: u64,
        /// The change.
        change: Change,
    },
    /// The change with this number was made.
    Done {
        /// Its sequence number.
        seq: u64,
    },
    /// The change with this number was undone, or failed: nothing to undo.
    Gone {
        /// Its sequence number.
        seq: u64,
    },
}

impl Record {
    /// The record as one line, newline included.
    pub fn to_line(&self) -> String {
        // Serializing these plain types cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// Parses journal text: every complete, readable line. Returns the records and the number of
/// lines that could not be read (a torn last write, or damage).
pub fn parse(text: &str) -> (Vec<Record>, usize) {
    let mut bad = 0;
    let mut records = Vec::new();
    for line in text.split_inclusive('\n') {
        let complete = line.ends_with('\n');
        match serde_json::from_str::<Record>(line.trim_end()) {
            Ok(r) if complete => records.push(r),
            _ if line.trim().is_empty() => {}
            _ => bad += 1,
        }
    }
    (records, bad)
}

/// A change the journal holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The change.
    pub change: Change,
    /// Whether it was confirmed.
    pub done: bool,
}

/// Route lookup key: family is implied by the address.
type Key = (IpAddr, u8);

/// The books of one session: live changes by sequence number, with indexes for the lookups
/// the policy makes on every request.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    next_seq: u64,
    live: BTreeMap<u64, Entry>,
    routes: HashMap<Key, Vec<u64>>,
    addresses: HashMap<IpAddr, Vec<u64>>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the books from records (replay after a crash).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut j = Self::new();
        for r in records {
            j.apply(r);
        }
        j
    }

    /// Applies one record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Session { .. } => {}
            Record::Intent { seq, change } => {
                // Numbers come from a file that may be damaged: never overflow on one.
                self.next_seq = self.next_seq.max(seq.saturating_add(1));
                self.insert(*seq, change.clone());
            }
            Record::Done { seq } => {
                if let Some(e) = self.live.get_mut(seq) {
                    e.done = true;
                }
            }
            Record::Gone { seq } => {
                self.remove(*seq);
            }
        }
    }

    /// Registers a change about to be made; returns its number and the record to write first.
    pub fn intend(&mut self, change: Change) -> (u64, Record) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(seq, change.clone());
        (seq, Record::Intent { seq, change })
    }

    /// The change `seq` was made; returns the record to write.
    pub fn confirm(&mut self, seq: u64) -> Record {
        let r = Record::Done { seq };
        self.apply(&r);
        r
    }

    /// The change `seq` was undone or failed; returns the record to write.
    pub fn forget(&mut self, seq: u64) -> Record {
        self.remove(seq);
        Record::Gone { seq }
    }

    fn insert(&mut self, seq: u64, change: Change) {
        match &change {
            Change::Route(r) => self
                .routes
                .entry((r.dst, r.prefix_len))
                .or_default()
                .push(seq),
            Change::Address(a) => self.addresses.entry(a.addr).or_default().push(seq),
            _ => {}
        }
        self.live.insert(
            seq,
            Entry {
                change,
                done: false,
            },
        );
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.live.remove(&seq)?;
        let unindex = |v: &mut Vec<u64>| v.retain(|&s| s != seq);
        match &entry.change {
            Change::Route(r) => {
                if let Some(v) = self.routes.get_mut(&(r.dst, r.prefix_len)) {
                    unindex(v);
                }
            }
            Change::Address(a) => {
                if let Some(v) = self.addresses.get_mut(&a.addr) {
                    unindex(v);
                }
            }
            _ => {}
        }
        Some(entry)
    }

    /// A live change.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.live.get(&seq)
    }

    /// Every live change, oldest first.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = (u64, &Entry)> {
        self.live.iter().map(|(s, e)| (*s, e))
    }

    /// Number of live changes.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Live routes to exactly `dst/prefix_len`, newest first.
    pub fn routes_to(
        &self,
        dst: IpAddr,
        prefix_len: u8,
    ) -> impl Iterator<Item = (u64, &RouteSpec)> {
        self.routes
            .get(&(dst, prefix_len))
            .into_iter()
            .flat_map(|v| v.iter().rev())
            .filter_map(|s| match self.live.get(s).map(|e| &e.change) {
                Some(Change::Route(r)) => Some((*s, r)),
                _ => None,
            })
    }

    /// Live addresses equal to `addr`, newest first.
    pub fn addresses_of(&self, addr: IpAddr) -> impl Iterator<Item = (u64, &AddressSpec)> {
        self.addresses
            .get(&addr)
            .into_iter()
            .flat_map(|v| v.iter().rev())
            .filter_map(|s| match self.live.get(s).map(|e| &e.change) {
                Some(Change::Address(a)) => Some((*s, a)),
                _ => None,
            })
    }

    /// Every live address (through the index: a session has a handful of addresses and may
    /// have thousands of routes, and the policy asks this for each route).
    pub fn addresses(&self) -> impl Iterator<Item = &AddressSpec> {
        self.addresses.values().flatten().filter_map(|s| {
            match self.live.get(s).map(|e| &e.change) {
                Some(Change::Address(a)) => Some(a),
                _ => None,
            }
        })
    }

    /// The first live change matching `pred`.
    pub fn find(&self, pred: impl Fn(&Change) -> bool) -> Option<u64> {
        self.live
            .iter()
            .find(|(_, e)| pred(&e.change))
            .map(|(s, _)| *s)
    }

    /// What to undo, newest first. Addresses and routes on a tun that is itself undone later
    /// are left out: deleting the link removes them, in one step instead of thousands.
    pub fn undo_plan(&self) -> Vec<(u64, Change)> {
        let tuns: Vec<(u64, &str)> = self
            .live
            .iter()
            .filter_map(|(&s, e)| match &e.change {
                Change::Tun { name } => Some((s, name.as_str())),
                _ => None,
            })
            .collect();
        let mut plan = Vec::new();
        for (&seq, entry) in self.live.iter().rev() {
            let dies_with_link = entry
                .change
                .on_link()
                .is_some_and(|dev| tuns.iter().any(|&(s, n)| s < seq && n == dev));
            if !dies_with_link {
                plan.push((seq, entry.change.clone()));
            }
        }
        plan
    }

    /// The records that recreate these books (for compacting a journal file).
    pub fn snapshot(&self, session: &Record) -> Vec<Record> {
        let mut out = vec![session.clone()];
        for (&seq, e) in &self.live {
            out.push(Record::Intent {
                seq,
                change: e.change.clone(),
            });
            if e.done {
                out.push(Record::Done { seq });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, len: u8, dev: &str) -> Change {
        Change::Route(RouteSpec {
            dst: dst.parse().unwrap(),
            prefix_len: len,
            gateway: None,
            oif: 7,
            dev: dev.into(),
            metric: None,
        })
    }

    #[test]
    fn replay_gives_live_changes_newest_first() {
        let mut j = Journal::new();
        let mut lines = String::new();
        for c in [
            Change::Tun {
                name: "tun9".into(),
            },
            route("10.200.0.1", 32, "veth-c"),
            Change::Firewall { table: "t".into() },
        ] {
            let (seq, r) = j.intend(c);
            lines += &r.to_line();
            lines += &j.confirm(seq).to_line();
        }
        lines += &j.forget(2).to_line();
        let (records, bad) = parse(&lines);
        assert_eq!(bad, 0);
        let replayed = Journal::from_records(&records);
        let plan: Vec<u64> = replayed.undo_plan().iter().map(|(s, _)| *s).collect();
        assert_eq!(plan, vec![1, 0]);
    }

    #[test]
    fn unconfirmed_intent_is_undone_and_torn_line_ignored() {
        let mut j = Journal::new();
        let (_, r) = j.intend(Change::Firewall { table: "t".into() });
        let mut text = r.to_line();
        text += "{\"op\":\"done\",\"se";
        let (records, bad) = parse(&text);
        assert_eq!(bad, 1);
        let replayed = Journal::from_records(&records);
        assert_eq!(replayed.undo_plan().len(), 1);
        assert!(!replayed.get(0).unwrap().done);
    }

    #[test]
    fn routes_on_a_tun_that_is_deleted_later_are_not_undone_one_by_one() {
        let mut j = Journal::new();
        j.intend(Change::Tun {
            name: "tun9".into(),
        });
        j.intend(route("10.9.0.0", 24, "tun9"));
        j.intend(route("10.200.0.1", 32, "veth-c"));
        let plan = j.undo_plan();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].1, route("10.200.0.1", 32, "veth-c"));
        assert_eq!(
            plan[1].1,
            Change::Tun {
                name: "tun9".into()
            }
        );
    }

    #[test]
    fn a_sequence_number_at_the_top_of_its_range_is_replayed_without_overflow() {
        let text = format!(
            "{{\"op\":\"intent\",\"seq\":{m},\"change\":{{\"kind\":\"firewall\",\"table\":\"t\"}}}}\n{{\"op\":\"done\",\"seq\":{m}}}\n",
            m = u64::MAX
        );
        let (records, bad) = parse(&text);
        assert_eq!(bad, 0);
        let replayed = Journal::from_records(&records);
        assert_eq!(replayed.undo_plan().len(), 1);
        assert!(replayed.get(u64::MAX).unwrap().done);
    }

    #[test]
    fn indexes_follow_forget_and_snapshot_round_trips() {
        let mut j = Journal::new();
        let (a, _) = j.intend(route("10.9.0.0", 24, "tun9"));
        let (b, _) = j.intend(route("10.9.0.0", 24, "tun9"));
        j.confirm(a);
        let dst: IpAddr = "10.9.0.0".parse().unwrap();
        assert_eq!(
            j.routes_to(dst, 24).map(|(s, _)| s).collect::<Vec<_>>(),
            [b, a]
        );
        j.forget(b);
        assert_eq!(
            j.routes_to(dst, 24).map(|(s, _)| s).collect::<Vec<_>>(),
            [a]
        );
        let session = Record::Session {
            id: 1,
            uid: 1000,
            user: "u".into(),
        };
        let again = Journal::from_records(&j.snapshot(&session));
        assert_eq!(again.live().count(), 1);
        assert!(again.get(a).unwrap().done);
        // Numbers keep increasing after a replay, so records never collide.
        let mut again = again;
        assert!(again.intend(Change::Firewall { table: "x".into() }).0 > a);
    }
}
