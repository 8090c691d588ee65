//! Replies from the service to its client (spec §4.5, §6.1, §6.2).
//!
//! UTF-16LE text without a terminator, one transport message each:
//! `0x00000000\n0x<pid %08x>\nProcess ID` on success, `0x<code %08x>\n<function>\n<system text>`
//! on error. Upstream builds error replies with `FormatMessageW`, which under Wine turns every
//! LF into CRLF (spec §12), so the parser accepts both line ends.

use crate::codes::ERROR_OPENVPN_STARTUP;
use crate::utf16;

/// OpenVPN-GUI reads at most this many UTF-16 units per message; longer replies are cut here.
pub const MAX_REPLY_UNITS: usize = 511;

/// A reply as the service sends it and as a client understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// openvpn was started with this process id.
    Pid(u32),
    /// Something failed.
    Error {
        /// Win32-style error code (see [`crate::codes`]).
        code: u32,
        /// The failing function or a description (line 2).
        function: String,
        /// The system's text for `code` (line 3); empty where there is none.
        text: String,
    },
}

/// Why reply bytes could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyParseError {
    /// Not valid UTF-16LE.
    #[error("reply is not valid UTF-16 text")]
    NotUtf16,
    /// The first line is not `0x` and a hexadecimal code.
    #[error("reply does not start with a 0x-prefixed hexadecimal code: {0:?}")]
    BadCode(String),
    /// A success reply without a usable process id.
    #[error("success reply without a valid process id: {0:?}")]
    BadPid(String),
}

impl Reply {
    /// An error reply.
    pub fn error(code: u32, function: impl Into<String>, text: impl Into<String>) -> Self {
        Self::Error {
            code,
            function: function.into(),
            text: text.into(),
        }
    }

    /// The reply sent when openvpn ends with a non-zero exit code (spec §6.3).
    pub fn exit_error(exit_code: u32) -> Self {
        Self::error(
            ERROR_OPENVPN_STARTUP,
            format!("OpenVPN exited with error: exit code = {exit_code}"),
            "",
        )
    }

    /// The reply as text, with LF line ends.
    pub fn to_text(&self) -> String {
        match self {
            Reply::Pid(pid) => format!("0x00000000\n0x{pid:08x}\nProcess ID"),
            Reply::Error {
                code,
                function,
                text,
            } => format!("0x{code:08x}\n{function}\n{text}"),
        }
    }

    /// Encodes as UTF-16LE with no terminator, cut to [`MAX_REPLY_UNITS`] units at a
    /// character boundary so that the GUI reads it in one piece.
    pub fn encode(&self) -> Vec<u8> {
        let text = self.to_text();
        let mut units = 0;
        let mut end = text.len();
        for (at, ch) in text.char_indices() {
            if units + ch.len_utf16() > MAX_REPLY_UNITS {
                end = at;
                break;
            }
            units += ch.len_utf16();
        }
        let mut out = Vec::with_capacity(units * 2);
        utf16::push_str(&mut out, &text[..end]);
        out
    }

    /// Parses reply bytes the way OpenVPN-GUI does: a code on line 1; for code 0, a non-zero
    /// hexadecimal PID on line 2 followed by `Process ID`.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReplyParseError> {
        let text =
            String::from_utf16(&utf16::units(bytes)).map_err(|_| ReplyParseError::NotUtf16)?;
        Self::parse(&text)
    }

    /// Parses reply text (LF or CRLF line ends).
    pub fn parse(text: &str) -> Result<Self, ReplyParseError> {
        let mut lines = text.splitn(3, '\n');
        let first = lines.next().unwrap_or_default();
        let code = parse_hex(first).ok_or_else(|| ReplyParseError::BadCode(first.to_owned()))?;
        let second = lines.next().unwrap_or_default();
        let rest = lines.next().unwrap_or_default();
        if code == 0 {
            let pid = parse_hex(second)
                .filter(|&pid| pid != 0 && rest.trim_end() == "Process ID")
                .ok_or_else(|| ReplyParseError::BadPid(text.to_owned()))?;
            return Ok(Reply::Pid(pid));
        }
        Ok(Reply::Error {
            code,
            function: second.trim_end_matches('\r').to_owned(),
            text: rest.trim_end_matches(['\r', '\n']).to_owned(),
        })
    }
}

