//! Who is calling and what they may touch: security descriptors from SDDL (the texts are in
//! `openvpnserv_core::windows::sddl`), tokens and impersonation (spec §3.6, §4.1 steps 2–4),
//! SIDs and account names, local group members, and starting a process with a client's token
//! and an explicit list of inherited handles (spec §4.1 steps 5–13, §11).
//!
//! Impersonation is held by an [`Impersonation`] guard whose drop calls `RevertToSelf`, so
//! every path out of a session's privileged section reverts, errors and panics included.

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, HANDLE, HLOCAL};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetLocalGroupGetMembers, LOCALGROUP_MEMBERS_INFO_0, MAX_PREFERRED_LENGTH,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo, SDDL_REVISION_1,
    SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    CreateWellKnownSid, DuplicateTokenEx, GetTokenInformation, LookupAccountNameW,
    LookupAccountSidW, RevertToSelf, SecurityImpersonation, TokenGroups, TokenPrimary, TokenUser,
    WinBuiltinAdministratorsSid, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES, TOKEN_ALL_ACCESS, TOKEN_GROUPS,
    TOKEN_INFORMATION_CLASS, TOKEN_USER,
};
use windows_sys::Win32::System::Environment::{CreateEnvironmentBlock, DestroyEnvironmentBlock};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetCurrentProcess, GetCurrentThread,
    InitializeProcThreadAttributeList, OpenProcessToken, OpenThreadToken,
    UpdateProcThreadAttribute, CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT,
    EXTENDED_STARTUPINFO_PRESENT, LPPROC_THREAD_ATTRIBUTE_LIST, PROCESS_INFORMATION,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use super::error::{check, check_code, Win32Error};
use super::kernel::{owned, raw, wide_at, Pipe, Process};
use super::wide::{from_wide, wide};

// ---------------------------------------------------------------------------------------------
// Security descriptors

/// A self-relative security descriptor made from SDDL, freed on drop.
#[derive(Debug)]
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is an immutable heap block owned by this value alone.
unsafe impl Send for SecurityDescriptor {}

impl SecurityDescriptor {
    /// Converts SDDL text.
    pub fn from_sddl(sddl: &str) -> Result<Self, Win32Error> {
        let text = wide(sddl);
        let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `text` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &raw mut sd,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(Win32Error::last("ConvertSDDL"));
        }
        Ok(Self(sd))
    }

    /// `SECURITY_ATTRIBUTES` pointing at this descriptor; valid while `self` lives.
    pub(super) fn attributes(&self, inherit: bool) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: i32::from(inherit),
        }
    }

    /// The descriptor as SDDL (owner and DACL), as the system renders it.
    pub fn to_sddl(&self) -> Result<String, Win32Error> {
        to_sddl(
            self.0,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
        )
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { LocalFree(self.0 as HLOCAL) };
    }
}

fn to_sddl(sd: PSECURITY_DESCRIPTOR, info: u32) -> Result<String, Win32Error> {
    let mut text: *mut u16 = ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `sd` is a valid descriptor; `text` receives a LocalAlloc'd string of `len` units.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            info,
            &raw mut text,
            &raw mut len,
        )
    };
    if ok == 0 {
        return Err(Win32Error::last(
            "ConvertSecurityDescriptorToStringSecurityDescriptor",
        ));
    }
    // SAFETY: the call wrote `len` units (including the NUL) at `text`.
    let s = from_wide(unsafe { std::slice::from_raw_parts(text, len as usize) });
    // SAFETY: allocated by the call above, freed once.
    unsafe { LocalFree(text as HLOCAL) };
    Ok(s)
}

/// The DACL of a kernel object (a pipe, a process) as SDDL, read back from the object.
pub(super) fn dacl_sddl_of(handle: HANDLE) -> Result<String, Win32Error> {
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `handle` is valid; only the descriptor is requested, into a LocalAlloc'd block.
    let rc = unsafe {
        GetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &raw mut sd,
        )
    };
    check_code(rc, "GetSecurityInfo")?;
    let s = to_sddl(sd, DACL_SECURITY_INFORMATION);
    // SAFETY: allocated by GetSecurityInfo, freed once.
    unsafe { LocalFree(sd as HLOCAL) };
    s
}

/// SDDL normalized by a round trip through the system (aliases such as `SY` for
/// `S-1-5-18`), so that an intended text compares with what an object reports.
pub fn normalize_dacl_sddl(sddl: &str) -> Result<String, Win32Error> {
    let sd = SecurityDescriptor::from_sddl(sddl)?;
    to_sddl(sd.0, DACL_SECURITY_INFORMATION)
}

