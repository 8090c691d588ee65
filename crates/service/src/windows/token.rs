//! The client's identity, from its token while impersonating it (spec §3.6, §4.1 steps 2–4).
//!
//! Impersonation is held by an [`Impersonation`] guard whose drop calls `RevertToSelf`, so
//! every path out of a session's privileged section reverts, errors and panics included.

use std::ffi::c_void;
use std::os::windows::io::OwnedHandle;
use std::ptr;

use openvpnserv_policy::Membership;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetLocalGroupGetMembers, LOCALGROUP_MEMBERS_INFO_0, MAX_PREFERRED_LENGTH,
};
use windows_sys::Win32::Security::PSID;
use windows_sys::Win32::Security::{
    CreateWellKnownSid, DuplicateTokenEx, GetTokenInformation, LookupAccountNameW,
    LookupAccountSidW, RevertToSelf, SecurityImpersonation, TokenGroups, TokenPrimary, TokenUser,
    WinBuiltinAdministratorsSid, TOKEN_ALL_ACCESS, TOKEN_GROUPS, TOKEN_INFORMATION_CLASS,
    TOKEN_USER,
};
use windows_sys::Win32::System::Pipes::ImpersonateNamedPipeClient;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentThread, OpenProcessToken, OpenThreadToken,
};

use super::security::sid_string;
use super::win32::{check, from_wide, owned, raw, wide, Win32Error};

/// Impersonation of a pipe client on this thread; reverted on drop.
#[derive(Debug)]
pub struct Impersonation(());

impl Impersonation {
    /// `ImpersonateNamedPipeClient`.
    pub fn start(pipe: &super::pipe::Pipe) -> Result<Self, Win32Error> {
        // SAFETY: `pipe` is a connected server pipe handle.
        let ok = unsafe { ImpersonateNamedPipeClient(pipe.raw()) };
        check(ok, "ImpersonateNamedPipeClient")?;
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

    /// The raw handle.
    pub fn raw(&self) -> HANDLE {
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
            sid_bytes: sid_bytes(user.User.Sid),
        })
    }

    /// Every group SID in the token (attributes are not looked at, as upstream: a
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
        Ok(entries.iter().map(|g| sid_bytes(g.Sid)).collect())
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
        let mut sid = self.sid_bytes.clone();
        lookup_sid(sid.as_mut_ptr().cast())
    }
}

/// A SID copied out as bytes (revision, count, authority, sub-authorities).
fn sid_bytes(sid: PSID) -> Vec<u8> {
    // SAFETY: `sid` points at a valid SID: byte 1 is the sub-authority count.
    let count = unsafe { *sid.cast::<u8>().add(1) } as usize;
    let len = 8 + 4 * count;
    // SAFETY: a SID is exactly `len` bytes long.
    unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), len) }.to_vec()
}

/// `LookupAccountSidW`: (name, domain).
fn lookup_sid(sid: PSID) -> Result<(String, String), Win32Error> {
    let mut name = [0u16; 256];
    let mut domain = [0u16; 256];
    let (mut nlen, mut dlen) = (256u32, 256u32);
    let mut kind = 0;
    // SAFETY: buffers and their lengths match; `sid` is valid.
    let ok = unsafe {
        LookupAccountSidW(
            ptr::null(),
            sid,
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

/// `LookupAccountNameW`: the SID of a name.
fn lookup_name(name: &str) -> Option<Vec<u8>> {
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
    (ok != 0).then(|| sid_bytes(sid.as_mut_ptr().cast()))
}

/// The local name of BUILTIN\Administrators (S-1-5-32-544), or `Administrators`.
pub fn administrators_group_name() -> String {
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
    if ok != 0 {
        if let Ok((name, _)) = lookup_sid(sid.as_mut_ptr().cast()) {
            if !name.is_empty() {
                return name;
            }
        }
    }
    "Administrators".to_owned()
}

/// Group membership from a token's groups, then from the local group's direct members.
pub struct TokenMembership {
    user: Vec<u8>,
    groups: Vec<Vec<u8>>,
}

impl TokenMembership {
    /// Membership of `user`, the user of the impersonation `token`.
    pub fn new(user: &User, token: &Token) -> Result<Self, Win32Error> {
        Ok(Self {
            user: user.sid_bytes.clone(),
            groups: token.group_sids()?,
        })
    }
}

impl Membership for TokenMembership {
    fn is_member(&self, group: &str) -> bool {
        if let Some(sid) = lookup_name(group) {
            if self.groups.contains(&sid) {
                return true;
            }
        }
        local_group_members(group).contains(&self.user)
    }
}

/// Direct members of a local group (`NetLocalGroupGetMembers`, level 0, paged).
fn local_group_members(group: &str) -> Vec<Vec<u8>> {
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
            members.extend(entries.iter().map(|e| sid_bytes(e.lgrmi0_sid)));
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
