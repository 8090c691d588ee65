//! Linux errors as the Win32 codes every client of the protocol understands.

use openvpnserv_proto::codes;

/// Win32 `ERROR_PATH_NOT_FOUND`.
const ERROR_PATH_NOT_FOUND: u32 = 3;
/// Win32 `ERROR_GEN_FAILURE`.
const ERROR_GEN_FAILURE: u32 = 31;
/// Win32 `ERROR_DIRECTORY` (the directory name is invalid).
const ERROR_DIRECTORY: u32 = 267;
/// Win32 `ERROR_BAD_EXE_FORMAT`.
const ERROR_BAD_EXE_FORMAT: u32 = 193;

/// The Win32 code closest to an OS error.
pub fn win32_code(e: &std::io::Error) -> u32 {
    match e.raw_os_error() {
        Some(libc::ENOENT) => codes::ERROR_FILE_NOT_FOUND,
        Some(libc::ENOTDIR) => ERROR_DIRECTORY,
        Some(libc::EACCES | libc::EPERM) => codes::ERROR_ACCESS_DENIED,
        Some(libc::ENOMEM) => codes::ERROR_NOT_ENOUGH_MEMORY,
        Some(libc::EINVAL) => codes::ERROR_INVALID_PARAMETER,
        Some(libc::ENOEXEC) => ERROR_BAD_EXE_FORMAT,
        Some(libc::ELOOP | libc::ENAMETOOLONG) => ERROR_PATH_NOT_FOUND,
        Some(libc::EPIPE) => codes::ERROR_BROKEN_PIPE,
        Some(libc::ETIMEDOUT) => codes::ERROR_SEM_TIMEOUT,
        _ => ERROR_GEN_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errors() {
        let e = |n| std::io::Error::from_raw_os_error(n);
        assert_eq!(win32_code(&e(libc::ENOENT)), 2);
        assert_eq!(win32_code(&e(libc::EACCES)), 5);
        assert_eq!(win32_code(&e(libc::ENOTDIR)), 267);
        assert_eq!(win32_code(&std::io::Error::other("x")), 31);
    }
}
