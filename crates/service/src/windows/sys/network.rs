//! The network calls of a session (spec §5.6): IP Helper (interfaces, addresses, routes,
//! neighbours, adapters), the Windows Filtering Platform (a dynamic session with the
//! `OpenVPN` sublayer and its filters), and the DNS client's notifications. Results are the
//! Win32 codes the channel's acks carry.

use std::ffi::c_void;
use std::ptr;

use openvpnserv_core::windows::net::{AddressRow, Code, IfRef, RouteRow};
use openvpnserv_core::windows::wfp::{Action, Condition, Filter, Layer};
use openvpnserv_proto::channel::{InetAddr, AF_INET, AF_INET6};
use openvpnserv_proto::codes::NO_ERROR;
use uuid::Uuid;
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{FWP_E_ALREADY_EXISTS, HANDLE};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    ConvertInterfaceAliasToLuid, ConvertInterfaceIndexToLuid, ConvertInterfaceLuidToGuid,
    FlushIpNetTable, GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST,
    IP_ADAPTER_ADDRESSES_LH, MIB_IPFORWARD_ROW2, MIB_IPINTERFACE_ROW, MIB_UNICASTIPADDRESS_ROW,
};
use windows_sys::Win32::NetworkManagement::Ndis::{IfOperStatusUp, NET_LUID_LH};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::{
    FwpmEngineClose0, FwpmEngineOpen0, FwpmFilterAdd0, FwpmFreeMemory0, FwpmGetAppIdFromFileName0,
    FwpmSubLayerAdd0, FWPM_ACTION0, FWPM_CONDITION_ALE_APP_ID, FWPM_CONDITION_FLAGS,
    FWPM_CONDITION_IP_LOCAL_INTERFACE, FWPM_CONDITION_IP_REMOTE_PORT, FWPM_FILTER0,
    FWPM_FILTER_CONDITION0, FWPM_LAYER_ALE_AUTH_CONNECT_V4, FWPM_LAYER_ALE_AUTH_CONNECT_V6,
    FWPM_SESSION0, FWPM_SESSION_FLAG_DYNAMIC, FWPM_SUBLAYER0, FWP_ACTION_BLOCK, FWP_ACTION_PERMIT,
    FWP_BYTE_BLOB, FWP_BYTE_BLOB_TYPE, FWP_CONDITION_FLAG_IS_LOOPBACK, FWP_CONDITION_VALUE0,
    FWP_CONDITION_VALUE0_0, FWP_EMPTY, FWP_MATCH_EQUAL, FWP_MATCH_FLAGS_ALL_SET,
    FWP_MATCH_FLAGS_NONE_SET, FWP_UINT16, FWP_UINT32, FWP_UINT64, FWP_UINT8, FWP_VALUE0,
};
use windows_sys::Win32::Networking::WinSock::{AF_UNSPEC, MIB_IPPROTO_NETMGMT, SOCKADDR_INET};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleHandleW, GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_WINNT;
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, OpenSCManagerW, OpenServiceW, SC_MANAGER_CONNECT,
    SERVICE_CONTROL_PARAMCHANGE, SERVICE_PAUSE_CONTINUE, SERVICE_STATUS,
};

use super::kernel::wide_at;
use super::wide::wide;

fn result<T>(rc: Code, value: T) -> Result<T, Code> {
    if rc == NO_ERROR {
        Ok(value)
    } else {
        Err(rc)
    }
}

// ---------------------------------------------------------------------------------------------
// IP Helper functions resolved at run time

/// What a request gets when the system lacks a function it needs (`ERROR_PROC_NOT_FOUND`).
pub const PROC_NOT_FOUND: Code = 127;

type RowFn<T> = unsafe extern "system" fn(*const T) -> u32;
type RowMutFn<T> = unsafe extern "system" fn(*mut T) -> u32;
type InitFn<T> = unsafe extern "system" fn(*mut T);

