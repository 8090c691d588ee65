//! Starting openvpn as the client (spec §4.1 steps 5–13, §1.4), with an explicit list of
//! inherited handles and a thread security descriptor (§11).

use std::ffi::c_void;
use std::os::windows::io::OwnedHandle;
use std::ptr;

use openvpnserv_core::windows::sddl;
use windows_sys::Win32::Foundation::{
    SetHandleInformation, GENERIC_READ, GENERIC_WRITE, HANDLE, HANDLE_FLAG_INHERIT,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Environment::{CreateEnvironmentBlock, DestroyEnvironmentBlock};
use windows_sys::Win32::System::Pipes::{
    CreatePipe, SetNamedPipeHandleState, PIPE_READMODE_MESSAGE,
};
use windows_sys::Win32::System::Rpc::{RpcStringFreeW, UuidCreate, UuidToStringW};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetCurrentThreadId,
    InitializeProcThreadAttributeList, UpdateProcThreadAttribute, CREATE_NO_WINDOW,
    CREATE_UNICODE_ENVIRONMENT, EXTENDED_STARTUPINFO_PRESENT, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use super::pipe::{Pipe, PipeSpec};
use super::security::{inheritable, SecurityDescriptor};
use super::token::Token;
use super::win32::{check, owned, raw, wide, Win32Error};

/// What [`launch`] needs.
pub struct LaunchRequest<'a> {
    /// `exe_path` (lpApplicationName).
    pub exe_path: &'a str,
    /// The client's options, verbatim.
    pub options: &'a str,
    /// The working directory.
    pub working_dir: &'a str,
    /// Priority class flag.
    pub priority_class: u32,
    /// Channel pipe name (`\\.\pipe\openvpn<id>\service_<tid>_<uuid>`).
    pub channel_name: String,
    /// The service's SID as text.
    pub service_sid: &'a str,
    /// The client's SID as text.
    pub user_sid: &'a str,
    /// Bytes that will be written to stdin (the pipe gets room for them).
    pub stdin_len: usize,
}

/// A started openvpn.
pub struct Launched {
    /// Process handle.
    pub process: OwnedHandle,
    /// Process id.
    pub pid: u32,
    /// Write end of openvpn's stdin (kept open for the whole session).
    pub stdin: OwnedHandle,
    /// Service end of the channel.
    pub channel: Pipe,
}

impl Launched {
    /// The DACL of openvpn's process as SDDL, read back from the process.
    pub fn process_dacl_sddl(&self) -> Result<String, Win32Error> {
        super::security::dacl_sddl_of(raw(&self.process))
    }
}

/// A fresh v4 UUID as `UuidToStringW` renders it (lower case, no braces).
pub fn new_uuid() -> Result<String, Win32Error> {
    // SAFETY: GUID is plain data.
    let mut uuid = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    let rc = unsafe { UuidCreate(&raw mut uuid) };
    if rc != 0 {
        return Err(Win32Error::new(rc as u32, "UuidCreate"));
    }
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: valid GUID and out pointer; the string is freed below.
    let rc = unsafe { UuidToStringW(&raw const uuid, &raw mut text) };
    if rc != 0 {
        return Err(Win32Error::new(rc as u32, "UuidToString"));
    }
    let mut len = 0;
    // SAFETY: the string is NUL-terminated.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units precede the NUL.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated by UuidToStringW, freed once.
    unsafe { RpcStringFreeW(&raw mut text) };
    Ok(s.to_ascii_lowercase())
}

/// This thread's id (part of the channel name, as upstream).
pub fn thread_id() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetCurrentThreadId() }
}

fn open_inheritable(
    path: &str,
    access: u32,
    share: u32,
    label: &str,
) -> Result<OwnedHandle, Win32Error> {
    let name = wide(path);
    let sa = inheritable();
    // SAFETY: `name` is NUL-terminated; `sa` outlives the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            share,
            &raw const sa,
            OPEN_EXISTING,
            0,
            ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(Win32Error::last(label));
    }
    Ok(owned(h))
}

/// The channel pipe and its inheritable, synchronous client end (spec §1.4). Call while
/// impersonating, so that the pipe's owner (`OW` in its DACL) is the client.
pub fn create_channel(name: &str) -> Result<(Pipe, OwnedHandle), Win32Error> {
    let sd = SecurityDescriptor::from_sddl(sddl::CHANNEL_PIPE)?;
    let pipe = Pipe::create(name, PipeSpec::CHANNEL, &sd)?;
    let client = open_inheritable(name, GENERIC_READ | GENERIC_WRITE, 0, "CreateFile")?;
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: valid pipe handle; `mode` outlives the call.
    let ok =
        unsafe { SetNamedPipeHandleState(raw(&client), &raw const mode, ptr::null(), ptr::null()) };
    check(ok, "SetNamedPipeHandleState")?;
    Ok((pipe, client))
}

/// An attribute list holding `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`, freed on drop.
struct HandleList {
    buf: Vec<u64>,
    handles: Box<[HANDLE]>,
}

