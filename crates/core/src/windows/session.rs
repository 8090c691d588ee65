//! What a Windows session does for each channel request (spec §5.6), and its undo (§5.7),
//! over the [`WinNet`] trait. The service calls [`WinSession::handle`] for every decoded
//! request and [`WinSession::finish`] once openvpn is gone.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use openvpnserv_proto::channel::{
    AddressMsg, DnsCfgMsg, InetAddr, Interface, NrptCfgMsg, Request, RouteMsg, WfpBlockMsg,
    WinsCfgMsg, ADAPTER_TYPE_DCO, ADAPTER_TYPE_TAP, AF_INET, AF_INET6, INDEX_INVALID, NRPT_DNSSEC,
};
use openvpnserv_proto::codes::{
    ERROR_FILE_NOT_FOUND, ERROR_INVALID_PARAMETER, ERROR_MESSAGE_DATA, ERROR_NOT_SUPPORTED,
    NO_ERROR,
};

use crate::windows::net::{AddressRow, Code, IfRef, RouteRow, WinNet};
use crate::windows::nrpt::{self, RuleValue};
use crate::windows::searchlist;
use crate::windows::undo::{remove_newest, DomainsUndo, UndoLists, UndoStep, WfpUndo};
use crate::windows::wfp::{self, BLOCK_IFACE_METRIC};

/// Group-policy DNS client key.
pub const GPOL_DNS_KEY: &str = r"SOFTWARE\Policies\Microsoft\Windows NT\DNSClient";
/// System-wide TCP/IP parameters key.
pub const SYSTEM_TCPIP_KEY: &str = r"System\CurrentControlSet\Services\TCPIP\Parameters";
/// Timeout of the netsh WINS commands.
pub const NETSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of `netsh … source=dhcp`.
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of `tapctl create`.
pub const TAPCTL_TIMEOUT: Duration = Duration::from_secs(10);

/// `…\Tcpip[6]\Parameters\Interfaces\<guid>`.
pub fn interface_key(guid: &str, v6: bool) -> String {
    let stack = if v6 { "Tcpip6" } else { "Tcpip" };
    format!(r"SYSTEM\CurrentControlSet\Services\{stack}\Parameters\Interfaces\{guid}")
}

/// What a session needs from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// `exe_path`: the WFP permit app-id.
    pub exe_path: String,
    /// `bin_dir` (ends in `\`): where `tapctl.exe` is.
    pub bin_dir: String,
}

/// Where a session's search domains go (spec §5.6.6a).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListKey {
    /// The policy or system key: append to the existing list.
    Global { key: String, gpol: bool },
    /// The tunnel's own key: the list is just our domains.
    Interface(String),
}

impl ListKey {
    fn key(&self) -> &str {
        match self {
            ListKey::Global { key, .. } | ListKey::Interface(key) => key,
        }
    }
    fn gpol(&self) -> bool {
        matches!(self, ListKey::Global { gpol: true, .. })
    }
}

/// One session's network state.
pub struct WinSession<N: WinNet> {
    net: N,
    config: SessionConfig,
    pid: u32,
    undo: UndoLists<N::Engine>,
}

fn alias(iface: &Interface) -> Result<&str, Code> {
    iface.name.to_str().ok_or(ERROR_MESSAGE_DATA)
}

fn text(field: &[u8]) -> Result<&str, Code> {
    std::str::from_utf8(field).map_err(|_| ERROR_MESSAGE_DATA)
}

fn code(result: Result<(), Code>) -> Code {
    result.err().unwrap_or(NO_ERROR)
}

fn ok(c: Code) -> Result<(), Code> {
    if c == NO_ERROR {
        Ok(())
    } else {
        Err(c)
    }
}

fn is_v6(family: i16) -> bool {
    family == AF_INET6
}

fn ip_text(addr: &InetAddr, family: i16) -> String {
    let family = if is_v6(family) { AF_INET6 } else { AF_INET };
    addr.to_ip(family)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .to_string()
}