// ---------------------------------------------------------------------------------------------
// SIDs and accounts

/// A SID as `S-1-…` text.
fn sid_string(sid: PSID) -> Result<String, Win32Error> {
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` points at a valid SID; `text` receives a LocalAlloc'd string.
    let ok = unsafe { ConvertSidToStringSidW(sid, &raw mut text) };
    if ok == 0 {
        return Err(Win32Error::last("ConvertSidToStringSid"));
    }
    // SAFETY: the system returned a NUL-terminated string.
    let s = unsafe { wide_at(text) };
    // SAFETY: allocated by ConvertSidToStringSidW, freed once.
    unsafe { LocalFree(text.cast::<c_void>()) };
    Ok(s)
}

/// A SID copied out as bytes (revision, count, authority, sub-authorities).
///
/// # Safety
/// `sid` points at a valid SID.
unsafe fn sid_bytes(sid: PSID) -> Vec<u8> {
    // SAFETY: byte 1 of a valid SID is its sub-authority count.
    let count = unsafe { *sid.cast::<u8>().add(1) } as usize;
    let len = 8 + 4 * count;
    // SAFETY: a SID is exactly `len` bytes long.
    unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), len) }.to_vec()
}

/// `LookupAccountSidW` of a SID given as bytes: `(name, domain)`.
pub fn account_of(sid: &[u8]) -> Result<(String, String), Win32Error> {
    let mut sid = sid.to_vec();
    let mut name = [0u16; 256];
    let mut domain = [0u16; 256];
    let (mut nlen, mut dlen) = (256u32, 256u32);
    let mut kind = 0;
    // SAFETY: buffers and their lengths match; `sid` holds a SID copied from the system.
    let ok = unsafe {
        LookupAccountSidW(
            ptr::null(),
            sid.as_mut_ptr().cast(),
            name.as_mut_ptr(),
            &raw mut nlen,
            domain.as_mut_ptr(),
            &raw mut dlen,
            &raw mut kind,
        )
    };
    check(ok, "LookupAccountSid")?;
    Ok((from_wide(&name), from_wide(&domain)))
}

/// `LookupAccountNameW`: the SID of an account or group name, as bytes.
pub fn sid_of_name(name: &str) -> Option<Vec<u8>> {
    let wname = wide(name);
    let mut sid = [0u8; 68];
    let mut sid_len = sid.len() as u32;
    let mut domain = [0u16; 256];
    let mut dlen = 256u32;
    let mut kind = 0;
    // SAFETY: buffers and their lengths match.
    let ok = unsafe {
        LookupAccountNameW(
            ptr::null(),
            wname.as_ptr(),
            sid.as_mut_ptr().cast(),
            &raw mut sid_len,
            domain.as_mut_ptr(),
            &raw mut dlen,
            &raw mut kind,
        )
    };
    // SAFETY: on success `sid` holds a valid SID.
    (ok != 0).then(|| unsafe { sid_bytes(sid.as_mut_ptr().cast()) })
}

/// The SID of BUILTIN\Administrators (S-1-5-32-544), as bytes.
pub fn administrators_sid() -> Option<Vec<u8>> {
    let mut sid = [0u8; 68];
    let mut len = sid.len() as u32;
    // SAFETY: `sid` holds `len` bytes.
    let ok = unsafe {
        CreateWellKnownSid(
            WinBuiltinAdministratorsSid,
            ptr::null_mut(),
            sid.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    // SAFETY: on success `sid` holds a valid SID.
    (ok != 0).then(|| unsafe { sid_bytes(sid.as_mut_ptr().cast()) })
}

/// Direct members of a local group (`NetLocalGroupGetMembers`, level 0, paged), as SID bytes.
pub fn local_group_members(group: &str) -> Vec<Vec<u8>> {
    let wgroup = wide(group);
    let mut members = Vec::new();
    let mut resume: usize = 0;
    for _ in 0..100 {
        let mut buf: *mut u8 = ptr::null_mut();
        let (mut read, mut total) = (0u32, 0u32);
        // SAFETY: out pointers are valid; `buf` receives a NetApi buffer freed below.
        let rc = unsafe {
            NetLocalGroupGetMembers(
                ptr::null(),
                wgroup.as_ptr(),
                0,
                &raw mut buf,
                MAX_PREFERRED_LENGTH,
                &raw mut read,
                &raw mut total,
                &raw mut resume,
            )
        };
        if !buf.is_null() {
            // SAFETY: the buffer holds `read` LOCALGROUP_MEMBERS_INFO_0 entries.
            // NetApi buffers are allocated suitably aligned for the structures they hold.
            #[allow(clippy::cast_ptr_alignment)]
            let entries = unsafe {
                std::slice::from_raw_parts(buf.cast::<LOCALGROUP_MEMBERS_INFO_0>(), read as usize)
            };
            // SAFETY: every entry's SID points into the buffer, which is still alive.
            members.extend(entries.iter().map(|e| unsafe { sid_bytes(e.lgrmi0_sid) }));
            // SAFETY: allocated by the call above, freed once.
            unsafe { NetApiBufferFree(buf.cast::<c_void>()) };
        }
        // ERROR_MORE_DATA (234) means another page follows.
        if rc != 234 {
            break;
        }
    }
    members
}

// ---------------------------------------------------------------------------------------------
// Tokens and impersonation

/// Impersonation of a pipe client on this thread; reverted on drop.
#[derive(Debug)]
pub struct Impersonation(());

impl Impersonation {
    /// `ImpersonateNamedPipeClient`.
    pub fn start(pipe: &Pipe) -> Result<Self, Win32Error> {
        pipe.impersonate_client()?;
        Ok(Self(()))
    }

    /// Reverts now, reporting failure (the caller must then not go on: spec §4.1 step 14).
    pub fn revert(self) -> Result<(), Win32Error> {
        std::mem::forget(self);
        // SAFETY: no preconditions.
        check(unsafe { RevertToSelf() }, "RevertToSelf")
    }
}

impl Drop for Impersonation {
    fn drop(&mut self) {
        // SAFETY: no preconditions. A failure here cannot be reported; the explicit
        // `revert` is used on the success path.
        unsafe { RevertToSelf() };
    }
}

/// Reads a variable-size token information class.
fn token_info(
    token: HANDLE,
    class: TOKEN_INFORMATION_CLASS,
    label: &str,
) -> Result<Vec<u64>, Win32Error> {
    let mut size = 0u32;
    // SAFETY: a size query with no buffer.
    unsafe { GetTokenInformation(token, class, ptr::null_mut(), 0, &raw mut size) };
    // u64 storage keeps the structures (which hold pointers) aligned.
    let mut buf = vec![0u64; (size as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds at least `size` bytes.
    let ok = unsafe {
        GetTokenInformation(
            token,
            class,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &raw mut size,
        )
    };
    check(ok, label)?;
    Ok(buf)
}

/// A token handle.
#[derive(Debug)]
pub struct Token(OwnedHandle);

impl Token {
    /// The service's own process token.
    pub fn process() -> Result<Self, Win32Error> {
        let mut h: HANDLE = ptr::null_mut();
        // SAFETY: valid pseudo handle and out pointer.
        let ok = unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &raw mut h) };
        check(ok, "OpenProcessToken")?;
        Ok(Self(owned(h)))
    }

    /// The impersonation token of this thread.
    pub fn thread() -> Result<Self, Win32Error> {
        let mut h: HANDLE = ptr::null_mut();
        // SAFETY: valid pseudo handle and out pointer; OpenAsSelf = FALSE as upstream.
        let ok = unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_ALL_ACCESS, 0, &raw mut h) };
        check(ok, "OpenThreadToken")?;
        Ok(Self(owned(h)))
    }

    fn raw(&self) -> HANDLE {
        raw(&self.0)
    }

    /// A primary token for `CreateProcessAsUserW`.
    pub fn duplicate_primary(&self) -> Result<Self, Win32Error> {
        let mut h: HANDLE = ptr::null_mut();
        // SAFETY: valid token and out pointer.
        let ok = unsafe {
            DuplicateTokenEx(
                self.raw(),
                TOKEN_ALL_ACCESS,
                ptr::null(),
                SecurityImpersonation,
                TokenPrimary,
                &raw mut h,
            )
        };
        check(ok, "DuplicateTokenEx")?;
        Ok(Self(owned(h)))
    }

    /// The token's user (`label` names the failing step in a reply).
    pub fn user(&self, label: &str) -> Result<User, Win32Error> {
        let buf = token_info(self.raw(), TokenUser, label)?;
        // SAFETY: the buffer holds a TOKEN_USER whose SID points inside the buffer.
        let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
        Ok(User {
            sid: sid_string(user.User.Sid)?,
            // SAFETY: as above; the buffer is still alive.
            sid_bytes: unsafe { sid_bytes(user.User.Sid) },
        })
    }

    /// Every group SID in the token, as bytes (attributes are not looked at, as upstream: a
    /// UAC-filtered administrator counts, spec §11).
    pub fn group_sids(&self) -> Result<Vec<Vec<u8>>, Win32Error> {
        let buf = token_info(
            self.raw(),
            TokenGroups,
            "GetTokenInformation (impersonation token)",
        )?;
        // SAFETY: the buffer holds a TOKEN_GROUPS with `GroupCount` entries, SIDs inside it.
        let groups = unsafe { &*buf.as_ptr().cast::<TOKEN_GROUPS>() };
        // SAFETY: the array has `GroupCount` entries.
        let entries = unsafe {
            std::slice::from_raw_parts(groups.Groups.as_ptr(), groups.GroupCount as usize)
        };
        // SAFETY: every entry's SID points into the buffer, which is still alive.
        Ok(entries
            .iter()
            .map(|g| unsafe { sid_bytes(g.Sid) })
            .collect())
    }
}

/// A token's user, read once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The SID as `S-1-…` text.
    pub sid: String,
    /// The SID's bytes.
    pub sid_bytes: Vec<u8>,
}

impl User {
    /// `(name, domain)` (`LookupAccountSidW`).
    pub fn account(&self) -> Result<(String, String), Win32Error> {
        account_of(&self.sid_bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// Starting a process with a token

/// What [`spawn_as_user`] starts.
pub struct Spawn<'a> {
    /// A primary token (the client's).
    pub token: &'a Token,
    /// `lpApplicationName`.
    pub exe: &'a str,
    /// The whole command line.
    pub cmdline: &'a str,
    /// The working directory.
    pub cwd: &'a str,
    /// A priority class flag, or 0.
    pub priority_class: u32,
    /// Standard input, output and error.
    pub stdio: [&'a OwnedHandle; 3],
    /// The only handles the child inherits (each must be inheritable).
    pub inherit: &'a [&'a OwnedHandle],
    /// The new process's descriptor.
    pub process_sd: &'a SecurityDescriptor,
    /// Its first thread's descriptor.
    pub thread_sd: &'a SecurityDescriptor,
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

/// A user's environment block, destroyed on drop.
struct EnvBlock(*mut c_void);

impl EnvBlock {
    fn new(token: &Token) -> Result<Self, Win32Error> {
        let mut block: *mut c_void = ptr::null_mut();
        // SAFETY: valid token and out pointer; bInherit = FALSE as upstream.
        let ok = unsafe { CreateEnvironmentBlock(&raw mut block, token.raw(), 0) };
        check(ok, "CreateEnvironmentBlock")?;
        Ok(Self(block))
    }
}

impl Drop for EnvBlock {
    fn drop(&mut self) {
        // SAFETY: created by CreateEnvironmentBlock, destroyed once.
        unsafe { DestroyEnvironmentBlock(self.0) };
    }
}

/// `CreateProcessAsUserW` with the user's environment, no window, the given stdio and only
/// the listed handles inherited.
pub fn spawn_as_user(req: &Spawn<'_>) -> Result<Process, Win32Error> {
    let env = EnvBlock::new(req.token)?;
    let mut handles = HandleList::new(req.inherit.iter().map(|h| raw(*h)).collect())?;
    // SAFETY: STARTUPINFOEXW is plain data; zero is its initial state.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = req.stdio[0].as_raw_handle() as HANDLE;
    si.StartupInfo.hStdOutput = req.stdio[1].as_raw_handle() as HANDLE;
    si.StartupInfo.hStdError = req.stdio[2].as_raw_handle() as HANDLE;
    si.lpAttributeList = handles.ptr();
    let app = wide(req.exe);
    let mut cmdline = wide(req.cmdline);
    let cwd = wide(req.cwd);
    let psa = req.process_sd.attributes(false);
    let tsa = req.thread_sd.attributes(false);
    // SAFETY: PROCESS_INFORMATION is plain data, filled by the call.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer refers to a live, NUL-terminated buffer or structure above;
    // `cmdline` is mutable as the API requires.
    let ok = unsafe {
        CreateProcessAsUserW(
            req.token.raw(),
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
    Ok(Process::from_information(&pi))
}