impl HandleList {
    fn new(handles: Vec<HANDLE>) -> Result<Self, Win32Error> {
        let mut size = 0usize;
        // SAFETY: a size query with a null list, as documented.
        unsafe { InitializeProcThreadAttributeList(ptr::null_mut(), 1, 0, &raw mut size) };
        let mut list = Self {
            buf: vec![0u64; size.div_ceil(8)],
            handles: handles.into_boxed_slice(),
        };
        // SAFETY: `buf` holds `size` bytes, suitably aligned.
        let ok = unsafe { InitializeProcThreadAttributeList(list.ptr(), 1, 0, &raw mut size) };
        if ok == 0 {
            let e = Win32Error::last("InitializeProcThreadAttributeList");
            // Not initialized: nothing for Drop to delete.
            list.buf.clear();
            return Err(e);
        }
        // SAFETY: the list is initialized; `handles` lives in `self` (boxed, so its address is
        // stable) for as long as the list does.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                list.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                list.handles.as_ptr().cast::<c_void>(),
                size_of_val(&*list.handles),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        // On failure, Drop deletes the initialized list.
        check(ok, "UpdateProcThreadAttribute")?;
        Ok(list)
    }

    fn ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_mut_ptr().cast()
    }
}

impl Drop for HandleList {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // SAFETY: the list was initialized and is deleted once.
            unsafe { DeleteProcThreadAttributeList(self.ptr()) };
        }
    }
}

/// The user's environment block, destroyed on drop.
struct EnvBlock(*mut c_void);

impl Drop for EnvBlock {
    fn drop(&mut self) {
        // SAFETY: created by CreateEnvironmentBlock, destroyed once.
        unsafe { DestroyEnvironmentBlock(self.0) };
    }
}

/// Starts openvpn (spec §4.1 steps 5–13). Call while impersonating the client; `token` is its
/// impersonation token.
pub fn launch(token: &Token, req: &LaunchRequest<'_>) -> Result<Launched, Win32Error> {
    let process_sd = SecurityDescriptor::from_sddl(&sddl::object_sddl(
        req.service_sid,
        req.user_sid,
        sddl::USER_PROCESS_RIGHTS,
    ))?;
    let thread_sd = SecurityDescriptor::from_sddl(&sddl::object_sddl(
        req.service_sid,
        req.user_sid,
        sddl::USER_THREAD_RIGHTS,
    ))?;
    let primary = token.duplicate_primary()?;
    let nul = open_inheritable(
        "NUL",
        GENERIC_WRITE,
        FILE_SHARE_WRITE,
        "CreateFile for stdout",
    )?;
    let (stdin_read, stdin_write) = {
        let sa = inheritable();
        let (mut r, mut w): (HANDLE, HANDLE) = (ptr::null_mut(), ptr::null_mut());
        let size = u32::try_from(req.stdin_len + 4096).unwrap_or(u32::MAX);
        // SAFETY: valid out pointers; `sa` outlives the call.
        let ok = unsafe { CreatePipe(&raw mut r, &raw mut w, &raw const sa, size) };
        check(ok, "CreatePipe")?;
        let (r, w) = (owned(r), owned(w));
        // SAFETY: `w` is valid; only its inherit flag changes.
        let ok = unsafe { SetHandleInformation(raw(&w), HANDLE_FLAG_INHERIT, 0) };
        check(ok, "SetHandleInformation")?;
        (r, w)
    };
    let (channel, channel_client) = create_channel(&req.channel_name)?;
    let mut cmdline = wide(&format!(
        "openvpn {} --msg-channel {}",
        req.options,
        raw(&channel_client) as usize
    ));
    let env = {
        let mut block: *mut c_void = ptr::null_mut();
        // SAFETY: valid token and out pointer; bInherit = FALSE as upstream.
        let ok = unsafe { CreateEnvironmentBlock(&raw mut block, primary.raw(), 0) };
        check(ok, "CreateEnvironmentBlock")?;
        EnvBlock(block)
    };
    // Only these handles reach openvpn, whatever else is inheritable in the service now.
    let mut handles = HandleList::new(vec![raw(&stdin_read), raw(&nul), raw(&channel_client)])?;
    // SAFETY: STARTUPINFOEXW is plain data; zero is its initial state.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = raw(&stdin_read);
    si.StartupInfo.hStdOutput = raw(&nul);
    si.StartupInfo.hStdError = raw(&nul);
    si.lpAttributeList = handles.ptr();
    let app = wide(req.exe_path);
    let cwd = wide(req.working_dir);
    let psa = process_sd.attributes(false);
    let tsa = thread_sd.attributes(false);
    // SAFETY: PROCESS_INFORMATION is plain data.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer refers to a live, NUL-terminated buffer or structure above;
    // `cmdline` is mutable as the API requires.
    let ok = unsafe {
        CreateProcessAsUserW(
            primary.raw(),
            app.as_ptr(),
            cmdline.as_mut_ptr(),
            &raw const psa,
            &raw const tsa,
            1,
            req.priority_class
                | CREATE_NO_WINDOW
                | CREATE_UNICODE_ENVIRONMENT
                | EXTENDED_STARTUPINFO_PRESENT,
            env.0,
            cwd.as_ptr(),
            &raw const si.StartupInfo,
            &raw mut pi,
        )
    };
    check(ok, "CreateProcessAsUser")?;
    drop(owned(pi.hThread));
    Ok(Launched {
        process: owned(pi.hProcess),
        pid: pi.dwProcessId,
        stdin: stdin_write,
        channel,
    })
}