fn prefix(len: i32) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

impl<N: WinNet> WinSession<N> {
    /// A session with nothing changed yet.
    pub fn new(net: N, config: SessionConfig) -> Self {
        Self {
            net,
            config,
            pid: 0,
            undo: UndoLists::default(),
        }
    }

    /// openvpn runs with this pid (NRPT rules carry it).
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// The network layer (for tests that inspect a fake).
    pub fn net(&mut self) -> &mut N {
        &mut self.net
    }

    /// The undo lists (for tests).
    pub fn undo(&self) -> &UndoLists<N::Engine> {
        &self.undo
    }

    /// Performs one request; returns the ack's error code.
    pub fn handle(&mut self, request: &Request) -> Code {
        match request {
            Request::AddAddress(m) => code(self.address(true, m)),
            Request::DelAddress(m) => code(self.address(false, m)),
            Request::AddRoute(m) => code(self.route(true, m)),
            Request::DelRoute(m) => code(self.route(false, m)),
            Request::FlushNeighbors(m) => self.net.flush_neighbors(m.family, m.iface.index),
            Request::AddWfpBlock(m) => code(self.add_wfp(m)),
            Request::AddBlockDns(iface) => code(self.add_wfp(&WfpBlockMsg {
                flags: wfp::FLAGS_DNS_ONLY,
                iface: iface.clone(),
            })),
            Request::DelWfpBlock(_) | Request::DelBlockDns(_) => {
                self.del_wfp();
                NO_ERROR
            }
            Request::RegisterDns => self.net.register_dns(),
            Request::AddDnsCfg(m) => code(self.dns_cfg(true, m)),
            Request::DelDnsCfg(m) => code(self.dns_cfg(false, m)),
            Request::AddNrptCfg(m) => code(self.nrpt(true, m)),
            Request::DelNrptCfg(m) => code(self.nrpt(false, m)),
            Request::AddWinsCfg(m) => code(self.wins(true, m)),
            Request::DelWinsCfg(m) => code(self.wins(false, m)),
            Request::EnableDhcp(iface) => {
                let exe = format!(r"{}\netsh.exe", self.net.system_dir());
                let cmd = format!(
                    "netsh interface ipv4 set address name=\"{}\" source=dhcp",
                    iface.index
                );
                self.net.run_helper(&exe, &cmd, DHCP_TIMEOUT)
            }
            Request::SetMtu(m) => self.net.set_mtu(m.iface.index, m.family, m.mtu as u32),
            Request::CreateAdapter(m) => {
                let hwid = match m.adapter_type {
                    ADAPTER_TYPE_DCO => "ovpn-dco",
                    ADAPTER_TYPE_TAP => r"root\tap0901",
                    _ => return ERROR_INVALID_PARAMETER,
                };
                let exe = format!("{}tapctl.exe", self.config.bin_dir);
                self.net.run_helper(
                    &exe,
                    &format!("tapctl create --hwid {hwid}"),
                    TAPCTL_TIMEOUT,
                )
            }
            // Wintun ring buffers were removed in openvpn 2.7; nbt was never handled.
            Request::RegisterRingBuffers(_) | Request::AddNbtCfg(_) | Request::DelNbtCfg(_) => {
                ERROR_NOT_SUPPORTED
            }
        }
    }

    fn resolve(&mut self, iface: &Interface) -> Result<IfRef, Code> {
        if iface.index == INDEX_INVALID {
            let alias = alias(iface)?;
            self.net.alias_to_luid(alias).map(IfRef::Luid)
        } else {
            Ok(IfRef::Index(iface.index))
        }
    }

    fn address(&mut self, add: bool, m: &AddressMsg) -> Result<(), Code> {
        let row = AddressRow {
            family: m.family,
            address: m.address,
            prefix_len: prefix(m.prefix_len),
            iface: self.resolve(&m.iface)?,
        };
        if add {
            ok(self.net.add_address(&row))?;
            self.undo.address.push(row);
        } else {
            ok(self.net.del_address(&row))?;
            remove_newest(&mut self.undo.address, &row);
        }
        Ok(())
    }

