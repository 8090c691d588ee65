//! A recording fake of [`WinNet`]: an in-memory registry, a few interfaces, and a transcript
//! of every call, so that tests compare what a session did with what it should have done.
//! Used by the tests of this crate and by the service's tests under Wine (which lacks the
//! IP Helper "2" functions and WFP).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openvpnserv_proto::codes::{ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND, NO_ERROR};

use crate::windows::net::{AddressRow, Code, IfRef, InterfaceDns, Registry, RouteRow, WinNet};
use crate::windows::wfp::Filter;

/// A registry value in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegData {
    /// `REG_SZ`.
    Sz(String),
    /// `REG_MULTI_SZ`.
    MultiSz(Vec<String>),
    /// `REG_DWORD`.
    Dword(u32),
}

/// An interface the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeInterface {
    /// Alias.
    pub alias: String,
    /// Index.
    pub index: u32,
    /// LUID.
    pub luid: u64,
    /// GUID text with braces.
    pub guid: String,
}

#[derive(Default)]
struct State {
    transcript: Vec<String>,
    /// Normalized path → path as first written (Windows keeps the case of key names).
    keys: BTreeMap<String, String>,
    values: BTreeMap<(String, String), RegData>,
    interfaces: Vec<FakeInterface>,
    failures: HashMap<String, Code>,
    metrics: HashMap<(u32, i16), u32>,
    others: Vec<InterfaceDns>,
    next_engine: u32,
    open_engines: BTreeSet<u32>,
}

/// The fake; clones share one state, so a test keeps a clone to look at after the session.
#[derive(Clone, Default)]
pub struct RecordingNet(Arc<Mutex<State>>);

fn norm(key: &str) -> String {
    key.to_ascii_lowercase()
}

fn if_text(iface: IfRef) -> String {
    match iface {
        IfRef::Index(i) => format!("index {i}"),
        IfRef::Luid(l) => format!("luid {l}"),
    }
}

fn family_text(family: i16) -> &'static str {
    if family == openvpnserv_proto::channel::AF_INET6 {
        "v6"
    } else {
        "v4"
    }
}

impl RecordingNet {
    /// A fake with one interface `tun0` (index 7, LUID 70, GUID `{00000000-0000-0000-0000-000000000007}`).
    pub fn new() -> Self {
        let net = Self::default();
        net.add_interface(FakeInterface {
            alias: "tun0".into(),
            index: 7,
            luid: 70,
            guid: "{00000000-0000-0000-0000-000000000007}".into(),
        });
        net
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an interface.
    pub fn add_interface(&self, iface: FakeInterface) {
        self.state().interfaces.push(iface);
    }

    /// Makes every later call of `op` (a transcript verb such as `add_route`) fail with `code`.
    pub fn fail(&self, op: &str, code: Code) {
        self.state().failures.insert(op.to_owned(), code);
    }

    /// Sets what [`WinNet::other_interfaces_dns`] returns.
    pub fn set_other_interfaces(&self, others: Vec<InterfaceDns>) {
        self.state().others = others;
    }

    /// Sets a metric ahead of a test.
    pub fn set_metric(&self, index: u32, family: i16, metric: u32) {
        self.state().metrics.insert((index, family), metric);
    }

    /// The transcript so far.
    pub fn transcript(&self) -> Vec<String> {
        self.state().transcript.clone()
    }

    /// Empties the transcript.
    pub fn clear_transcript(&self) {
        self.state().transcript.clear();
    }

    /// A value in the fake registry.
    pub fn value(&self, key: &str, name: &str) -> Option<RegData> {
        self.state().values.get(&(norm(key), norm(name))).cloned()
    }

    /// Whether a key exists in the fake registry.
    pub fn has_key(&self, key: &str) -> bool {
        self.state().keys.contains_key(&norm(key))
    }

    /// Number of WFP sessions still open.
    pub fn open_engines(&self) -> usize {
        self.state().open_engines.len()
    }

    /// Puts a value in place without recording it (test set-up).
    pub fn preset_sz(&self, key: &str, name: &str, value: &str) {
        let mut s = self.state();
        insert_key(&mut s, key);
        s.values
            .insert((norm(key), norm(name)), RegData::Sz(value.to_owned()));
    }

    fn record(&self, line: String) {
        self.state().transcript.push(line);
    }

    /// Records `line` and returns the injected failure for `op`, if any.
    fn call(&self, op: &str, line: String) -> Code {
        let mut s = self.state();
        s.transcript.push(line);
        s.failures.get(op).copied().unwrap_or(NO_ERROR)
    }

    fn set(&mut self, key: &str, name: &str, data: RegData, shown: &str) -> Code {
        let c = self.call("set", format!(r"set HKLM\{key}\{name} = {shown}"));
        if c == NO_ERROR {
            let mut s = self.state();
            insert_key(&mut s, key);
            s.values.insert((norm(key), norm(name)), data);
        }
        c
    }
}

fn insert_key(s: &mut State, key: &str) {
    let mut path = String::new();
    for part in key.split('\\') {
        if !path.is_empty() {
            path.push('\\');
        }
        path.push_str(part);
        s.keys.entry(norm(&path)).or_insert_with(|| path.clone());
    }
}

impl Registry for RecordingNet {
    fn get_sz(&mut self, key: &str, name: &str) -> Option<String> {
        match self.value(key, name) {
            Some(RegData::Sz(s)) => Some(s),
            _ => None,
        }
    }

