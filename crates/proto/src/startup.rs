//! The startup message a client sends first (spec §2).
//!
//! One transport message of UTF-16LE text: three NUL-terminated strings, the working
//! directory, the openvpn options and the text for openvpn's stdin.

use crate::codes::ERROR_STARTUP_DATA;
use crate::utf16;

/// Largest accepted message, in UTF-16 code units (spec §2.2 step 2, upstream 2.7.0+).
pub const MAX_UNITS: usize = 4096;
/// Largest accepted message in bytes; a transport may read this many plus one to detect more.
pub const MAX_BYTES: usize = MAX_UNITS * 2 + 1;

/// The function label upstream puts on every startup-data error reply.
pub const FUNCTION_LABEL: &str = "GetStartupData";
/// The label of the reply to a client that stayed silent (spec §2.3).
pub const TIMEOUT_LABEL: &str = "GetStartupData (timeout)";

/// A decoded startup message.
///
/// `Debug` does not show `stdin`: it normally holds the management password.
#[derive(Clone, PartialEq, Eq)]
pub struct StartupMessage {
    /// Working directory for openvpn, and the base of relative `--config` paths.
    pub working_dir: String,
    /// openvpn's options, without argv\[0\].
    pub options: String,
    /// Text written to openvpn's stdin as UTF-8 (often the management password line).
    pub stdin: String,
}

impl std::fmt::Debug for StartupMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupMessage")
            .field("working_dir", &self.working_dir)
            .field("options", &self.options)
            .field(
                "stdin",
                &format_args!("<{} chars hidden>", self.stdin.chars().count()),
            )
            .finish()
    }
}

/// Why a startup message was refused. Every variant maps to `ERROR_STARTUP_DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartupError {
    /// Zero or one byte: no complete UTF-16 unit.
    #[error("startup data is empty")]
    Empty,
    /// More than [`MAX_UNITS`] code units.
    #[error("startup data is too long ({units} UTF-16 units; at most {MAX_UNITS})")]
    TooLong {
        /// Units received.
        units: usize,
    },
    /// The last complete unit is not NUL.
    #[error("startup data is not NULL terminated")]
    NotTerminated,
    /// Only one string was present.
    #[error("startup data ends at working directory")]
    EndsAtWorkingDir,
    /// Only two strings were present.
    #[error("startup data ends at command line options")]
    EndsAtOptions,
    /// A string holds an unpaired surrogate. Upstream passes such text on to openvpn.exe
    /// unchanged; we refuse it so that the text we check is exactly the text we use.
    #[error("startup data is not valid UTF-16")]
    InvalidUtf16,
}

impl StartupError {
    /// The error code the reply carries.
    pub const fn code(self) -> u32 {
        ERROR_STARTUP_DATA
    }

    /// The function label the reply carries (upstream uses one label for all of these).
    pub const fn function(self) -> &'static str {
        FUNCTION_LABEL
    }
}

/// A successfully decoded message, with what upstream silently ignores made visible for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The three strings.
    pub message: StartupMessage,
    /// Code units after the third terminator (ignored, as upstream does).
    pub trailing_units: usize,
    /// Whether a trailing odd byte was dropped (as upstream does).
    pub odd_byte: bool,
}

impl StartupMessage {
    /// Builds a message.
    pub fn new(
        working_dir: impl Into<String>,
        options: impl Into<String>,
        stdin: impl Into<String>,
    ) -> Self {
        Self {
            working_dir: working_dir.into(),
            options: options.into(),
            stdin: stdin.into(),
        }
    }

    /// Encodes the message as a client sends it: UTF-16LE, each string NUL-terminated.
    ///
    /// A NUL inside a string would end it early on the service side; the caller is expected
    /// not to put one there (the client library refuses such input before encoding).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            2 * (self.working_dir.len() + self.options.len() + self.stdin.len() + 3),
        );
        for part in [&self.working_dir, &self.options, &self.stdin] {
            utf16::push_str(&mut out, part);
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    /// Decodes raw bytes by the exact rules of spec §2.2.
    pub fn decode(bytes: &[u8]) -> Result<Decoded, StartupError> {
        let size = bytes.len() / 2;
        if size == 0 {
            return Err(StartupError::Empty);
        }
        if size > MAX_UNITS {
            return Err(StartupError::TooLong { units: size });
        }
        let units = utf16::units(bytes);
        if units[size - 1] != 0 {
            return Err(StartupError::NotTerminated);
        }
        let mut rest: &[u16] = &units;
        let working_dir = take_string(&mut rest);
        if rest.is_empty() {
            return Err(StartupError::EndsAtWorkingDir);
        }
        let options = take_string(&mut rest);
        if rest.is_empty() {
            return Err(StartupError::EndsAtOptions);
        }
        // The final unit is NUL, so the third string is terminated within `rest`.
        let stdin = take_string(&mut rest);
        let decode = |s: &[u16]| String::from_utf16(s).map_err(|_| StartupError::InvalidUtf16);
        Ok(Decoded {
            message: StartupMessage {
                working_dir: decode(working_dir)?,
                options: decode(options)?,
                stdin: decode(stdin)?,
            },
            trailing_units: rest.len(),
            odd_byte: bytes.len() % 2 == 1,
        })
    }
}