    fn route(&mut self, add: bool, m: &RouteMsg) -> Result<(), Code> {
        // By name only when there is a name; else the (invalid) index goes through as is.
        let iface = if m.iface.index == INDEX_INVALID && !m.iface.name.is_empty() {
            self.resolve(&m.iface)?
        } else {
            IfRef::Index(m.iface.index)
        };
        let row = RouteRow {
            family: m.family,
            prefix: m.prefix,
            prefix_len: prefix(m.prefix_len),
            gateway: m.gateway,
            iface,
            metric: m.metric as u32,
        };
        if add {
            ok(self.net.add_route(&row))?;
            self.undo.route.push(row);
        } else {
            ok(self.net.del_route(&row))?;
            remove_newest(&mut self.undo.route, &row);
        }
        Ok(())
    }

    fn add_wfp(&mut self, m: &WfpBlockMsg) -> Result<(), Code> {
        let index = m.iface.index;
        let luid = self.net.index_to_luid(index)?;
        let filters = wfp::plan(&self.config.exe_path, luid, wfp::dns_only(m.flags));
        let engine = self.net.wfp_open(&filters)?;
        let metric_v4 = self.net.interface_metric(index, AF_INET).ok();
        let metric_v6 = self.net.interface_metric(index, AF_INET6).ok();
        let set_v4 = self
            .net
            .set_interface_metric(index, AF_INET, BLOCK_IFACE_METRIC);
        if set_v4 != NO_ERROR {
            self.net.wfp_close(engine);
            return Err(set_v4);
        }
        // IPv6 may be disabled on the interface; that is not a failure.
        let _ = self
            .net
            .set_interface_metric(index, AF_INET6, BLOCK_IFACE_METRIC);
        self.undo.wfp_block.push(WfpUndo {
            engine,
            index,
            metric_v4,
            metric_v6,
        });
        Ok(())
    }

    /// Removes the most recent block, whatever index the message names (as upstream).
    fn del_wfp(&mut self) {
        if let Some(undo) = self.undo.wfp_block.pop() {
            self.undo_wfp(undo);
        }
    }

    fn undo_wfp(&mut self, undo: WfpUndo<N::Engine>) {
        self.net.wfp_close(undo.engine);
        for (family, metric) in [(AF_INET, undo.metric_v4), (AF_INET6, undo.metric_v6)] {
            if let Some(metric) = metric {
                let _ = self.net.set_interface_metric(undo.index, family, metric);
            }
        }
    }

    fn dns_cfg(&mut self, add: bool, m: &DnsCfgMsg) -> Result<(), Code> {
        let addr_len = m.addr_len.min(4) as usize;
        if m.iface.name.is_empty() {
            return Err(ERROR_MESSAGE_DATA);
        }
        let alias = alias(&m.iface)?.to_owned();
        let domains = m.domains.to_str().ok_or(ERROR_MESSAGE_DATA)?.to_owned();
        let guid = self.net.interface_guid(&alias)?;
        let v6 = is_v6(m.family);
        let key = interface_key(&guid, v6);
        if addr_len > 0 || !add {
            ok(self.net.set_sz(&key, "NameServer", ""))?;
            if v6 {
                self.undo.dns6.pop();
            } else {
                self.undo.dns4.pop();
            }
        }
        if !add {
            let mut gpol = false;
            if !domains.is_empty() {
                gpol = self.remove_session_domains();
            }
            self.net.notify_dns(gpol);
            return Ok(());
        }
        if addr_len > 0 {
            let servers: Vec<String> = m.addr[..addr_len]
                .iter()
                .map(|a| ip_text(a, m.family))
                .collect();
            ok(self.net.set_sz(&key, "NameServer", &servers.join(",")))?;
            if v6 {
                self.undo.dns6.push(guid);
            } else {
                self.undo.dns4.push(guid);
            }
        }
        let mut result = Ok(());
        let mut gpol = false;
        if !domains.is_empty() {
            let (r, g) = self.set_search_domains(&alias, &domains);
            result = r;
            gpol = g;
        }
        self.net.notify_dns(gpol);
        result
    }

