//! The Windows network API as seen by a session (spec §5.6): a small trait over IP Helper,
//! the registry, WFP and helper programs, so that the handlers' logic is tested with
//! [`crate::windows::fake::RecordingNet`] and the real calls stay a thin layer in the service.

use std::time::Duration;

use openvpnserv_proto::channel::InetAddr;

use crate::windows::wfp::Filter;

/// A Win32 error code; 0 is success.
pub type Code = u32;

/// How an IP Helper row names its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IfRef {
    /// By index.
    Index(u32),
    /// By LUID (resolved from the alias).
    Luid(u64),
}

/// A `MIB_UNICASTIPADDRESS_ROW` as the service fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRow {
    /// Windows address family (2 or 23).
    pub family: i16,
    /// The address.
    pub address: InetAddr,
    /// `OnLinkPrefixLength`.
    pub prefix_len: u8,
    /// The interface.
    pub iface: IfRef,
}

/// A `MIB_IPFORWARD_ROW2` as the service fills it (lifetimes infinite, protocol
/// `MIB_IPPROTO_NETMGMT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    /// Windows address family (2 or 23).
    pub family: i16,
    /// Destination prefix.
    pub prefix: InetAddr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Next hop.
    pub gateway: InetAddr,
    /// The interface.
    pub iface: IfRef,
    /// Route metric (0xFFFFFFFF when openvpn has none, passed through).
    pub metric: u32,
}

/// DNS facts of another interface, for NRPT exclude rules (spec §5.6.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceDns {
    /// Its DNS servers, as text.
    pub servers: Vec<String>,
    /// Its DNS domains, without leading dots.
    pub domains: Vec<String>,
}

/// The registry under `HKEY_LOCAL_MACHINE`. Keys are paths like `SYSTEM\CurrentControlSet\…`.
pub trait Registry {
    /// A `REG_SZ` value, or `None` when the key or value is missing or of another type.
    fn get_sz(&mut self, key: &str, name: &str) -> Option<String>;
    /// Writes a `REG_SZ`, creating the key.
    fn set_sz(&mut self, key: &str, name: &str, value: &str) -> Code;
    /// Writes a `REG_MULTI_SZ`, creating the key.
    fn set_multi_sz(&mut self, key: &str, name: &str, value: &[String]) -> Code;
    /// Writes a `REG_DWORD`, creating the key.
    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Code;
    /// Deletes a value.
    fn delete_value(&mut self, key: &str, name: &str) -> Code;
    /// Whether a key exists.
    fn key_exists(&mut self, key: &str) -> bool;
    /// Creates a key (and its parents).
    fn create_key(&mut self, key: &str) -> Code;
    /// Names of the direct subkeys.
    fn subkeys(&mut self, key: &str) -> Vec<String>;
    /// Deletes a key with everything below it.
    fn delete_tree(&mut self, key: &str) -> Code;
}

/// Everything else a session changes.
pub trait WinNet: Registry {
    /// An open dynamic WFP session; closing it removes its filters.
    type Engine;

    /// `ConvertInterfaceAliasToLuid`.
    fn alias_to_luid(&mut self, alias: &str) -> Result<u64, Code>;
    /// `ConvertInterfaceIndexToLuid`.
    fn index_to_luid(&mut self, index: u32) -> Result<u64, Code>;
    /// The interface GUID as `{XXXXXXXX-…}` (alias → LUID → GUID → `StringFromIID`).
    fn interface_guid(&mut self, alias: &str) -> Result<String, Code>;
    /// `CreateUnicastIpAddressEntry`.
    fn add_address(&mut self, row: &AddressRow) -> Code;
    /// `DeleteUnicastIpAddressEntry`.
    fn del_address(&mut self, row: &AddressRow) -> Code;
    /// `CreateIpForwardEntry2`.
    fn add_route(&mut self, row: &RouteRow) -> Code;
    /// `DeleteIpForwardEntry2`.
    fn del_route(&mut self, row: &RouteRow) -> Code;
    /// `FlushIpNetTable` (IPv4) or `FlushIpNetTable2`.
    fn flush_neighbors(&mut self, family: i16, index: u32) -> Code;
    /// The interface metric of a family; 0 when automatic.
    fn interface_metric(&mut self, index: u32, family: i16) -> Result<u32, Code>;
    /// Sets the interface metric (0 = automatic).
    fn set_interface_metric(&mut self, index: u32, family: i16, metric: u32) -> Code;
    /// Sets the interface MTU (`NlMtu`).
    fn set_mtu(&mut self, index: u32, family: i16, mtu: u32) -> Code;
    /// Opens a dynamic WFP session, ensures the `OpenVPN` sublayer and adds `filters`.
    fn wfp_open(&mut self, filters: &[Filter]) -> Result<Self::Engine, Code>;
    /// Closes a WFP session (its filters go with it).
    fn wfp_close(&mut self, engine: Self::Engine);
    /// Runs a helper program as the service, without inheriting handles; its exit code, or
    /// `WAIT_TIMEOUT` when it had to be killed.
    fn run_helper(&mut self, exe: &str, cmdline: &str, timeout: Duration) -> Code;
    /// The system directory (`GetSystemDirectoryW`).
    fn system_dir(&mut self) -> String;
    /// Tells Windows that DNS settings changed (`gpol`: the policy key changed too).
    fn notify_dns(&mut self, gpol: bool);
    /// Starts `ipconfig /flushdns` and `/registerdns` in the background.
    fn register_dns(&mut self) -> Code;
    /// DNS servers and domains of the other connected interfaces.
    fn other_interfaces_dns(&mut self, except_alias: &str) -> Vec<InterfaceDns>;
}
