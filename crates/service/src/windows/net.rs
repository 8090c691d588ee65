//! The real [`WinNet`]: IP Helper, the registry, WFP, helper programs (spec §5.6). Only
//! mechanics live here; what to change and when is decided in `openvpnserv_core`.
//!
//! Wine lacks the IP Helper "2" functions and WFP, so this layer is compiled here and its
//! callers are tested with the recording fake.

use std::ffi::c_void;
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use openvpnserv_core::windows::net::{
    AddressRow, Code, IfRef, InterfaceDns, Registry, RouteRow, WinNet,
};
use openvpnserv_core::windows::wfp::{self, Action, Condition, Filter, Layer};
use openvpnserv_proto::channel::{InetAddr, AF_INET, AF_INET6};
use openvpnserv_proto::codes::{NO_ERROR, WAIT_TIMEOUT};
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{ERROR_SUCCESS, FWP_E_ALREADY_EXISTS, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    ConvertInterfaceAliasToLuid, ConvertInterfaceIndexToLuid, ConvertInterfaceLuidToGuid,
    CreateIpForwardEntry2, CreateUnicastIpAddressEntry, DeleteIpForwardEntry2,
    DeleteUnicastIpAddressEntry, FlushIpNetTable, FlushIpNetTable2, GetAdaptersAddresses,
    GetIpInterfaceEntry, InitializeIpInterfaceEntry, InitializeUnicastIpAddressEntry,
    SetIpInterfaceEntry, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH,
    MIB_IPFORWARD_ROW2, MIB_IPINTERFACE_ROW, MIB_UNICASTIPADDRESS_ROW,
};
use windows_sys::Win32::NetworkManagement::Ndis::{IfOperStatusUp, NET_LUID_LH};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::{
    FwpmEngineClose0, FwpmEngineOpen0, FwpmFilterAdd0, FwpmFreeMemory0, FwpmGetAppIdFromFileName0,
    FwpmSubLayerAdd0, FWPM_ACTION0, FWPM_CONDITION_ALE_APP_ID, FWPM_CONDITION_FLAGS,
    FWPM_CONDITION_IP_LOCAL_INTERFACE, FWPM_CONDITION_IP_REMOTE_PORT, FWPM_FILTER0,
    FWPM_FILTER_CONDITION0, FWPM_LAYER_ALE_AUTH_CONNECT_V4, FWPM_LAYER_ALE_AUTH_CONNECT_V6,
    FWPM_SESSION0, FWPM_SESSION_FLAG_DYNAMIC, FWPM_SUBLAYER0, FWP_ACTION_BLOCK, FWP_ACTION_PERMIT,
    FWP_BYTE_BLOB, FWP_BYTE_BLOB_TYPE, FWP_CONDITION_FLAG_IS_LOOPBACK, FWP_CONDITION_VALUE0,
    FWP_EMPTY, FWP_MATCH_EQUAL, FWP_MATCH_FLAGS_ALL_SET, FWP_MATCH_FLAGS_NONE_SET, FWP_UINT16,
    FWP_UINT32, FWP_UINT64, FWP_UINT8, FWP_VALUE0,
};
use windows_sys::Win32::Networking::WinSock::{AF_UNSPEC, MIB_IPPROTO_NETMGMT, SOCKADDR_INET};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegDeleteValueW, RegEnumKeyExW, RegGetValueW,
    RegOpenKeyExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_READ, KEY_WRITE, REG_DWORD,
    REG_MULTI_SZ, REG_OPTION_NON_VOLATILE, REG_SZ, RRF_RT_REG_SZ,
};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_WINNT;
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, OpenSCManagerW, OpenServiceW, SC_MANAGER_CONNECT,
    SERVICE_CONTROL_PARAMCHANGE, SERVICE_PAUSE_CONTINUE, SERVICE_STATUS,
};
use windows_sys::Win32::System::SystemInformation::GetSystemDirectoryW;
use windows_sys::Win32::System::Threading::{
    CreateProcessW, GetExitCodeProcess, TerminateProcess, WaitForSingleObject, CREATE_NO_WINDOW,
    CREATE_UNICODE_ENVIRONMENT, PROCESS_INFORMATION, STARTUPINFOW,
};