/// `0x` followed by one to eight hexadecimal digits, with an optional trailing CR.
fn parse_hex(line: &str) -> Option<u32> {
    let digits = line.trim_end_matches('\r').strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{ERROR_CANT_WAIT, ERROR_STARTUP_DATA};

    fn text_of(bytes: &[u8]) -> String {
        String::from_utf16(&utf16::units(bytes)).unwrap()
    }

    #[test]
    fn pid_reply_is_64_bytes_lowercase() {
        let bytes = Reply::Pid(0x1dc).encode();
        assert_eq!(bytes.len(), 64);
        assert_eq!(text_of(&bytes), "0x00000000\n0x000001dc\nProcess ID");
        assert_eq!(
            text_of(&Reply::Pid(0x00AB_CDEF).encode()),
            "0x00000000\n0x00abcdef\nProcess ID"
        );
    }

    #[test]
    fn error_reply_has_empty_third_line() {
        let reply = Reply::error(ERROR_STARTUP_DATA, "GetStartupData (timeout)", "");
        assert_eq!(
            text_of(&reply.encode()),
            "0x20000001\nGetStartupData (timeout)\n"
        );
    }

    #[test]
    fn exit_error_text() {
        assert_eq!(
            Reply::exit_error(3).to_text(),
            "0x20000000\nOpenVPN exited with error: exit code = 3\n"
        );
    }

    #[test]
    fn parses_both_line_ends() {
        // What upstream sent under Wine (spec §12).
        let wine = "0x20000001\r\nGetStartupData\r\n(null)";
        assert_eq!(
            Reply::parse(wine).unwrap(),
            Reply::error(ERROR_STARTUP_DATA, "GetStartupData", "(null)")
        );
        let busy = "0x0000022a\r\nToo many concurrent clients\r\n(null)";
        assert!(matches!(
            Reply::parse(busy).unwrap(),
            Reply::Error {
                code: ERROR_CANT_WAIT,
                ..
            }
        ));
        let exit = "0x20000000\r\nOpenVPN exited with error: exit code = 3\r\n";
        assert_eq!(Reply::parse(exit).unwrap(), Reply::exit_error(3));
        assert_eq!(
            Reply::parse("0x00000000\n0x000001dc\nProcess ID").unwrap(),
            Reply::Pid(0x1dc)
        );
    }

    #[test]
    fn system_text_keeps_inner_lines() {
        let reply = Reply::parse(
            "0x00000002\nCreateProcessAsUser\nThe system cannot find the file specified.\r\n",
        )
        .unwrap();
        assert_eq!(
            reply,
            Reply::error(
                2,
                "CreateProcessAsUser",
                "The system cannot find the file specified."
            )
        );
    }

    #[test]
    fn bad_replies() {
        assert!(matches!(Reply::parse(""), Err(ReplyParseError::BadCode(_))));
        assert!(matches!(
            Reply::parse("hello"),
            Err(ReplyParseError::BadCode(_))
        ));
        assert!(matches!(
            Reply::parse("0x123456789\n"),
            Err(ReplyParseError::BadCode(_))
        ));
        assert!(matches!(
            Reply::parse("0x00000000\n0x00000000\nProcess ID"),
            Err(ReplyParseError::BadPid(_))
        ));
        assert!(matches!(
            Reply::parse("0x00000000\n0x10\nnot it"),
            Err(ReplyParseError::BadPid(_))
        ));
        assert_eq!(Reply::decode(&[0x00, 0xD8]), Err(ReplyParseError::NotUtf16));
    }

    #[test]
    fn long_replies_are_cut_at_a_character() {
        let long = "é".repeat(600) + "😀";
        let bytes = Reply::error(1, long, "").encode();
        assert!(bytes.len() / 2 <= MAX_REPLY_UNITS);
        let text = text_of(&bytes);
        assert!(text.starts_with("0x00000001\né"));
    }
}
