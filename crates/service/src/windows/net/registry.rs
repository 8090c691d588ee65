//! The [`Registry`] half of the network layer: the DNS search lists, name servers and NRPT
//! rules a session writes under `HKLM` (spec §5.6.6–§5.6.7). Results are Win32 codes.

use openvpnserv_core::windows::net::{Code, Registry};
use openvpnserv_proto::codes::NO_ERROR;

use super::RealNet;
use crate::windows::sys::registry::Key;
use crate::windows::sys::Win32Error;

fn code(r: Result<(), Win32Error>) -> Code {
    r.err().map_or(NO_ERROR, |e| e.code)
}

/// Creates the key (as needed) and writes one value.
fn write(key: &str, set: impl FnOnce(&Key) -> Result<(), Win32Error>) -> Code {
    code(Key::create(key).and_then(|k| set(&k)))
}

impl Registry for RealNet {
    fn get_sz(&mut self, key: &str, name: &str) -> Option<String> {
        Key::open(key).ok()?.string(name)
    }

    fn set_sz(&mut self, key: &str, name: &str, value: &str) -> Code {
        write(key, |k| k.set_sz(name, value))
    }

    fn set_multi_sz(&mut self, key: &str, name: &str, value: &[String]) -> Code {
        write(key, |k| k.set_multi_sz(name, value))
    }

    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Code {
        write(key, |k| k.set_dword(name, value))
    }

    fn delete_value(&mut self, key: &str, name: &str) -> Code {
        code(Key::open_for_writing(key).and_then(|k| k.delete_value(name)))
    }

    fn key_exists(&mut self, key: &str) -> bool {
        Key::exists(key)
    }

    fn create_key(&mut self, key: &str) -> Code {
        code(Key::create(key).map(drop))
    }

    fn subkeys(&mut self, key: &str) -> Vec<String> {
        Key::open(key).map(|k| k.subkeys()).unwrap_or_default()
    }

    fn delete_tree(&mut self, key: &str) -> Code {
        code(Key::delete_tree(key))
    }
}