/// The IP Helper functions a supported system may lack, looked up once with `GetProcAddress`
/// instead of imported. Wine 8 has none of them, older Windows builds lack some; imported, a
/// missing one stops the program from loading (Windows) or kills it at the first call (Wine),
/// with every session. Looked up, it is one request answered [`PROC_NOT_FOUND`].
struct IpHelper2 {
    create_ip_forward_entry2: Option<RowFn<MIB_IPFORWARD_ROW2>>,
    delete_ip_forward_entry2: Option<RowFn<MIB_IPFORWARD_ROW2>>,
    create_unicast_ip_address_entry: Option<RowFn<MIB_UNICASTIPADDRESS_ROW>>,
    delete_unicast_ip_address_entry: Option<RowFn<MIB_UNICASTIPADDRESS_ROW>>,
    initialize_unicast_ip_address_entry: Option<InitFn<MIB_UNICASTIPADDRESS_ROW>>,
    get_ip_interface_entry: Option<RowMutFn<MIB_IPINTERFACE_ROW>>,
    set_ip_interface_entry: Option<RowMutFn<MIB_IPINTERFACE_ROW>>,
    initialize_ip_interface_entry: Option<InitFn<MIB_IPINTERFACE_ROW>>,
    flush_ip_net_table2: Option<unsafe extern "system" fn(u16, u32) -> u32>,
}

/// Looks `$name` up in `$module` as a function of type `$ty`.
macro_rules! lookup {
    ($module:expr, $name:literal, $ty:ty) => {{
        // SAFETY: `$module` is a loaded module (or null, which GetProcAddress refuses); the
        // name is NUL-terminated. The exported function has the documented signature `$ty`,
        // so the transmute only restates its type.
        unsafe {
            GetProcAddress($module, concat!($name, "\0").as_ptr())
                .map(|f| std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(f))
        }
    }};
}

fn ip_helper2() -> &'static IpHelper2 {
    static API: std::sync::OnceLock<IpHelper2> = std::sync::OnceLock::new();
    API.get_or_init(|| {
        let name = wide("iphlpapi.dll");
        // SAFETY: NUL-terminated name; the module stays loaded for the life of the process
        // (never freed), so the pointers looked up below stay valid.
        let m = unsafe { LoadLibraryExW(name.as_ptr(), ptr::null_mut(), LOAD_LIBRARY_SEARCH_SYSTEM32) };
        let api = IpHelper2 {
            create_ip_forward_entry2: lookup!(m, "CreateIpForwardEntry2", RowFn<MIB_IPFORWARD_ROW2>),
            delete_ip_forward_entry2: lookup!(m, "DeleteIpForwardEntry2", RowFn<MIB_IPFORWARD_ROW2>),
            create_unicast_ip_address_entry: lookup!(m, "CreateUnicastIpAddressEntry", RowFn<MIB_UNICASTIPADDRESS_ROW>),
            delete_unicast_ip_address_entry: lookup!(m, "DeleteUnicastIpAddressEntry", RowFn<MIB_UNICASTIPADDRESS_ROW>),
            initialize_unicast_ip_address_entry: lookup!(m, "InitializeUnicastIpAddressEntry", InitFn<MIB_UNICASTIPADDRESS_ROW>),
            get_ip_interface_entry: lookup!(m, "GetIpInterfaceEntry", RowMutFn<MIB_IPINTERFACE_ROW>),
            set_ip_interface_entry: lookup!(m, "SetIpInterfaceEntry", RowMutFn<MIB_IPINTERFACE_ROW>),
            initialize_ip_interface_entry: lookup!(m, "InitializeIpInterfaceEntry", InitFn<MIB_IPINTERFACE_ROW>),
            flush_ip_net_table2: lookup!(m, "FlushIpNetTable2", unsafe extern "system" fn(u16, u32) -> u32),
        };
        let missing: Vec<&str> = [
            ("CreateIpForwardEntry2", api.create_ip_forward_entry2.is_none()),
            ("DeleteIpForwardEntry2", api.delete_ip_forward_entry2.is_none()),
            ("CreateUnicastIpAddressEntry", api.create_unicast_ip_address_entry.is_none()),
            ("DeleteUnicastIpAddressEntry", api.delete_unicast_ip_address_entry.is_none()),
            ("InitializeUnicastIpAddressEntry", api.initialize_unicast_ip_address_entry.is_none()),
            ("GetIpInterfaceEntry", api.get_ip_interface_entry.is_none()),
            ("SetIpInterfaceEntry", api.set_ip_interface_entry.is_none()),
            ("InitializeIpInterfaceEntry", api.initialize_ip_interface_entry.is_none()),
            ("FlushIpNetTable2", api.flush_ip_net_table2.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, gone)| gone.then_some(n))
        .collect();
        if !missing.is_empty() {
            tracing::warn!(
                "this system's iphlpapi.dll lacks {}; requests that need them are answered with error {PROC_NOT_FOUND}",
                missing.join(", ")
            );
        }
        api
    })
}

