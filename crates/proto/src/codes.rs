//! Error codes carried in replies and acknowledgements (spec §5.2, §6.2).
//!
//! The service's own codes have bit 29 set (the Win32 "customer" bit); everything else is a
//! plain Win32 error code, which the Linux service uses too so that one client serves both.

/// openvpn exited with a non-zero code (late reply, spec §6.3).
pub const ERROR_OPENVPN_STARTUP: u32 = 0x2000_0000;
/// The startup message was late, malformed, or refused by policy.
pub const ERROR_STARTUP_DATA: u32 = 0x2000_0001;
/// A channel message had the wrong size or bad content.
pub const ERROR_MESSAGE_DATA: u32 = 0x2000_0002;
/// A channel message had an unknown type.
pub const ERROR_MESSAGE_TYPE: u32 = 0x2000_0003;

/// Win32 `NO_ERROR`.
pub const NO_ERROR: u32 = 0;
/// Win32 `ERROR_FILE_NOT_FOUND`.
pub const ERROR_FILE_NOT_FOUND: u32 = 2;
/// Win32 `ERROR_ACCESS_DENIED`: the Linux service's answer to a request its policy refuses.
pub const ERROR_ACCESS_DENIED: u32 = 5;
/// Win32 `ERROR_NOT_ENOUGH_MEMORY`.
pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
/// Win32 `ERROR_INVALID_DATA`.
pub const ERROR_INVALID_DATA: u32 = 13;
/// Win32 `ERROR_NOT_SUPPORTED`.
pub const ERROR_NOT_SUPPORTED: u32 = 50;
/// Win32 `ERROR_INVALID_PARAMETER`.
pub const ERROR_INVALID_PARAMETER: u32 = 87;
/// Win32 `ERROR_BROKEN_PIPE`.
pub const ERROR_BROKEN_PIPE: u32 = 109;
/// Win32 `WAIT_TIMEOUT`: a helper program was killed after its time ran out.
pub const WAIT_TIMEOUT: u32 = 0x102;
/// Win32 `ERROR_CANT_WAIT`: too many concurrent clients.
pub const ERROR_CANT_WAIT: u32 = 0x22a;
/// Win32 `ERROR_NOT_FOUND`.
pub const ERROR_NOT_FOUND: u32 = 1168;
/// Win32 `ERROR_OBJECT_ALREADY_EXISTS`: openvpn treats it as "route exists" on `add_route`.
pub const ERROR_OBJECT_ALREADY_EXISTS: u32 = 5010;
/// Win32 `ERROR_SEM_TIMEOUT`.
pub const ERROR_SEM_TIMEOUT: u32 = 121;
/// Win32 `ERROR_TOO_MANY_SESS`: the Linux service's per-user session limit was reached.
pub const ERROR_TOO_MANY_SESS: u32 = 69;

/// A short English name for a code, for logs and the client's messages.
pub fn name(code: u32) -> Option<&'static str> {
    Some(match code {
        ERROR_OPENVPN_STARTUP => "ERROR_OPENVPN_STARTUP",
        ERROR_STARTUP_DATA => "ERROR_STARTUP_DATA",
        ERROR_MESSAGE_DATA => "ERROR_MESSAGE_DATA",
        ERROR_MESSAGE_TYPE => "ERROR_MESSAGE_TYPE",
        NO_ERROR => "NO_ERROR",
        ERROR_FILE_NOT_FOUND => "ERROR_FILE_NOT_FOUND",
        ERROR_ACCESS_DENIED => "ERROR_ACCESS_DENIED",
        ERROR_NOT_ENOUGH_MEMORY => "ERROR_NOT_ENOUGH_MEMORY",
        ERROR_INVALID_DATA => "ERROR_INVALID_DATA",
        ERROR_NOT_SUPPORTED => "ERROR_NOT_SUPPORTED",
        ERROR_INVALID_PARAMETER => "ERROR_INVALID_PARAMETER",
        ERROR_BROKEN_PIPE => "ERROR_BROKEN_PIPE",
        WAIT_TIMEOUT => "WAIT_TIMEOUT",
        ERROR_CANT_WAIT => "ERROR_CANT_WAIT",
        ERROR_NOT_FOUND => "ERROR_NOT_FOUND",
        ERROR_OBJECT_ALREADY_EXISTS => "ERROR_OBJECT_ALREADY_EXISTS",
        ERROR_SEM_TIMEOUT => "ERROR_SEM_TIMEOUT",
        ERROR_TOO_MANY_SESS => "ERROR_TOO_MANY_SESS",
        _ => return None,
    })
}
