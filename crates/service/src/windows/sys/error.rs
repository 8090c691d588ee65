//! Errors of the layer: a failed Win32 call with its code and the label upstream puts in a
//! reply (spec §6.2).

use super::kernel::system_text;

/// A failed Win32 call: its error code and the function (or description) that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{function} failed: {} (0x{code:08x})", system_text(*code).trim_end())]
pub struct Win32Error {
    /// The Win32 error code.
    pub code: u32,
    /// The function (or description) that failed.
    pub function: String,
}

impl Win32Error {
    /// An error with a known code.
    pub fn new(code: u32, function: impl Into<String>) -> Self {
        Self {
            code,
            function: function.into(),
        }
    }

    /// `GetLastError()` of the call just made.
    pub fn last(function: impl Into<String>) -> Self {
        Self::from_io(&std::io::Error::last_os_error(), function)
    }

    /// The code of an I/O error that came from the system (0 when it has none).
    pub fn from_io(e: &std::io::Error, function: impl Into<String>) -> Self {
        Self::new(e.raw_os_error().unwrap_or(0) as u32, function)
    }
}

/// `Ok(())` when a `BOOL` call succeeded, else the last error labelled with `function`.
pub fn check(ok: i32, function: &str) -> Result<(), Win32Error> {
    if ok == 0 {
        Err(Win32Error::last(function))
    } else {
        Ok(())
    }
}

/// `Ok(())` for `ERROR_SUCCESS`, else that code labelled with `function` (for calls that
/// return their error instead of setting the last error).
pub fn check_code(code: u32, function: &str) -> Result<(), Win32Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Win32Error::new(code, function))
    }
}
