//! Reading `HKLM\SOFTWARE\OpenVPN<instance>` (spec §7). The rules live in
//! `openvpnserv_settings::registry`; this module only fetches values.

use std::ptr;

use openvpnserv_settings::registry::{self, RegValue, RegistryError};
use openvpnserv_settings::{Instance, Settings};
use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegGetValueW, RegOpenKeyExW, HKEY, HKEY_LOCAL_MACHINE, KEY_READ, REG_SZ,
    RRF_NOEXPAND, RRF_RT_ANY,
};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// An open registry key, closed on drop.
struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: `self.0` was opened by `RegOpenKeyExW` and is closed exactly once.
        unsafe { RegCloseKey(self.0) };
    }
}

impl Key {
    fn open(subkey: &str) -> Option<Key> {
        let name = wide(subkey);
        let mut hkey: HKEY = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `hkey` is a valid out pointer.
        let rc = unsafe {
            RegOpenKeyExW(
                HKEY_LOCAL_MACHINE,
                name.as_ptr(),
                0,
                KEY_READ,
                &raw mut hkey,
            )
        };
        (rc == ERROR_SUCCESS).then_some(Key(hkey))
    }

    /// Reads a value; `REG_SZ` only, as upstream (`RRF_RT_REG_SZ`).
    fn value(&self, name: &str) -> RegValue {
        let name = wide(name);
        let mut kind = 0u32;
        let mut size = 0u32;
        // SAFETY: a size query: no data buffer, valid out pointers, NUL-terminated name.
        let rc = unsafe {
            RegGetValueW(
                self.0,
                ptr::null(),
                name.as_ptr(),
                RRF_RT_ANY | RRF_NOEXPAND,
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
        let mut buf = vec![0u16; (size as usize).div_ceil(2) + 1];
        let mut bytes = (buf.len() * 2) as u32;
        // SAFETY: `buf` holds `bytes` bytes and outlives the call.
        let rc = unsafe {
            RegGetValueW(
                self.0,
                ptr::null(),
                name.as_ptr(),
                RRF_RT_ANY | RRF_NOEXPAND,
                &raw mut kind,
                buf.as_mut_ptr().cast(),
                &raw mut bytes,
            )
        };
        if rc != ERROR_SUCCESS || kind != REG_SZ {
            return RegValue::OtherType;
        }
        let units = &buf[..(bytes as usize / 2).min(buf.len())];
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        RegValue::Sz(String::from_utf16_lossy(&units[..end]))
    }
}

/// Loads the settings of `instance` from the registry.
pub fn load(instance: &Instance) -> Result<Settings, RegistryError> {
    let Some(key) = Key::open(&instance.registry_key()) else {
        return Err(RegistryError::KeyMissing {
            key: instance.registry_key(),
        });
    };
    registry::read(instance, |name| key.value(name))
}