use super::server::NetFactory;
use super::win32::{from_wide, owned, raw, wide};

/// Makes [`RealNet`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealNetFactory;

impl NetFactory for RealNetFactory {
    type Net = RealNet;
    fn make(&self) -> RealNet {
        RealNet
    }
}

/// The operating system's network layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealNet;

/// An open dynamic WFP session.
#[derive(Debug)]
pub struct Engine(HANDLE);

// SAFETY: a WFP engine handle may be used and closed from any thread.
unsafe impl Send for Engine {}

/// An open registry key, closed on drop.
struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: opened by us, closed once.
        unsafe { RegCloseKey(self.0) };
    }
}

fn open_key(path: &str, access: u32) -> Result<Key, Code> {
    let name = wide(path);
    let mut h: HKEY = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; `h` is a valid out pointer.
    let rc = unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, name.as_ptr(), 0, access, &raw mut h) };
    if rc == ERROR_SUCCESS {
        Ok(Key(h))
    } else {
        Err(rc)
    }
}

fn create_key(path: &str) -> Result<Key, Code> {
    let name = wide(path);
    let mut h: HKEY = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; out pointers are valid.
    let rc = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            name.as_ptr(),
            0,
            ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_READ | KEY_WRITE,
            ptr::null(),
            &raw mut h,
            ptr::null_mut(),
        )
    };
    if rc == ERROR_SUCCESS {
        Ok(Key(h))
    } else {
        Err(rc)
    }
}

fn set_value(path: &str, name: &str, kind: u32, data: &[u8]) -> Code {
    let key = match create_key(path) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let name = wide(name);
    // SAFETY: `data` holds `len` bytes of the given type; `name` is NUL-terminated.
    unsafe {
        RegSetValueExW(
            key.0,
            name.as_ptr(),
            0,
            kind,
            data.as_ptr(),
            data.len() as u32,
        )
    }
}

fn utf16_bytes(units: impl Iterator<Item = u16>) -> Vec<u8> {
    units.flat_map(u16::to_le_bytes).collect()
}

impl Registry for RealNet {
    fn get_sz(&mut self, key: &str, name: &str) -> Option<String> {
        let k = open_key(key, KEY_READ).ok()?;
        let wname = wide(name);
        let mut buf = vec![0u16; 4096];
        let mut bytes = (buf.len() * 2) as u32;
        // SAFETY: `buf` holds `bytes` bytes; REG_SZ only.
        let rc = unsafe {
            RegGetValueW(
                k.0,
                ptr::null(),
                wname.as_ptr(),
                RRF_RT_REG_SZ,
                ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &raw mut bytes,
            )
        };
        (rc == ERROR_SUCCESS).then(|| from_wide(&buf))
    }

    fn set_sz(&mut self, key: &str, name: &str, value: &str) -> Code {
        set_value(
            key,
            name,
            REG_SZ,
            &utf16_bytes(value.encode_utf16().chain(Some(0))),
        )
    }

    fn set_multi_sz(&mut self, key: &str, name: &str, value: &[String]) -> Code {
        let units = value
            .iter()
            .flat_map(|s| s.encode_utf16().chain(Some(0)))
            .chain(Some(0));
        set_value(key, name, REG_MULTI_SZ, &utf16_bytes(units))
    }

    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Code {
        set_value(key, name, REG_DWORD, &value.to_le_bytes())
    }

    fn delete_value(&mut self, key: &str, name: &str) -> Code {
        let k = match open_key(key, KEY_WRITE) {
            Ok(k) => k,
            Err(e) => return e,
        };
        let name = wide(name);
        // SAFETY: valid key and NUL-terminated name.
        unsafe { RegDeleteValueW(k.0, name.as_ptr()) }
    }

    fn key_exists(&mut self, key: &str) -> bool {
        open_key(key, KEY_READ).is_ok()
    }

    fn create_key(&mut self, key: &str) -> Code {
        create_key(key).err().unwrap_or(NO_ERROR)
    }

