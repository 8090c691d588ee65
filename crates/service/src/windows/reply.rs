//! Error replies built the way upstream builds them (spec §6.1, §12): the pattern
//! `0x%1!08x!\n%2!s!\n%3!s!` through `FormatMessageW`, so the bytes are whatever the system
//! makes of it (Wine turns each LF into CRLF). PID replies are plain text (spec §4.5).

use openvpnserv_proto::codes::{ERROR_OPENVPN_STARTUP, ERROR_STARTUP_DATA};
use openvpnserv_proto::reply::MAX_REPLY_UNITS;

use super::sys::kernel::{format_reply, system_text};
use super::sys::wide::le_bytes;

/// What is sent when formatting itself fails.
const FALLBACK: &str = "0xffffffff\nFormatMessage failed\nCould not return result";

fn encode(units: &[u16]) -> Vec<u8> {
    let mut end = units.len().min(MAX_REPLY_UNITS);
    // Never cut a surrogate pair in two.
    if end < units.len() && end > 0 && (0xD800..0xDC00).contains(&units[end - 1]) {
        end -= 1;
    }
    le_bytes(&units[..end])
}

/// The bytes of an error reply. Line 3 is the system's text for `code`; the service's own
/// codes have none, so the reply ends with the line break after `function`.
pub fn error_reply(code: u32, function: &str) -> Vec<u8> {
    let text = if code == ERROR_OPENVPN_STARTUP || code == ERROR_STARTUP_DATA {
        String::new()
    } else {
        system_text(code)
    };
    match format_reply(code, function, &text) {
        Some(units) => encode(&units),
        None => encode(&FALLBACK.encode_utf16().collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvpnserv_proto::Reply;

    fn text(bytes: &[u8]) -> String {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    }

    /// The bytes are whatever `FormatMessageW` makes of upstream's pattern: LF on Windows,
    /// CRLF under Wine (spec §12); both parse to the same reply.
    #[test]
    fn startup_error_has_an_empty_third_line() {
        let bytes = error_reply(ERROR_STARTUP_DATA, "GetStartupData (timeout)");
        let t = text(&bytes);
        assert!(
            t == "0x20000001\nGetStartupData (timeout)\n"
                || t == "0x20000001\r\nGetStartupData (timeout)\r\n",
            "{t:?}"
        );
        assert_eq!(
            Reply::decode(&bytes).unwrap(),
            Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "")
        );
    }

    #[test]
    fn win32_error_carries_the_system_text() {
        let reply = Reply::decode(&error_reply(2, "CreateProcessAsUser")).unwrap();
        match reply {
            Reply::Error {
                code,
                function,
                text,
            } => {
                assert_eq!((code, function.as_str()), (2, "CreateProcessAsUser"));
                assert_eq!(text, system_text(2).trim_end());
                assert!(!text.is_empty());
            }
            Reply::Pid(_) => panic!("not an error reply"),
        }
    }

    #[test]
    fn long_labels_are_cut_to_what_the_gui_reads() {
        let bytes = error_reply(ERROR_STARTUP_DATA, &"x".repeat(2000));
        assert_eq!(bytes.len(), MAX_REPLY_UNITS * 2);
    }
}
