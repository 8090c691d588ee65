//! UTF-16 for the wide (`…W`) APIs: the one place where text becomes a NUL-terminated unit
//! buffer and back.

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// Text up to the first NUL of a UTF-16 buffer (all of it when there is none).
pub fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&u| u == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// UTF-16 units as the little-endian bytes a registry value or a reply carries.
pub fn le_bytes(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_stops_at_the_terminator() {
        let w = wide("tun0 é");
        assert_eq!(w.last(), Some(&0));
        assert_eq!(from_wide(&w), "tun0 é");
        assert_eq!(from_wide(&[0x61, 0x62]), "ab");
        assert_eq!(le_bytes(&[0x0061, 0x1234]), [0x61, 0, 0x34, 0x12]);
    }
}