    fn set_sz(&mut self, key: &str, name: &str, value: &str) -> Code {
        self.set(
            key,
            name,
            RegData::Sz(value.to_owned()),
            &format!("{value:?}"),
        )
    }

    fn set_multi_sz(&mut self, key: &str, name: &str, value: &[String]) -> Code {
        self.set(
            key,
            name,
            RegData::MultiSz(value.to_vec()),
            &format!("{value:?}"),
        )
    }

    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Code {
        self.set(key, name, RegData::Dword(value), &format!("dword {value}"))
    }

    fn delete_value(&mut self, key: &str, name: &str) -> Code {
        self.record(format!(r"delete HKLM\{key}\{name}"));
        match self.state().values.remove(&(norm(key), norm(name))) {
            Some(_) => NO_ERROR,
            None => ERROR_FILE_NOT_FOUND,
        }
    }

    fn key_exists(&mut self, key: &str) -> bool {
        self.has_key(key)
    }

    fn create_key(&mut self, key: &str) -> Code {
        let c = self.call("create_key", format!(r"create HKLM\{key}"));
        if c == NO_ERROR {
            insert_key(&mut self.state(), key);
        }
        c
    }

    fn subkeys(&mut self, key: &str) -> Vec<String> {
        let prefix = format!("{}\\", norm(key));
        let s = self.state();
        s.keys
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('\\'))
            .map(|(_, original)| original[prefix.len()..].to_owned())
            .collect()
    }

    fn delete_tree(&mut self, key: &str) -> Code {
        self.record(format!(r"delete tree HKLM\{key}"));
        let k = norm(key);
        let prefix = format!("{k}\\");
        let mut s = self.state();
        if !s.keys.contains_key(&k) {
            return ERROR_FILE_NOT_FOUND;
        }
        s.keys.retain(|x, _| *x != k && !x.starts_with(&prefix));
        s.values
            .retain(|(x, _), _| *x != k && !x.starts_with(&prefix));
        NO_ERROR
    }
}

impl WinNet for RecordingNet {
    type Engine = u32;

    fn alias_to_luid(&mut self, alias: &str) -> Result<u64, Code> {
        let found = self
            .state()
            .interfaces
            .iter()
            .find(|i| i.alias == alias)
            .map(|i| i.luid);
        found.ok_or(ERROR_NOT_FOUND)
    }

    fn index_to_luid(&mut self, index: u32) -> Result<u64, Code> {
        let found = self
            .state()
            .interfaces
            .iter()
            .find(|i| i.index == index)
            .map(|i| i.luid);
        found.ok_or(ERROR_NOT_FOUND)
    }

