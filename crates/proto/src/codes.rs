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
/// Win32 `ERROR_PATH_NOT_FOUND`.
pub const ERROR_PATH_NOT_FOUND: u32 = 3;
/// Win32 `ERROR_GEN_FAILURE`.
pub const ERROR_GEN_FAILURE: u32 = 31;
/// Win32 `ERROR_BAD_EXE_FORMAT`.
pub const ERROR_BAD_EXE_FORMAT: u32 = 193;
/// Win32 `ERROR_DIRECTORY` (the directory name is invalid).
pub const ERROR_DIRECTORY: u32 = 267;

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
        ERROR_PATH_NOT_FOUND => "ERROR_PATH_NOT_FOUND",
        ERROR_GEN_FAILURE => "ERROR_GEN_FAILURE",
        ERROR_BAD_EXE_FORMAT => "ERROR_BAD_EXE_FORMAT",
        ERROR_DIRECTORY => "ERROR_DIRECTORY",
        _ => return None,
    })
}

/// The Linux service's OS errors as the Win32 codes every client of the protocol understands:
/// the one place where errno values are mapped.
#[cfg(unix)]
pub mod errno {
    use super::{
        ERROR_ACCESS_DENIED, ERROR_BAD_EXE_FORMAT, ERROR_BROKEN_PIPE, ERROR_DIRECTORY,
        ERROR_FILE_NOT_FOUND, ERROR_GEN_FAILURE, ERROR_INVALID_DATA, ERROR_INVALID_PARAMETER,
        ERROR_NOT_ENOUGH_MEMORY, ERROR_NOT_FOUND, ERROR_OBJECT_ALREADY_EXISTS,
        ERROR_PATH_NOT_FOUND, ERROR_SEM_TIMEOUT,
    };

    /// The code of an error reply for a failure to start openvpn (`CreateProcessAsUser`'s
    /// codes on Windows). `None` (not an OS error) is a general failure.
    pub fn reply_code(errno: Option<i32>) -> u32 {
        match errno {
            Some(libc::ENOENT) => ERROR_FILE_NOT_FOUND,
            Some(libc::ENOTDIR) => ERROR_DIRECTORY,
            Some(libc::EACCES | libc::EPERM) => ERROR_ACCESS_DENIED,
            Some(libc::ENOMEM) => ERROR_NOT_ENOUGH_MEMORY,
            Some(libc::EINVAL) => ERROR_INVALID_PARAMETER,
            Some(libc::ENOEXEC) => ERROR_BAD_EXE_FORMAT,
            Some(libc::ELOOP | libc::ENAMETOOLONG) => ERROR_PATH_NOT_FOUND,
            Some(libc::EPIPE) => ERROR_BROKEN_PIPE,
            Some(libc::ETIMEDOUT) => ERROR_SEM_TIMEOUT,
            _ => ERROR_GEN_FAILURE,
        }
    }

    /// The code of a channel acknowledgement for a network change that failed, chosen as
    /// openvpn reads them (it treats `ERROR_OBJECT_ALREADY_EXISTS` as "route exists").
    pub fn ack_code(errno: Option<i32>) -> u32 {
        match errno {
            Some(libc::EEXIST) => ERROR_OBJECT_ALREADY_EXISTS,
            Some(libc::ENOENT | libc::ESRCH) => ERROR_NOT_FOUND,
            Some(libc::EPERM | libc::EACCES) => ERROR_ACCESS_DENIED,
            Some(libc::EINVAL | libc::ERANGE | libc::ENETUNREACH) => ERROR_INVALID_PARAMETER,
            _ => ERROR_INVALID_DATA,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reply_codes() {
            assert_eq!(reply_code(Some(libc::ENOENT)), 2);
            assert_eq!(reply_code(Some(libc::EACCES)), 5);
            assert_eq!(reply_code(Some(libc::ENOTDIR)), 267);
            assert_eq!(reply_code(None), 31);
        }

        #[test]
        fn ack_codes() {
            assert_eq!(ack_code(Some(libc::EEXIST)), 5010);
            assert_eq!(ack_code(Some(libc::ESRCH)), 1168);
            assert_eq!(ack_code(Some(libc::EPERM)), 5);
            assert_eq!(ack_code(Some(libc::ERANGE)), 87);
            assert_eq!(ack_code(None), 13);
        }
    }
}
