//! UTF-16LE helpers shared by the startup message and the replies.

/// Appends `s` as UTF-16LE code units (no terminator).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// Reads little-endian code units; a trailing odd byte is ignored, as upstream does.
pub(crate) fn units(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}