    fn search_list_key(&mut self, alias: &str) -> Result<ListKey, Code> {
        for (key, gpol) in [(GPOL_DNS_KEY, true), (SYSTEM_TCPIP_KEY, false)] {
            if self
                .net
                .get_sz(key, "SearchList")
                .is_some_and(|l| searchlist::is_set(&l))
            {
                return Ok(ListKey::Global {
                    key: key.to_owned(),
                    gpol,
                });
            }
        }
        match self.net.interface_guid(alias) {
            Ok(guid) => Ok(ListKey::Interface(interface_key(&guid, false))),
            Err(_) => Err(ERROR_FILE_NOT_FOUND),
        }
    }

    /// Replaces the session's search domains with `domains`; returns the result and whether
    /// the policy key changed.
    fn set_search_domains(&mut self, alias: &str, domains: &str) -> (Result<(), Code>, bool) {
        let list_key = match self.search_list_key(alias) {
            Ok(k) => k,
            Err(e) => return (Err(e), false),
        };
        let mut gpol = self.remove_session_domains();
        if domains.is_empty() {
            return (Ok(()), gpol);
        }
        let key = list_key.key().to_owned();
        let new = match &list_key {
            ListKey::Global { .. } => {
                let current = self.net.get_sz(&key, "SearchList").unwrap_or_default();
                if self.net.get_sz(&key, "InitialSearchList").is_none() {
                    let c = self.net.set_sz(&key, "InitialSearchList", &current);
                    if c != NO_ERROR {
                        return (Err(c), gpol);
                    }
                }
                searchlist::append(&current, domains)
            }
            ListKey::Interface(_) => domains.to_owned(),
        };
        let c = self.net.set_sz(&key, "SearchList", &new);
        if c != NO_ERROR {
            return (Err(c), gpol);
        }
        gpol |= list_key.gpol();
        self.undo.domains.push(DomainsUndo {
            alias: alias.to_owned(),
            domains: domains.to_owned(),
        });
        (Ok(()), gpol)
    }

    /// Removes the domains this session added; returns whether the policy key changed.
    fn remove_session_domains(&mut self) -> bool {
        let mut gpol = false;
        while let Some(item) = self.undo.domains.pop() {
            gpol |= self.remove_domains(&item);
        }
        gpol
    }

    fn remove_domains(&mut self, item: &DomainsUndo) -> bool {
        let Ok(list_key) = self.search_list_key(&item.alias) else {
            return false;
        };
        let key = list_key.key().to_owned();
        let current = self.net.get_sz(&key, "SearchList").unwrap_or_default();
        let Some(new) = searchlist::remove(&current, &item.domains) else {
            return false;
        };
        if self.net.set_sz(&key, "SearchList", &new) != NO_ERROR {
            return false;
        }
        if matches!(list_key, ListKey::Global { .. })
            && !new.is_empty()
            && self.net.get_sz(&key, "InitialSearchList").as_deref() == Some(new.as_str())
        {
            let _ = self.net.delete_value(&key, "InitialSearchList");
        }
        list_key.gpol()
    }

    /// Deletes the NRPT rules of `pid` under both bases; whether any was deleted.
    fn delete_nrpt_rules(&mut self, pid: u32) -> bool {
        delete_nrpt_rules(&mut self.net, pid)
    }

