//! Security descriptors from SDDL (the texts are in `openvpnserv_core::windows::sddl`), SIDs
//! as text, and reading a handle's descriptor back for tests.

use std::ffi::c_void;
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS, HANDLE, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo, SDDL_REVISION_1,
    SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::PSID;
use windows_sys::Win32::Security::{
    DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    SECURITY_ATTRIBUTES,
};

use super::win32::{from_wide, wide, Win32Error};

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
    pub fn attributes(&self, inherit: bool) -> SECURITY_ATTRIBUTES {
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

/// `SECURITY_ATTRIBUTES` with the default descriptor, inheritable.
pub fn inheritable() -> SECURITY_ATTRIBUTES {
    SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: ptr::null_mut(),
        bInheritHandle: 1,
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
pub(crate) fn dacl_sddl_of(handle: HANDLE) -> Result<String, Win32Error> {
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
    if rc != ERROR_SUCCESS {
        return Err(Win32Error::new(rc, "GetSecurityInfo"));
    }
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

/// A SID as `S-1-…` text.
pub(crate) fn sid_string(sid: PSID) -> Result<String, Win32Error> {
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` points at a valid SID; `text` receives a LocalAlloc'd string.
    let ok = unsafe { ConvertSidToStringSidW(sid, &raw mut text) };
    if ok == 0 {
        return Err(Win32Error::last("ConvertSidToStringSid"));
    }
    let mut len = 0;
    // SAFETY: the string is NUL-terminated.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units precede the NUL.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated by ConvertSidToStringSidW, freed once.
    unsafe { LocalFree(text.cast::<c_void>()) };
    Ok(s)
}
