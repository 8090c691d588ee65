//! Small helpers over Win32: wide strings, owned handles and events, typed errors with the
//! failing function's name, and the system's text for an error code.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{GetLastError, LocalFree, HANDLE, HLOCAL, WAIT_OBJECT_0};
use windows_sys::Win32::System::Diagnostics::Debug::{
    FormatMessageW, FORMAT_MESSAGE_ALLOCATE_BUFFER, FORMAT_MESSAGE_FROM_SYSTEM,
    FORMAT_MESSAGE_IGNORE_INSERTS,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, SetEvent, WaitForMultipleObjects, WaitForSingleObject, INFINITE,
};

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// Text up to the first NUL of a UTF-16 buffer.
pub fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&u| u == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// A failed Win32 call: its error code and the label upstream puts in the reply (spec §6.2).
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
        // SAFETY: no preconditions.
        let code = unsafe { GetLastError() };
        Self::new(code, function)
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

/// The system's text for `code` (`FormatMessageW FROM_SYSTEM`), usually ending in CRLF;
/// empty where the system has none (e.g. the service's own `0x2000000x` codes).
pub fn system_text(code: u32) -> String {
    let mut buf: *mut u16 = ptr::null_mut();
    // SAFETY: with ALLOCATE_BUFFER, lpBuffer receives a LocalAlloc'd pointer, which is what we
    // pass (the address of `buf`, cast as the API requires); no inserts are used.
    let len = unsafe {
        FormatMessageW(
            FORMAT_MESSAGE_ALLOCATE_BUFFER
                | FORMAT_MESSAGE_FROM_SYSTEM
                | FORMAT_MESSAGE_IGNORE_INSERTS,
            ptr::null(),
            code,
            0,
            (&raw mut buf).cast(),
            0,
            ptr::null(),
        )
    };
    if len == 0 || buf.is_null() {
        return String::new();
    }
    // SAFETY: FormatMessageW wrote `len` units at `buf`.
    let text = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(buf, len as usize) });
    // SAFETY: `buf` was allocated by FormatMessageW with LocalAlloc and is freed once.
    unsafe { LocalFree(buf as HLOCAL) };
    text
}

/// Takes ownership of a handle returned by a successful call.
pub fn owned(handle: HANDLE) -> OwnedHandle {
    // SAFETY: callers pass a valid handle that nothing else owns.
    unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) }
}

/// The raw value of an owned handle, for calls.
pub fn raw(handle: &impl AsRawHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

/// A manual-reset event.
#[derive(Debug)]
pub struct Event(OwnedHandle);

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The object waited for is signalled.
    Ready,
    /// The stop event is set.
    Stopped,
    /// The time ran out.
    Timeout,
}

fn millis(timeout: Option<Duration>) -> u32 {
    timeout.map_or(INFINITE, |t| {
        u32::try_from(t.as_millis()).unwrap_or(INFINITE - 1)
    })
}

impl Event {
    /// A new, unsignalled manual-reset event.
    pub fn new() -> Result<Self, Win32Error> {
        // SAFETY: default security, manual reset, initially unset, no name.
        let h = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if h.is_null() {
            return Err(Win32Error::last("CreateEvent"));
        }
        Ok(Self(owned(h)))
    }

    /// Signals the event.
    pub fn set(&self) {
        // SAFETY: the handle is a valid event.
        unsafe { SetEvent(self.raw()) };
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        // SAFETY: the handle is a valid event; a zero timeout only polls.
        unsafe { WaitForSingleObject(self.raw(), 0) == WAIT_OBJECT_0 }
    }

    /// The raw handle.
    pub fn raw(&self) -> HANDLE {
        raw(&self.0)
    }

    /// A second handle to the same event (for another thread or owner).
    pub fn try_clone(&self) -> Result<Self, Win32Error> {
        self.0
            .try_clone()
            .map(Self)
            .map_err(|e| Win32Error::new(e.raw_os_error().unwrap_or(0) as u32, "DuplicateHandle"))
    }
}

/// Waits for `object` (any waitable handle), or `stop`, or the timeout.
pub fn wait(object: HANDLE, stop: Option<&Event>, timeout: Option<Duration>) -> Wake {
    let mut handles = vec![object];
    if let Some(stop) = stop {
        handles.push(stop.raw());
    }
    // SAFETY: every handle in the array is valid for the duration of the call.
    let rc = unsafe {
        WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, millis(timeout))
    };
    match rc {
        WAIT_OBJECT_0 => Wake::Ready,
        x if x == WAIT_OBJECT_0 + 1 => Wake::Stopped,
        _ => Wake::Timeout,
    }
}