/// Which of the looked-up IP Helper functions this system has, by name (for the tests).
pub fn ip_helper_available(name: &str) -> Option<bool> {
    let api = ip_helper2();
    Some(match name {
        "CreateIpForwardEntry2" => api.create_ip_forward_entry2.is_some(),
        "DeleteIpForwardEntry2" => api.delete_ip_forward_entry2.is_some(),
        "CreateUnicastIpAddressEntry" => api.create_unicast_ip_address_entry.is_some(),
        "DeleteUnicastIpAddressEntry" => api.delete_unicast_ip_address_entry.is_some(),
        "InitializeUnicastIpAddressEntry" => api.initialize_unicast_ip_address_entry.is_some(),
        "GetIpInterfaceEntry" => api.get_ip_interface_entry.is_some(),
        "SetIpInterfaceEntry" => api.set_ip_interface_entry.is_some(),
        "InitializeIpInterfaceEntry" => api.initialize_ip_interface_entry.is_some(),
        "FlushIpNetTable2" => api.flush_ip_net_table2.is_some(),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Interfaces

fn luid(value: u64) -> NET_LUID_LH {
    NET_LUID_LH { Value: value }
}

fn luid_value(l: &NET_LUID_LH) -> u64 {
    // SAFETY: every variant of the union is the same 8 bytes.
    unsafe { l.Value }
}

/// `ConvertInterfaceAliasToLuid`.
pub fn alias_to_luid(alias: &str) -> Result<u64, Code> {
    let name = wide(alias);
    let mut l = luid(0);
    // SAFETY: NUL-terminated alias and valid out pointer.
    let rc = unsafe { ConvertInterfaceAliasToLuid(name.as_ptr(), &raw mut l) };
    result(rc, luid_value(&l))
}

/// `ConvertInterfaceIndexToLuid`.
pub fn index_to_luid(index: u32) -> Result<u64, Code> {
    let mut l = luid(0);
    // SAFETY: valid out pointer.
    let rc = unsafe { ConvertInterfaceIndexToLuid(index, &raw mut l) };
    result(rc, luid_value(&l))
}

/// `ConvertInterfaceLuidToGuid`.
pub fn luid_to_guid(value: u64) -> Result<Uuid, Code> {
    let l = luid(value);
    let mut g = GUID::from_u128(0);
    // SAFETY: valid LUID and out pointer.
    let rc = unsafe { ConvertInterfaceLuidToGuid(&raw const l, &raw mut g) };
    result(rc, Uuid::from_fields(g.data1, g.data2, g.data3, &g.data4))
}

/// An interface's IP settings of one family (`MIB_IPINTERFACE_ROW`), read to be changed.
pub struct InterfaceRow(MIB_IPINTERFACE_ROW);

impl InterfaceRow {
    /// `GetIpInterfaceEntry` of interface `index` and `family`.
    pub fn get(index: u32, family: i16) -> Result<Self, Code> {
        let api = ip_helper2();
        let (Some(init), Some(get)) = (
            api.initialize_ip_interface_entry,
            api.get_ip_interface_entry,
        ) else {
            return Err(PROC_NOT_FOUND);
        };
        // SAFETY: plain data, initialized by the API below.
        let mut row: MIB_IPINTERFACE_ROW = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer.
        unsafe { init(&raw mut row) };
        row.Family = family as u16;
        row.InterfaceIndex = index;
        // SAFETY: valid in/out row.
        let rc = unsafe { get(&raw mut row) };
        result(rc, Self(row))
    }

    /// The metric; 0 when automatic.
    pub fn metric(&self) -> u32 {
        if self.0.UseAutomaticMetric != 0 {
            0
        } else {
            self.0.Metric
        }
    }

    /// Sets the metric (0 = automatic).
    pub fn set_metric(&mut self, metric: u32) {
        self.0.Metric = metric;
        self.0.UseAutomaticMetric = u8::from(metric == 0);
    }

    /// Sets the MTU (`NlMtu`).
    pub fn set_mtu(&mut self, mtu: u32) {
        self.0.NlMtu = mtu;
    }

    /// `SetIpInterfaceEntry`.
    pub fn apply(mut self) -> Code {
        if self.0.Family == AF_INET as u16 {
            // Required for IPv4 rows, as upstream does.
            self.0.SitePrefixLength = 0;
        }
        let Some(set) = ip_helper2().set_ip_interface_entry else {
            return PROC_NOT_FOUND;
        };
        // SAFETY: a valid row read by GetIpInterfaceEntry.
        unsafe { set(&raw mut self.0) }
    }
}

/// `FlushIpNetTable` (IPv4) or `FlushIpNetTable2`.
pub fn flush_neighbors(family: i16, index: u32) -> Code {
    if family == AF_INET {
        // SAFETY: no pointers.
        unsafe { FlushIpNetTable(index) }
    } else {
        let Some(flush) = ip_helper2().flush_ip_net_table2 else {
            return PROC_NOT_FOUND;
        };
        // SAFETY: no pointers.
        unsafe { flush(family as u16, index) }
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses and routes

fn sockaddr(family: i16, addr: &InetAddr) -> SOCKADDR_INET {
    // SAFETY: SOCKADDR_INET is plain data; zero is a valid value.
    let mut sa: SOCKADDR_INET = unsafe { std::mem::zeroed() };
    if family == AF_INET6 {
        sa.Ipv6.sin6_family = AF_INET6 as u16;
        sa.Ipv6.sin6_addr.u.Byte = addr.0;
    } else {
        sa.Ipv4.sin_family = AF_INET as u16;
        let mut v4 = [0u8; 4];
        v4.copy_from_slice(&addr.0[..4]);
        sa.Ipv4.sin_addr.S_un.S_addr = u32::from_ne_bytes(v4);
    }
    sa
}

fn unicast_row(row: &AddressRow) -> Result<MIB_UNICASTIPADDRESS_ROW, Code> {
    let init = ip_helper2()
        .initialize_unicast_ip_address_entry
        .ok_or(PROC_NOT_FOUND)?;
    // SAFETY: plain data, initialized by the API.
    let mut r: MIB_UNICASTIPADDRESS_ROW = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { init(&raw mut r) };
    r.Address = sockaddr(row.family, &row.address);
    r.OnLinkPrefixLength = row.prefix_len;
    match row.iface {
        IfRef::Index(i) => r.InterfaceIndex = i,
        IfRef::Luid(l) => r.InterfaceLuid = luid(l),
    }
    Ok(r)
}

fn forward_row(row: &RouteRow) -> MIB_IPFORWARD_ROW2 {
    // SAFETY: plain data; zero is the documented starting point used upstream.
    let mut r: MIB_IPFORWARD_ROW2 = unsafe { std::mem::zeroed() };
    r.ValidLifetime = 0xFFFF_FFFF;
    r.PreferredLifetime = 0xFFFF_FFFF;
    r.Protocol = MIB_IPPROTO_NETMGMT;
    r.Metric = row.metric;
    r.DestinationPrefix.Prefix = sockaddr(row.family, &row.prefix);
    r.DestinationPrefix.PrefixLength = row.prefix_len;
    r.NextHop = sockaddr(row.family, &row.gateway);
    match row.iface {
        IfRef::Index(i) => r.InterfaceIndex = i,
        IfRef::Luid(l) => r.InterfaceLuid = luid(l),
    }
    r
}

/// Calls `f` (looked up at run time) with `row`; [`PROC_NOT_FOUND`] when the system lacks it.
fn call_row<T>(f: Option<RowFn<T>>, row: &T) -> Code {
    match f {
        // SAFETY: a fully initialized row of the type the function takes.
        Some(f) => unsafe { f(row) },
        None => PROC_NOT_FOUND,
    }
}

/// `CreateUnicastIpAddressEntry`.
pub fn add_address(row: &AddressRow) -> Code {
    unicast_row(row).map_or_else(
        |e| e,
        |r| call_row(ip_helper2().create_unicast_ip_address_entry, &r),
    )
}

/// `DeleteUnicastIpAddressEntry`.
pub fn del_address(row: &AddressRow) -> Code {
    unicast_row(row).map_or_else(
        |e| e,
        |r| call_row(ip_helper2().delete_unicast_ip_address_entry, &r),
    )
}

/// `CreateIpForwardEntry2`.
pub fn add_route(row: &RouteRow) -> Code {
    call_row(ip_helper2().create_ip_forward_entry2, &forward_row(row))
}

/// `DeleteIpForwardEntry2`.
pub fn del_route(row: &RouteRow) -> Code {
    call_row(ip_helper2().delete_ip_forward_entry2, &forward_row(row))
}

// ---------------------------------------------------------------------------------------------
// Adapters

/// What `GetAdaptersAddresses` says about one adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// The friendly name (the interface alias).
    pub alias: String,
    /// Whether it is up (`IfOperStatusUp`).
    pub up: bool,
    /// Its DNS servers, as text.
    pub dns_servers: Vec<String>,
    /// Its DNS suffix.
    pub dns_suffix: String,
    /// The adapter name: its GUID as `{…}` text.
    pub name: String,
}

/// The IP of a `SOCKADDR_INET`.
///
/// # Safety
/// `sa` is null or points at a valid IPv4 or IPv6 socket address.
unsafe fn socket_ip(sa: *const SOCKADDR_INET) -> Option<String> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid address; the family selects the variant.
    unsafe {
        match (*sa).si_family {
            2 => Some(
                std::net::Ipv4Addr::from((*sa).Ipv4.sin_addr.S_un.S_addr.to_ne_bytes()).to_string(),
            ),
            23 => Some(std::net::Ipv6Addr::from((*sa).Ipv6.sin6_addr.u.Byte).to_string()),
            _ => None,
        }
    }
}

/// Every adapter (unicast addresses only); empty when the list cannot be had.
pub fn adapters() -> Vec<Adapter> {
    let mut size = 16 * 1024u32;
    let mut buf: Vec<u64> = Vec::new();
    for _ in 0..3 {
        buf = vec![0u64; (size as usize).div_ceil(8)];
        // SAFETY: `buf` holds `size` bytes, 8-aligned.
        let rc = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC),
                GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST,
                ptr::null(),
                buf.as_mut_ptr().cast(),
                &raw mut size,
            )
        };
        if rc == NO_ERROR {
            break;
        }
        if rc != 111 {
            // Anything but ERROR_BUFFER_OVERFLOW: no list.
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    let mut p = buf.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
    while !p.is_null() {
        // SAFETY: `p` walks the list GetAdaptersAddresses wrote into `buf`.
        let a = unsafe { &*p };
        p = a.Next;
        let mut dns_servers = Vec::new();
        let mut s = a.FirstDnsServerAddress;
        while !s.is_null() {
            // SAFETY: list entries inside `buf`.
            let entry = unsafe { &*s };
            s = entry.Next;
            // SAFETY: the sockaddr of a DNS server entry.
            if let Some(ip) = unsafe { socket_ip(entry.Address.lpSockaddr.cast()) } {
                dns_servers.push(ip);
            }
        }
        out.push(Adapter {
            // SAFETY: FriendlyName is a NUL-terminated string inside `buf`.
            alias: unsafe { wide_at(a.FriendlyName) },
            up: a.OperStatus == IfOperStatusUp,
            dns_servers,
            // SAFETY: DnsSuffix is a NUL-terminated string inside `buf`.
            dns_suffix: unsafe { wide_at(a.DnsSuffix) },
            // SAFETY: AdapterName is a NUL-terminated ANSI string inside `buf`.
            name: unsafe { std::ffi::CStr::from_ptr(a.AdapterName.cast()) }
                .to_string_lossy()
                .into_owned(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The Windows Filtering Platform

fn guid(u: &Uuid) -> GUID {
    let (data1, data2, data3, data4) = u.as_fields();
    GUID {
        data1,
        data2,
        data3,
        data4: *data4,
    }
}

/// A filter weight: `FWP_UINT8`, or `FWP_EMPTY` (automatic).
fn weight(w: Option<u8>) -> FWP_VALUE0 {
    // SAFETY: plain data; zero is `FWP_EMPTY`.
    let mut v: FWP_VALUE0 = unsafe { std::mem::zeroed() };
    v.r#type = FWP_EMPTY;
    if let Some(w) = w {
        v.r#type = FWP_UINT8;
        v.Anonymous.uint8 = w;
    }
    v
}

/// An open dynamic WFP session (`FWPM_SESSION_FLAG_DYNAMIC`): everything added through it
/// goes when it is closed, or dropped.
#[derive(Debug)]
pub struct WfpEngine(HANDLE);

// SAFETY: a WFP engine handle may be used and closed from any thread; it is closed once.
unsafe impl Send for WfpEngine {}

/// Application ids from `FwpmGetAppIdFromFileName0`, freed on drop.
struct AppIds(Vec<*mut FWP_BYTE_BLOB>);

impl Drop for AppIds {
    fn drop(&mut self) {
        for blob in &mut self.0 {
            // SAFETY: allocated by FwpmGetAppIdFromFileName0, freed once.
            unsafe { FwpmFreeMemory0((&raw mut *blob).cast()) };
        }
    }
}

impl WfpEngine {
    /// `FwpmEngineOpen0` with a dynamic session.
    pub fn open_dynamic() -> Result<Self, Code> {
        // SAFETY: plain data.
        let mut session: FWPM_SESSION0 = unsafe { std::mem::zeroed() };
        session.flags = FWPM_SESSION_FLAG_DYNAMIC;
        let mut h: HANDLE = ptr::null_mut();
        // SAFETY: valid session and out pointer.
        let rc = unsafe {
            FwpmEngineOpen0(
                ptr::null(),
                RPC_C_AUTHN_WINNT,
                ptr::null(),
                &raw const session,
                &raw mut h,
            )
        };
        result(rc, Self(h))
    }

    /// Adds a sublayer (one that already exists counts as added).
    pub fn add_sublayer(&self, key: &Uuid, name: &str, weight: u16) -> Code {
        let mut name = wide(name);
        // SAFETY: plain data.
        let mut sublayer: FWPM_SUBLAYER0 = unsafe { std::mem::zeroed() };
        sublayer.subLayerKey = guid(key);
        sublayer.displayData.name = name.as_mut_ptr();
        sublayer.displayData.description = name.as_mut_ptr();
        sublayer.weight = weight;
        // SAFETY: `sublayer` and the strings it points at outlive the call.
        let rc = unsafe { FwpmSubLayerAdd0(self.0, &raw const sublayer, ptr::null_mut()) };
        if rc == FWP_E_ALREADY_EXISTS as u32 {
            NO_ERROR
        } else {
            rc
        }
    }

    /// Adds one filter to `sublayer`, named (and described) `name`.
    pub fn add_filter(&self, f: &Filter, sublayer: &Uuid, name: &str) -> Code {
        let mut name = wide(name);
        let mut app_ids = AppIds(Vec::new());
        let mut luids: Vec<Box<u64>> = Vec::new();
        let mut conditions: Vec<FWPM_FILTER_CONDITION0> = Vec::new();
        for c in &f.conditions {
            // SAFETY: plain data.
            let mut cond: FWPM_FILTER_CONDITION0 = unsafe { std::mem::zeroed() };
            match c {
                Condition::AppId(exe) => {
                    let wexe = wide(exe);
                    let mut blob: *mut FWP_BYTE_BLOB = ptr::null_mut();
                    // SAFETY: NUL-terminated path; `blob` receives WFP memory freed by `app_ids`.
                    let rc = unsafe { FwpmGetAppIdFromFileName0(wexe.as_ptr(), &raw mut blob) };
                    if rc != NO_ERROR {
                        return rc;
                    }
                    app_ids.0.push(blob);
                    cond.fieldKey = FWPM_CONDITION_ALE_APP_ID;
                    cond.matchType = FWP_MATCH_EQUAL;
                    cond.conditionValue = FWP_CONDITION_VALUE0 {
                        r#type: FWP_BYTE_BLOB_TYPE,
                        Anonymous: FWP_CONDITION_VALUE0_0 { byteBlob: blob },
                    };
                }
                Condition::RemotePortDns => {
                    cond.fieldKey = FWPM_CONDITION_IP_REMOTE_PORT;
                    cond.matchType = FWP_MATCH_EQUAL;
                    cond.conditionValue.r#type = FWP_UINT16;
                    cond.conditionValue.Anonymous.uint16 = 53;
                }
                Condition::NotLoopback | Condition::Loopback => {
                    cond.fieldKey = FWPM_CONDITION_FLAGS;
                    cond.matchType = if *c == Condition::Loopback {
                        FWP_MATCH_FLAGS_ALL_SET
                    } else {
                        FWP_MATCH_FLAGS_NONE_SET
                    };
                    cond.conditionValue.r#type = FWP_UINT32;
                    cond.conditionValue.Anonymous.uint32 = FWP_CONDITION_FLAG_IS_LOOPBACK;
                }
                Condition::LocalInterface(l) => {
                    let mut boxed = Box::new(*l);
                    cond.fieldKey = FWPM_CONDITION_IP_LOCAL_INTERFACE;
                    cond.matchType = FWP_MATCH_EQUAL;
                    cond.conditionValue.r#type = FWP_UINT64;
                    cond.conditionValue.Anonymous.uint64 = &raw mut *boxed;
                    luids.push(boxed);
                }
            }
            conditions.push(cond);
        }
        // SAFETY: plain data.
        let mut filter: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
        filter.displayData.name = name.as_mut_ptr();
        filter.displayData.description = name.as_mut_ptr();
        filter.layerKey = match f.layer {
            Layer::V4 => FWPM_LAYER_ALE_AUTH_CONNECT_V4,
            Layer::V6 => FWPM_LAYER_ALE_AUTH_CONNECT_V6,
        };
        filter.subLayerKey = guid(sublayer);
        filter.weight = weight(f.weight);
        filter.action = FWPM_ACTION0 {
            r#type: if f.action == Action::Permit {
                FWP_ACTION_PERMIT
            } else {
                FWP_ACTION_BLOCK
            },
            // SAFETY: plain data.
            Anonymous: unsafe { std::mem::zeroed() },
        };
        filter.numFilterConditions = conditions.len() as u32;
        filter.filterCondition = conditions.as_mut_ptr();
        // SAFETY: the filter and everything it points at (conditions, blobs, LUIDs, name) are
        // alive for the call.
        let rc =
            unsafe { FwpmFilterAdd0(self.0, &raw const filter, ptr::null_mut(), ptr::null_mut()) };
        drop(luids);
        drop(app_ids);
        rc
    }

    /// Closes the session; its filters go with it.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for WfpEngine {
    fn drop(&mut self) {
        // SAFETY: an engine opened by `open_dynamic`, closed once.
        unsafe { FwpmEngineClose0(self.0) };
    }
}

// ---------------------------------------------------------------------------------------------
// The DNS client

/// Sends `SERVICE_CONTROL_PARAMCHANGE` to the DNS client service (`Dnscache`), if it can be
/// opened.
pub fn dnscache_param_change() {
    let name = wide("Dnscache");
    // SAFETY: NUL-terminated names; both handles are closed below.
    unsafe {
        let scm = OpenSCManagerW(ptr::null(), ptr::null(), SC_MANAGER_CONNECT);
        if scm.is_null() {
            return;
        }
        let svc = OpenServiceW(scm, name.as_ptr(), SERVICE_PAUSE_CONTINUE);
        if !svc.is_null() {
            let mut status: SERVICE_STATUS = std::mem::zeroed();
            ControlService(svc, SERVICE_CONTROL_PARAMCHANGE, &raw mut status);
            CloseServiceHandle(svc);
        }
        CloseServiceHandle(scm);
    }
}

/// Publishes `WNF_GPOL_SYSTEM_CHANGES` (ntdll's `RtlPublishWnfStateData`): tells the DNS
/// client that policy changed.
pub fn publish_gpol_change() {
    type Publish =
        unsafe extern "system" fn(u64, *const c_void, u32, *const c_void, *const c_void) -> i32;
    let ntdll = wide("ntdll.dll");
    // SAFETY: NUL-terminated names; the function pointer is used with its documented signature.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        if module.is_null() {
            return;
        }
        if let Some(f) = GetProcAddress(module, c"RtlPublishWnfStateData".as_ptr().cast()) {
            let publish: Publish = std::mem::transmute(f);
            publish(
                0x0D89_1E2A_A3BC_0875,
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
            );
        }
    }
}