    fn nrpt(&mut self, add: bool, m: &NrptCfgMsg) -> Result<(), Code> {
        if m.iface.name.is_empty() {
            return Err(ERROR_MESSAGE_DATA);
        }
        let alias = alias(&m.iface)?.to_owned();
        let resolve = text(m.resolve_domains.as_bytes())?.to_owned();
        let search = text(m.search_domains.as_bytes())?.to_owned();
        let servers: Vec<String> = m
            .addresses
            .iter()
            .filter(|a| !a.is_empty())
            .map(|a| text(a.as_bytes()).map(str::to_owned))
            .collect::<Result<_, _>>()?;
        if add && (m.addresses[0].is_empty() || resolve.len() + 1 >= 512) {
            return Err(ERROR_MESSAGE_DATA);
        }
        let guid = self.net.interface_guid(&alias)?;
        let mut gpol = false;
        if let Some(pid) = self.undo.nrpt.pop() {
            self.delete_nrpt_rules(pid);
            for v6 in [false, true] {
                let _ = self.net.set_sz(&interface_key(&guid, v6), "NameServer", "");
            }
        }
        gpol |= self.remove_session_domains();
        if !add {
            self.net.notify_dns(gpol);
            return Ok(());
        }
        let base = if self.net.key_exists(nrpt::GPOL_BASE) {
            gpol = true;
            nrpt::GPOL_BASE
        } else {
            ok(self.net.create_key(nrpt::LOCAL_BASE))?;
            nrpt::LOCAL_BASE
        };
        self.undo.nrpt.push(self.pid);
        let dnssec = m.flags & NRPT_DNSSEC != 0;
        let mut result = self.write_rule(
            base,
            &nrpt::main_rule(self.pid),
            nrpt::rule_names(&resolve),
            &servers,
            dnssec,
        );
        if resolve.is_empty() && result.is_ok() {
            self.write_exclude_rules(base, &alias, &search);
        }
        if !search.is_empty() || resolve.is_empty() {
            for v6 in [false, true] {
                let family: Vec<&str> = servers
                    .iter()
                    .filter(|s| s.contains(':') == v6)
                    .map(String::as_str)
                    .collect();
                if !family.is_empty() {
                    let _ =
                        self.net
                            .set_sz(&interface_key(&guid, v6), "NameServer", &family.join(","));
                }
            }
            if !search.is_empty() {
                let (r, g) = self.set_search_domains(&alias, &search);
                gpol |= g;
                if result.is_ok() {
                    result = r;
                }
            }
        }
        self.net.notify_dns(gpol);
        result
    }

    fn write_rule(
        &mut self,
        base: &str,
        name: &str,
        names: Vec<String>,
        servers: &[String],
        dnssec: bool,
    ) -> Result<(), Code> {
        let key = format!(r"{base}\{name}");
        for (value, data) in nrpt::rule_values(names, servers, dnssec) {
            let c = match &data {
                RuleValue::Sz(s) => self.net.set_sz(&key, value, s),
                RuleValue::MultiSz(v) => self.net.set_multi_sz(&key, value, v),
                RuleValue::Dword(d) => self.net.set_dword(&key, value, *d),
            };
            if c != NO_ERROR {
                let _ = self.net.delete_tree(&key);
                return Err(c);
            }
        }
        Ok(())
    }

    /// With a catch-all rule, names that other interfaces resolve stay with their own
    /// servers: one exclude rule per such interface, at most eight.
    fn write_exclude_rules(&mut self, base: &str, alias: &str, search: &str) {
        let pushed: Vec<&str> = search.split(',').filter(|d| !d.is_empty()).collect();
        let others = self.net.other_interfaces_dns(alias);
        let mut n = 0;
        for other in others {
            if n == nrpt::MAX_EXCLUDE_RULES {
                break;
            }
            let names: Vec<String> = other
                .domains
                .iter()
                .map(|d| d.trim_start_matches('.'))
                .filter(|d| !d.is_empty() && !pushed.contains(d))
                .map(|d| format!(".{d}"))
                .collect();
            if names.is_empty() || other.servers.is_empty() {
                continue;
            }
            let name = nrpt::exclude_rule(n, self.pid);
            if self
                .write_rule(base, &name, names, &other.servers, false)
                .is_ok()
            {
                n += 1;
            }
        }
    }

