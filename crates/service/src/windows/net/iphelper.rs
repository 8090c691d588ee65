//! IP Helper: interfaces by alias, index, LUID and GUID; unicast addresses; routes;
//! neighbour caches; interface metrics and MTU (spec §5.6.1–§5.6.5). Results are Win32 codes.

use openvpnserv_core::windows::net::{AddressRow, Code, RouteRow};
use uuid::Uuid;

use crate::windows::sys::network::{self, InterfaceRow};

pub(super) fn alias_to_luid(alias: &str) -> Result<u64, Code> {
    network::alias_to_luid(alias)
}

pub(super) fn index_to_luid(index: u32) -> Result<u64, Code> {
    network::index_to_luid(index)
}

/// The interface GUID as `StringFromIID` renders it: `{XXXXXXXX-XXXX-…}`, upper case.
pub(super) fn interface_guid(alias: &str) -> Result<String, Code> {
    let luid = network::alias_to_luid(alias)?;
    network::luid_to_guid(luid).map(|g| guid_text(&g))
}

fn guid_text(g: &Uuid) -> String {
    format!("{:X}", g.braced())
}

pub(super) fn add_address(row: &AddressRow) -> Code {
    network::add_address(row)
}

pub(super) fn del_address(row: &AddressRow) -> Code {
    network::del_address(row)
}

pub(super) fn add_route(row: &RouteRow) -> Code {
    network::add_route(row)
}

pub(super) fn del_route(row: &RouteRow) -> Code {
    network::del_route(row)
}

pub(super) fn flush_neighbors(family: i16, index: u32) -> Code {
    network::flush_neighbors(family, index)
}

pub(super) fn interface_metric(index: u32, family: i16) -> Result<u32, Code> {
    InterfaceRow::get(index, family).map(|row| row.metric())
}

pub(super) fn set_interface_metric(index: u32, family: i16, metric: u32) -> Code {
    match InterfaceRow::get(index, family) {
        Ok(mut row) => {
            row.set_metric(metric);
            row.apply()
        }
        Err(e) => e,
    }
}

pub(super) fn set_mtu(index: u32, family: i16, mtu: u32) -> Code {
    match InterfaceRow::get(index, family) {
        Ok(mut row) => {
            row.set_mtu(mtu);
            row.apply()
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_is_braced_upper_case() {
        let g = Uuid::from_fields(
            0x2f66_0d7e,
            0x6a37,
            0x11e6,
            &[0xa1, 0x81, 0x00, 0x1e, 0x8c, 0x6e, 0x04, 0xa2],
        );
        assert_eq!(guid_text(&g), "{2F660D7E-6A37-11E6-A181-001E8C6E04A2}");
    }

    #[test]
    fn unknown_alias_is_an_error_code() {
        assert!(alias_to_luid("no such adapter").is_err());
    }
}