/// Splits off the string up to the next NUL (or the end) and consumes the NUL.
fn take_string<'a>(rest: &mut &'a [u16]) -> &'a [u16] {
    let all: &'a [u16] = rest;
    if let Some(end) = all.iter().position(|&u| u == 0) {
        *rest = &all[end + 1..];
        &all[..end]
    } else {
        *rest = &[];
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 50-byte example of spec §2.1.
    #[test]
    fn golden_spec_example() {
        let msg = StartupMessage::new("C:\\c", "--config a.ovpn", "pw\n");
        let bytes = msg.encode();
        assert_eq!(bytes.len(), 50);
        assert_eq!(&bytes[..10], &[0x43, 0, 0x3A, 0, 0x5C, 0, 0x63, 0, 0, 0]);
        assert_eq!(&bytes[10..14], &[0x2D, 0, 0x2D, 0]);
        assert_eq!(&bytes[38..42], &[0x6E, 0, 0, 0]);
        assert_eq!(&bytes[42..], &[0x70, 0, 0x77, 0, 0x0A, 0, 0, 0]);
        let decoded = StartupMessage::decode(&bytes).unwrap();
        assert_eq!(decoded.message, msg);
        assert_eq!(decoded.trailing_units, 0);
    }

    #[test]
    fn zero_and_one_byte_are_empty() {
        assert_eq!(StartupMessage::decode(&[]), Err(StartupError::Empty));
        assert_eq!(StartupMessage::decode(&[0]), Err(StartupError::Empty));
    }

    #[test]
    fn size_bound_is_4096_units() {
        let mut ok = [0x41u8, 0].repeat(MAX_UNITS - 2);
        ok.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(ok.len(), MAX_UNITS * 2);
        // "AAAA…\0\0" is two strings only.
        assert_eq!(
            StartupMessage::decode(&ok),
            Err(StartupError::EndsAtOptions)
        );
        let mut too_long = ok.clone();
        too_long.extend_from_slice(&[0, 0]);
        assert_eq!(
            StartupMessage::decode(&too_long),
            Err(StartupError::TooLong {
                units: MAX_UNITS + 1
            })
        );
        // 8194 bytes, the regression case of spec §9.
        assert!(matches!(
            StartupMessage::decode(&vec![0u8; 8194]),
            Err(StartupError::TooLong { .. })
        ));
    }

    #[test]
    fn odd_byte_is_dropped() {
        let mut bytes = StartupMessage::new("d", "o", "s").encode();
        bytes.push(0x41);
        let decoded = StartupMessage::decode(&bytes).unwrap();
        assert!(decoded.odd_byte);
        assert_eq!(decoded.message.stdin, "s");
    }

    #[test]
    fn missing_final_nul() {
        let mut bytes = StartupMessage::new("d", "o", "s").encode();
        bytes.truncate(bytes.len() - 2);
        assert_eq!(
            StartupMessage::decode(&bytes),
            Err(StartupError::NotTerminated)
        );
    }

    #[test]
    fn fewer_than_three_strings() {
        let one = [0x64, 0, 0, 0];
        assert_eq!(
            StartupMessage::decode(&one),
            Err(StartupError::EndsAtWorkingDir)
        );
        let two = [0x64, 0, 0, 0, 0x6f, 0, 0, 0];
        assert_eq!(
            StartupMessage::decode(&two),
            Err(StartupError::EndsAtOptions)
        );
        // A lone NUL is one empty string.
        assert_eq!(
            StartupMessage::decode(&[0, 0]),
            Err(StartupError::EndsAtWorkingDir)
        );
    }

    #[test]
    fn data_after_third_string_is_ignored() {
        let mut bytes = StartupMessage::new("d", "o", "s").encode();
        bytes.extend_from_slice(&[0x78, 0, 0x79, 0, 0, 0]);
        let decoded = StartupMessage::decode(&bytes).unwrap();
        assert_eq!(decoded.message, StartupMessage::new("d", "o", "s"));
        assert_eq!(decoded.trailing_units, 3);
    }

    #[test]
    fn empty_strings_are_accepted() {
        let decoded = StartupMessage::decode(&[0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(decoded.message, StartupMessage::new("", "", ""));
    }

    #[test]
    fn unpaired_surrogate_is_refused() {
        let bytes = [0x00, 0xD8, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            StartupMessage::decode(&bytes),
            Err(StartupError::InvalidUtf16)
        );
    }

    #[test]
    fn debug_hides_stdin() {
        let shown = format!("{:?}", StartupMessage::new("d", "o", "secret-password"));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