    fn wins(&mut self, add: bool, m: &WinsCfgMsg) -> Result<(), Code> {
        let addr_len = m.addr_len.min(4) as usize;
        let index = m.iface.index;
        if index == 0 {
            return Err(ERROR_MESSAGE_DATA);
        }
        // Upstream writes the index as a C int: the invalid index is `-1`.
        let index = index as i32;
        let exe = format!(r"{}\netsh.exe", self.net.system_dir());
        if addr_len > 0 || !add {
            let cmd = format!("netsh interface ip delete wins {index}  all");
            ok(self.net.run_helper(&exe, &cmd, NETSH_TIMEOUT))?;
            self.undo.wins.pop();
        }
        if !add || addr_len == 0 {
            return Ok(());
        }
        let first = ip_text(&m.addr[0], AF_INET);
        let cmd = format!("netsh interface ip set wins {index} static {first}");
        ok(self.net.run_helper(&exe, &cmd, NETSH_TIMEOUT))?;
        for a in &m.addr[1..addr_len] {
            let cmd = format!(
                "netsh interface ip add wins {index}  {}",
                ip_text(a, AF_INET)
            );
            // Further servers are best effort, as upstream.
            let _ = self.net.run_helper(&exe, &cmd, NETSH_TIMEOUT);
        }
        self.undo.wins.push(index as u32);
        Ok(())
    }

    /// Undoes everything in the order of spec §5.7 and returns the network layer.
    pub fn finish(mut self) -> N {
        for step in self.undo.drain() {
            match step {
                UndoStep::Address(row) => {
                    let _ = self.net.del_address(&row);
                }
                UndoStep::Route(row) => {
                    let _ = self.net.del_route(&row);
                }
                UndoStep::WfpBlock(undo) => self.undo_wfp(undo),
                UndoStep::Dns4(guid) => {
                    let _ = self
                        .net
                        .set_sz(&interface_key(&guid, false), "NameServer", "");
                }
                UndoStep::Dns6(guid) => {
                    let _ = self
                        .net
                        .set_sz(&interface_key(&guid, true), "NameServer", "");
                }
                UndoStep::Nrpt(pid) => {
                    if self.delete_nrpt_rules(pid) {
                        self.net.notify_dns(false);
                    }
                }
                UndoStep::Domains(item) => {
                    let gpol = self.remove_domains(&item);
                    self.net.notify_dns(gpol);
                }
                UndoStep::Wins(index) => {
                    let exe = format!(r"{}\netsh.exe", self.net.system_dir());
                    let cmd = format!("netsh interface ip delete wins {}  all", index as i32);
                    let _ = self.net.run_helper(&exe, &cmd, NETSH_TIMEOUT);
                }
            }
        }
        self.net
    }
}

/// Deletes NRPT rules of `pid` (0 = every rule of ours) under both bases.
fn delete_nrpt_rules<N: WinNet>(net: &mut N, pid: u32) -> bool {
    let mut deleted = false;
    for base in [nrpt::GPOL_BASE, nrpt::LOCAL_BASE] {
        for sub in net.subkeys(base) {
            if nrpt::is_rule_of(&sub, pid) && net.delete_tree(&format!(r"{base}\{sub}")) == NO_ERROR
            {
                deleted = true;
            }
        }
    }
    deleted
}

/// Start-up clean-up (spec §5.7): deletes every NRPT rule of ours and puts back
/// `InitialSearchList` on the policy and system keys. Returns whether anything changed.
pub fn startup_cleanup<N: WinNet>(net: &mut N) -> bool {
    let mut changed = delete_nrpt_rules(net, 0);
    let mut gpol = false;
    for (key, is_gpol) in [(GPOL_DNS_KEY, true), (SYSTEM_TCPIP_KEY, false)] {
        if let Some(initial) = net.get_sz(key, "InitialSearchList") {
            if net.set_sz(key, "SearchList", &initial) == NO_ERROR {
                let _ = net.delete_value(key, "InitialSearchList");
                changed = true;
                gpol |= is_gpol;
            }
        }
    }
    if changed {
        net.notify_dns(gpol);
    }
    changed
}