    fn interface_guid(&mut self, alias: &str) -> Result<String, Code> {
        let found = self
            .state()
            .interfaces
            .iter()
            .find(|i| i.alias == alias)
            .map(|i| i.guid.clone());
        found.ok_or(ERROR_NOT_FOUND)
    }

    fn add_address(&mut self, row: &AddressRow) -> Code {
        self.call(
            "add_address",
            format!(
                "add_address {:?}/{} {}",
                row.address,
                row.prefix_len,
                if_text(row.iface)
            ),
        )
    }

    fn del_address(&mut self, row: &AddressRow) -> Code {
        self.call(
            "del_address",
            format!(
                "del_address {:?}/{} {}",
                row.address,
                row.prefix_len,
                if_text(row.iface)
            ),
        )
    }

    fn add_route(&mut self, row: &RouteRow) -> Code {
        self.call(
            "add_route",
            format!(
                "add_route {:?}/{} via {:?} {} metric {}",
                row.prefix,
                row.prefix_len,
                row.gateway,
                if_text(row.iface),
                row.metric
            ),
        )
    }

    fn del_route(&mut self, row: &RouteRow) -> Code {
        self.call(
            "del_route",
            format!(
                "del_route {:?}/{} via {:?} {} metric {}",
                row.prefix,
                row.prefix_len,
                row.gateway,
                if_text(row.iface),
                row.metric
            ),
        )
    }

    fn flush_neighbors(&mut self, family: i16, index: u32) -> Code {
        self.call(
            "flush_neighbors",
            format!("flush_neighbors {} index {index}", family_text(family)),
        )
    }

    fn interface_metric(&mut self, index: u32, family: i16) -> Result<u32, Code> {
        let c = self.call(
            "interface_metric",
            format!("get_metric {} index {index}", family_text(family)),
        );
        if c != NO_ERROR {
            return Err(c);
        }
        Ok(self
            .state()
            .metrics
            .get(&(index, family))
            .copied()
            .unwrap_or(0))
    }

    fn set_interface_metric(&mut self, index: u32, family: i16, metric: u32) -> Code {
        let op = format!("set_metric_{}", family_text(family));
        let c = self.call(
            &op,
            format!(
                "set_metric {} index {index} = {metric}",
                family_text(family)
            ),
        );
        if c == NO_ERROR {
            self.state().metrics.insert((index, family), metric);
        }
        c
    }

    fn set_mtu(&mut self, index: u32, family: i16, mtu: u32) -> Code {
        self.call(
            "set_mtu",
            format!("set_mtu {} index {index} = {mtu}", family_text(family)),
        )
    }

    fn wfp_open(&mut self, filters: &[Filter]) -> Result<u32, Code> {
        let c = self.call("wfp_open", format!("wfp_open {} filters", filters.len()));
        if c != NO_ERROR {
            return Err(c);
        }
        let mut s = self.state();
        s.next_engine += 1;
        let engine = s.next_engine;
        s.open_engines.insert(engine);
        for f in filters {
            s.transcript.push(format!("  filter {f:?}"));
        }
        Ok(engine)
    }

    fn wfp_close(&mut self, engine: u32) {
        self.record(format!("wfp_close {engine}"));
        self.state().open_engines.remove(&engine);
    }

    fn run_helper(&mut self, exe: &str, cmdline: &str, timeout: Duration) -> Code {
        self.call(
            "run",
            format!("run {exe} [{cmdline}] {}s", timeout.as_secs()),
        )
    }

    fn system_dir(&mut self) -> String {
        r"C:\windows\system32".to_owned()
    }

    fn notify_dns(&mut self, gpol: bool) {
        self.record(format!("notify_dns gpol={gpol}"));
    }

    fn register_dns(&mut self) -> Code {
        self.call("register_dns", "register_dns".to_owned())
    }

    fn other_interfaces_dns(&mut self, _except_alias: &str) -> Vec<InterfaceDns> {
        self.state().others.clone()
    }
}
