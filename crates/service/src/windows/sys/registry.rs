//! `HKEY_LOCAL_MACHINE`, on the `windows-registry` crate: the service's settings (spec §7),
//! the DNS and NRPT values a session writes (spec §5.6.6–§5.6.7), and the test kit's keys.
//!
//! Strings are read with `RegGetValueW` as upstream does, which the crate does not offer: the
//! settings with `RRF_NOEXPAND` and only `REG_SZ` accepted, the network values restricted to
//! `REG_SZ` (`RRF_RT_REG_SZ`). Every failure keeps its Win32 code.

use std::ptr;

use openvpnserv_settings::registry::RegValue;
use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    RegGetValueW, REG_SZ, RRF_NOEXPAND, RRF_RT_ANY, RRF_RT_REG_SZ,
};

use super::error::Win32Error;
use super::wide::{from_wide, wide};

/// Units read at most by [`Key::string`] (upstream's search-list buffers are smaller).
const STRING_UNITS: usize = 4096;

/// A `windows-registry` error as the Win32 error it wraps (an `HRESULT_FROM_WIN32`).
fn error(e: &windows_result::Error, function: &str) -> Win32Error {
    let hr = e.code().0 as u32;
    let code = if hr & 0xFFFF_0000 == 0x8007_0000 {
        hr & 0xFFFF
    } else {
        hr
    };
    Win32Error::new(code, function)
}

/// An open key under `HKEY_LOCAL_MACHINE`, closed on drop.
#[derive(Debug)]
pub struct Key(windows_registry::Key);

impl Key {
    /// Opens `HKLM\<path>` for reading (`KEY_READ`).
    pub fn open(path: &str) -> Result<Self, Win32Error> {
        windows_registry::LOCAL_MACHINE
            .options()
            .read()
            .open(path)
            .map(Self)
            .map_err(|e| error(&e, "RegOpenKeyEx"))
    }

    /// Opens `HKLM\<path>` for writing only (`KEY_WRITE`).
    pub fn open_for_writing(path: &str) -> Result<Self, Win32Error> {
        windows_registry::LOCAL_MACHINE
            .options()
            .write()
            .open(path)
            .map(Self)
            .map_err(|e| error(&e, "RegOpenKeyEx"))
    }

    /// Creates `HKLM\<path>` and its parents as needed (non-volatile), or opens it; read and
    /// write access.
    pub fn create(path: &str) -> Result<Self, Win32Error> {
        windows_registry::LOCAL_MACHINE
            .create(path)
            .map(Self)
            .map_err(|e| error(&e, "RegCreateKeyEx"))
    }

    /// Whether `HKLM\<path>` exists (can be opened for reading).
    pub fn exists(path: &str) -> bool {
        Self::open(path).is_ok()
    }

    /// Deletes `HKLM\<path>` with everything below it. `RegDeleteTreeW` on the path empties
    /// the key; the key itself then goes from its parent.
    pub fn delete_tree(path: &str) -> Result<(), Win32Error> {
        windows_registry::LOCAL_MACHINE
            .remove_tree(path)
            .map_err(|e| error(&e, "RegDeleteTree"))?;
        let (parent, leaf) = path.rsplit_once('\\').unwrap_or(("", path));
        if let Ok(p) = Self::open_for_writing(parent) {
            let _ = p.0.remove_tree(leaf);
        }
        Ok(())
    }

    /// A setting (spec §7): `REG_SZ` only, never expanded (`RegGetValueW` with `RRF_RT_ANY |
    /// RRF_NOEXPAND`, then the type checked). A missing value is [`RegValue::Missing`]; any
    /// other failure or type is [`RegValue::OtherType`].
    pub fn setting(&self, name: &str) -> RegValue {
        let name = wide(name);
        let flags = RRF_RT_ANY | RRF_NOEXPAND;
        let mut kind = 0u32;
        let mut size = 0u32;
        // SAFETY: a size query: no data buffer, valid out pointers, NUL-terminated name, a key
        // handle that `self` keeps open.
        let rc = unsafe {
            RegGetValueW(
                self.0.as_raw(),
                ptr::null(),
                name.as_ptr(),
                flags,
                &raw mut kind,
                ptr::null_mut(),
                &raw mut size,
            )
        };
        if rc == ERROR_FILE_NOT_FOUND {
            return RegValue::Missing;
        }
        if rc != ERROR_SUCCESS || kind != REG_SZ {
            return RegValue::OtherType;
        }
        match self.get(&name, flags, (size as usize).div_ceil(2) + 1) {
            Ok((REG_SZ, units)) => RegValue::Sz(from_wide(&units)),
            _ => RegValue::OtherType,
        }
    }

    /// A `REG_SZ` value as upstream reads the network settings (`RRF_RT_REG_SZ`), up to 4096
    /// units; `None` when it is missing, of another type, or longer.
    pub fn string(&self, name: &str) -> Option<String> {
        let (_, units) = self.get(&wide(name), RRF_RT_REG_SZ, STRING_UNITS).ok()?;
        Some(from_wide(&units))
    }

    /// `RegGetValueW` into a buffer of `units`: the type and the units written.
    fn get(&self, name: &[u16], flags: u32, units: usize) -> Result<(u32, Vec<u16>), u32> {
        let mut buf = vec![0u16; units];
        let mut bytes = (buf.len() * 2) as u32;
        let mut kind = 0u32;
        // SAFETY: `buf` holds `bytes` bytes and outlives the call; `name` is NUL-terminated;
        // the key handle is kept open by `self`.
        let rc = unsafe {
            RegGetValueW(
                self.0.as_raw(),
                ptr::null(),
                name.as_ptr(),
                flags,
                &raw mut kind,
                buf.as_mut_ptr().cast(),
                &raw mut bytes,
            )
        };
        if rc != ERROR_SUCCESS {
            return Err(rc);
        }
        buf.truncate((bytes as usize / 2).min(buf.len()));
        Ok((kind, buf))
    }

    /// Writes a `REG_SZ`.
    pub fn set_sz(&self, name: &str, value: &str) -> Result<(), Win32Error> {
        self.0
            .set_string(name, value)
            .map_err(|e| error(&e, "RegSetValueEx"))
    }

    /// Writes a `REG_MULTI_SZ`.
    pub fn set_multi_sz(&self, name: &str, value: &[String]) -> Result<(), Win32Error> {
        let mut units: Vec<u16> = value
            .iter()
            .flat_map(|s| s.encode_utf16().chain(Some(0)))
            .collect();
        units.push(0);
        let bytes = super::wide::le_bytes(&units);
        self.0
            .set_bytes(name, windows_registry::Type::MultiString, &bytes)
            .map_err(|e| error(&e, "RegSetValueEx"))
    }

    /// Writes a `REG_DWORD`.
    pub fn set_dword(&self, name: &str, value: u32) -> Result<(), Win32Error> {
        self.0
            .set_u32(name, value)
            .map_err(|e| error(&e, "RegSetValueEx"))
    }

    /// Deletes a value.
    pub fn delete_value(&self, name: &str) -> Result<(), Win32Error> {
        self.0
            .remove_value(name)
            .map_err(|e| error(&e, "RegDeleteValue"))
    }

    /// Names of the direct subkeys (empty when they cannot be listed).
    pub fn subkeys(&self) -> Vec<String> {
        self.0.keys().map(Iterator::collect).unwrap_or_default()
    }
}