    fn subkeys(&mut self, key: &str) -> Vec<String> {
        let Ok(k) = open_key(key, KEY_READ) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for i in 0.. {
            let mut buf = [0u16; 256];
            let mut len = buf.len() as u32;
            // SAFETY: `buf` holds `len` units; other out pointers are optional.
            let rc = unsafe {
                RegEnumKeyExW(
                    k.0,
                    i,
                    buf.as_mut_ptr(),
                    &raw mut len,
                    ptr::null(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            if rc != ERROR_SUCCESS {
                break;
            }
            names.push(from_wide(&buf));
        }
        names
    }

    fn delete_tree(&mut self, key: &str) -> Code {
        let name = wide(key);
        // SAFETY: NUL-terminated subkey of HKLM.
        let rc = unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, name.as_ptr()) };
        if rc != ERROR_SUCCESS {
            return rc;
        }
        // RegDeleteTreeW empties the key; remove the key itself too.
        let (parent, leaf) = key.rsplit_once('\\').unwrap_or(("", key));
        if let Ok(p) = open_key(parent, KEY_WRITE) {
            let leaf = wide(leaf);
            // SAFETY: valid key and NUL-terminated name.
            unsafe { RegDeleteTreeW(p.0, leaf.as_ptr()) };
        }
        NO_ERROR
    }
}

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

fn luid(value: u64) -> NET_LUID_LH {
    NET_LUID_LH { Value: value }
}

fn interface_row(index: u32, family: i16) -> Result<MIB_IPINTERFACE_ROW, Code> {
    // SAFETY: plain data, initialized by the API below.
    let mut row: MIB_IPINTERFACE_ROW = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { InitializeIpInterfaceEntry(&raw mut row) };
    row.Family = family as u16;
    row.InterfaceIndex = index;
    // SAFETY: valid in/out row.
    let rc = unsafe { GetIpInterfaceEntry(&raw mut row) };
    if rc == NO_ERROR {
        Ok(row)
    } else {
        Err(rc)
    }
}

fn set_interface_row(mut row: MIB_IPINTERFACE_ROW) -> Code {
    if row.Family == AF_INET as u16 {
        // Required for IPv4 rows, as upstream does.
        row.SitePrefixLength = 0;
    }
    // SAFETY: valid row read by GetIpInterfaceEntry.
    unsafe { SetIpInterfaceEntry(&raw mut row) }
}

fn guid(text: &str) -> GUID {
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    GUID::from_u128(u128::from_str_radix(&hex, 16).unwrap_or(0))
}

fn guid_text(g: &GUID) -> String {
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
        g.data1,
        g.data2,
        g.data3,
        g.data4[0],
        g.data4[1],
        g.data4[2],
        g.data4[3],
        g.data4[4],
        g.data4[5],
        g.data4[6],
        g.data4[7]
    )
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

/// Adds the sublayer and the filters of `plan` to an open engine.
fn add_filters(engine: HANDLE, filters: &[Filter]) -> Result<(), Code> {
    let mut name = wide(wfp::NAME);
    let sublayer_key = guid(wfp::SUBLAYER_KEY);
    // SAFETY: plain data.
    let mut sublayer: FWPM_SUBLAYER0 = unsafe { std::mem::zeroed() };
    sublayer.subLayerKey = sublayer_key;
    sublayer.displayData.name = name.as_mut_ptr();
    sublayer.displayData.description = name.as_mut_ptr();
    sublayer.weight = wfp::SUBLAYER_WEIGHT;
    // SAFETY: `sublayer` and the strings it points at outlive the call.
    let rc = unsafe { FwpmSubLayerAdd0(engine, &raw const sublayer, ptr::null_mut()) };
    if rc != NO_ERROR && rc != FWP_E_ALREADY_EXISTS as u32 {
        return Err(rc);
    }
    for f in filters {
        let mut app_ids: Vec<*mut FWP_BYTE_BLOB> = Vec::new();
        let mut luids: Vec<Box<u64>> = Vec::new();
        let mut conditions: Vec<FWPM_FILTER_CONDITION0> = Vec::new();
        let mut failed = None;
        for c in &f.conditions {
            // SAFETY: plain data.
            let mut cond: FWPM_FILTER_CONDITION0 = unsafe { std::mem::zeroed() };
            match c {
                Condition::AppId(exe) => {
                    let wexe = wide(exe);
                    let mut blob: *mut FWP_BYTE_BLOB = ptr::null_mut();
                    // SAFETY: NUL-terminated path; `blob` receives WFP memory freed below.
                    let rc = unsafe { FwpmGetAppIdFromFileName0(wexe.as_ptr(), &raw mut blob) };
                    if rc != NO_ERROR {
                        failed = Some(rc);
                        break;
                    }
                    app_ids.push(blob);
                    cond.fieldKey = FWPM_CONDITION_ALE_APP_ID;
                    cond.matchType = FWP_MATCH_EQUAL;
                    cond.conditionValue = FWP_CONDITION_VALUE0 {
                        r#type: FWP_BYTE_BLOB_TYPE,
                        Anonymous: windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::FWP_CONDITION_VALUE0_0 { byteBlob: blob },
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
        let rc = if let Some(rc) = failed {
            rc
        } else {
            // SAFETY: plain data.
            let mut filter: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
            filter.displayData.name = name.as_mut_ptr();
            filter.displayData.description = name.as_mut_ptr();
            filter.layerKey = match f.layer {
                Layer::V4 => FWPM_LAYER_ALE_AUTH_CONNECT_V4,
                Layer::V6 => FWPM_LAYER_ALE_AUTH_CONNECT_V6,
            };
            filter.subLayerKey = sublayer_key;
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
            // SAFETY: the filter and everything it points at (conditions, blobs, LUIDs,
            // name) are alive for the call.
            unsafe { FwpmFilterAdd0(engine, &raw const filter, ptr::null_mut(), ptr::null_mut()) }
        };
        for mut blob in app_ids {
            // SAFETY: allocated by FwpmGetAppIdFromFileName0, freed once.
            unsafe { FwpmFreeMemory0((&raw mut blob).cast()) };
        }
        drop(luids);
        if rc != NO_ERROR {
            return Err(rc);
        }
    }
    Ok(())
}

/// Runs a program as the service without inheriting any handle (spec §5.6 "run helper").
fn run_program(exe: &str, cmdline: &str, timeout: Duration) -> Code {
    let app = wide(exe);
    let mut cmd = wide(cmdline);
    // SAFETY: plain data.
    let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
    si.cb = size_of::<STARTUPINFOW>() as u32;
    // SAFETY: plain data.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated, mutable command line; no handle inheritance.
    let ok = unsafe {
        CreateProcessW(
            app.as_ptr(),
            cmd.as_mut_ptr(),
            ptr::null(),
            ptr::null(),
            0,
            CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT,
            ptr::null(),
            ptr::null(),
            &raw const si,
            &raw mut pi,
        )
    };
    if ok == 0 {
        return super::win32::Win32Error::last("CreateProcess").code;
    }
    drop(owned(pi.hThread));
    let process = owned(pi.hProcess);
    let h = raw(&process);
    // SAFETY: valid process handle.
    if unsafe {
        WaitForSingleObject(
            h,
            u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1),
        )
    } != WAIT_OBJECT_0
    {
        // SAFETY: valid process handle.
        unsafe { TerminateProcess(h, 1) };
        return WAIT_TIMEOUT;
    }
    let mut code = 0;
    // SAFETY: valid handle and out pointer.
    unsafe { GetExitCodeProcess(h, &raw mut code) };
    code
}

/// The system directory (`GetSystemDirectoryW`, else `C:\Windows\system32`).
pub fn system_dir_path() -> String {
    system_dir()
}

fn system_dir() -> String {
    let mut buf = [0u16; 260];
    // SAFETY: `buf` holds 260 units.
    let n = unsafe { GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32) };
    if n == 0 || n as usize >= buf.len() {
        return r"C:\Windows\system32".to_owned();
    }
    from_wide(&buf)
}

/// Only one `ipconfig /registerdns` at a time, process-wide (upstream's semaphore).
static REGISTER_DNS: Mutex<()> = Mutex::new(());

/// `WNF_GPOL_SYSTEM_CHANGES`: tells the DNS client that policy changed.
fn publish_gpol_change() {
    type Publish =
        unsafe extern "system" fn(u64, *const c_void, u32, *const c_void, *const c_void) -> i32;
    let ntdll = wide("ntdll.dll");
    // SAFETY: NUL-terminated names; the function pointer is used with its documented signature.
    unsafe {
        let module = windows_sys::Win32::System::LibraryLoader::GetModuleHandleW(ntdll.as_ptr());
        if module.is_null() {
            return;
        }
        if let Some(f) = windows_sys::Win32::System::LibraryLoader::GetProcAddress(
            module,
            c"RtlPublishWnfStateData".as_ptr().cast(),
        ) {
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

impl WinNet for RealNet {
    type Engine = Engine;

    fn alias_to_luid(&mut self, alias: &str) -> Result<u64, Code> {
        let name = wide(alias);
        let mut l = luid(0);
        // SAFETY: NUL-terminated alias and valid out pointer.
        let rc = unsafe { ConvertInterfaceAliasToLuid(name.as_ptr(), &raw mut l) };
        if rc == NO_ERROR {
            // SAFETY: every variant of the union is the same 8 bytes.
            Ok(unsafe { l.Value })
        } else {
            Err(rc)
        }
    }

    fn index_to_luid(&mut self, index: u32) -> Result<u64, Code> {
        let mut l = luid(0);
        // SAFETY: valid out pointer.
        let rc = unsafe { ConvertInterfaceIndexToLuid(index, &raw mut l) };
        if rc == NO_ERROR {
            // SAFETY: every variant of the union is the same 8 bytes.
            Ok(unsafe { l.Value })
        } else {
            Err(rc)
        }
    }

    fn interface_guid(&mut self, alias: &str) -> Result<String, Code> {
        let l = luid(self.alias_to_luid(alias)?);
        let mut g = GUID::from_u128(0);
        // SAFETY: valid LUID and out pointer.
        let rc = unsafe { ConvertInterfaceLuidToGuid(&raw const l, &raw mut g) };
        if rc == NO_ERROR {
            Ok(guid_text(&g))
        } else {
            Err(rc)
        }
    }

    fn add_address(&mut self, row: &AddressRow) -> Code {
        let r = unicast_row(row);
        // SAFETY: a fully initialized row.
        unsafe { CreateUnicastIpAddressEntry(&raw const r) }
    }

    fn del_address(&mut self, row: &AddressRow) -> Code {
        let r = unicast_row(row);
        // SAFETY: a fully initialized row.
        unsafe { DeleteUnicastIpAddressEntry(&raw const r) }
    }

    fn add_route(&mut self, row: &RouteRow) -> Code {
        let r = forward_row(row);
        // SAFETY: a fully initialized row.
        unsafe { CreateIpForwardEntry2(&raw const r) }
    }

    fn del_route(&mut self, row: &RouteRow) -> Code {
        let r = forward_row(row);
        // SAFETY: a fully initialized row.
        unsafe { DeleteIpForwardEntry2(&raw const r) }
    }

    fn flush_neighbors(&mut self, family: i16, index: u32) -> Code {
        if family == AF_INET {
            // SAFETY: no pointers.
            unsafe { FlushIpNetTable(index) }
        } else {
            // SAFETY: no pointers.
            unsafe { FlushIpNetTable2(family as u16, index) }
        }
    }

    fn interface_metric(&mut self, index: u32, family: i16) -> Result<u32, Code> {
        let row = interface_row(index, family)?;
        Ok(if row.UseAutomaticMetric != 0 {
            0
        } else {
            row.Metric
        })
    }

    fn set_interface_metric(&mut self, index: u32, family: i16, metric: u32) -> Code {
        match interface_row(index, family) {
            Ok(mut row) => {
                row.Metric = metric;
                row.UseAutomaticMetric = u8::from(metric == 0);
                set_interface_row(row)
            }
            Err(e) => e,
        }
    }

    fn set_mtu(&mut self, index: u32, family: i16, mtu: u32) -> Code {
        match interface_row(index, family) {
            Ok(mut row) => {
                row.NlMtu = mtu;
                set_interface_row(row)
            }
            Err(e) => e,
        }
    }

    fn wfp_open(&mut self, filters: &[Filter]) -> Result<Engine, Code> {
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
        if rc != NO_ERROR {
            return Err(rc);
        }
        let engine = Engine(h);
        if let Err(e) = add_filters(engine.0, filters) {
            // Filters already added belong to this dynamic session and go with it.
            self.wfp_close(engine);
            return Err(e);
        }
        Ok(engine)
    }

    fn wfp_close(&mut self, engine: Engine) {
        // SAFETY: an engine opened by `wfp_open`, closed once (its dynamic filters go too).
        unsafe { FwpmEngineClose0(engine.0) };
    }

    fn run_helper(&mut self, exe: &str, cmdline: &str, timeout: Duration) -> Code {
        run_program(exe, cmdline, timeout)
    }

    fn system_dir(&mut self) -> String {
        system_dir()
    }

    fn notify_dns(&mut self, gpol: bool) {
        if gpol {
            publish_gpol_change();
        }
        let name = wide("Dnscache");
        // SAFETY: NUL-terminated names; handles are closed below.
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

    fn register_dns(&mut self) -> Code {
        let spawned = std::thread::Builder::new()
            .name("register-dns".into())
            .spawn(|| {
                let _one_at_a_time = REGISTER_DNS.lock();
                let exe = format!(r"{}\ipconfig.exe", system_dir());
                let limit = Duration::from_secs(600);
                run_program(&exe, "ipconfig /flushdns", limit);
                run_program(&exe, "ipconfig /registerdns", limit);
            });
        match spawned {
            Ok(_) => NO_ERROR,
            Err(e) => e.raw_os_error().unwrap_or(8) as u32,
        }
    }

    fn other_interfaces_dns(&mut self, except_alias: &str) -> Vec<InterfaceDns> {
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
            if a.OperStatus != IfOperStatusUp {
                continue;
            }
            // SAFETY: FriendlyName is a NUL-terminated string inside `buf`.
            let alias = unsafe { pwstr(a.FriendlyName) };
            if alias == except_alias {
                continue;
            }
            let mut dns = InterfaceDns::default();
            let mut s = a.FirstDnsServerAddress;
            while !s.is_null() {
                // SAFETY: list entries inside `buf`.
                let entry = unsafe { &*s };
                s = entry.Next;
                // SAFETY: the sockaddr of a DNS server entry.
                if let Some(ip) = unsafe { socket_ip(entry.Address.lpSockaddr.cast()) } {
                    dns.servers.push(ip);
                }
            }
            // SAFETY: DnsSuffix is a NUL-terminated string inside `buf`.
            let suffix = unsafe { pwstr(a.DnsSuffix) };
            if !suffix.is_empty() {
                dns.domains.push(suffix);
            }
            // SAFETY: AdapterName is a NUL-terminated ANSI string inside `buf`.
            let guid = unsafe { std::ffi::CStr::from_ptr(a.AdapterName.cast()) }
                .to_string_lossy()
                .into_owned();
            for v6 in [false, true] {
                let key = openvpnserv_core::windows::session::interface_key(&guid, v6);
                for name in ["SearchList", "Domain", "DhcpDomainSearchList", "DhcpDomain"] {
                    if let Some(list) = self.get_sz(&key, name) {
                        dns.domains.extend(
                            list.split([',', ' '])
                                .filter(|d| !d.is_empty())
                                .map(str::to_owned),
                        );
                    }
                }
            }
            dns.domains.dedup();
            out.push(dns);
        }
        out
    }
}

/// A NUL-terminated wide string.
///
/// # Safety
/// `p` is null or points at a NUL-terminated UTF-16 string.
unsafe fn pwstr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller guarantees a terminator.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units precede the terminator.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
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

fn unicast_row(row: &AddressRow) -> MIB_UNICASTIPADDRESS_ROW {
    // SAFETY: plain data, initialized by the API.
    let mut r: MIB_UNICASTIPADDRESS_ROW = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { InitializeUnicastIpAddressEntry(&raw mut r) };
    r.Address = sockaddr(row.family, &row.address);
    r.OnLinkPrefixLength = row.prefix_len;
    match row.iface {
        IfRef::Index(i) => r.InterfaceIndex = i,
        IfRef::Luid(l) => r.InterfaceLuid = luid(l),
    }
    r
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
