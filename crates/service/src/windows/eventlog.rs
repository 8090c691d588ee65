//! Event-log reporting (spec §10 item 9): source `openvpnserv<id>`, event id 0xC0020001
//! (severity error, facility runtime), two strings. Messages also go to stderr, which a test
//! or a console sees and the SCM discards.

use std::ptr;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
    EVENTLOG_INFORMATION_TYPE, REPORT_EVENT_TYPE,
};

use super::win32::wide;

/// Upstream's single message id.
pub const EVENT_ID: u32 = 0xC002_0001;

/// An event source.
#[derive(Debug)]
pub struct EventLog {
    source: String,
    handle: HANDLE,
}

// SAFETY: an event-source handle may be used from any thread (ReportEvent is thread-safe).
unsafe impl Send for EventLog {}
// SAFETY: as above.
unsafe impl Sync for EventLog {}

impl EventLog {
    /// Registers `source` (a missing registration still logs, with a generic message file).
    pub fn new(source: &str) -> Self {
        let name = wide(source);
        // SAFETY: `name` is NUL-terminated; a null server is the local machine.
        let handle = unsafe { RegisterEventSourceW(ptr::null(), name.as_ptr()) };
        Self {
            source: source.to_owned(),
            handle,
        }
    }

    fn report(&self, kind: REPORT_EVENT_TYPE, first: &str, message: &str) {
        eprintln!("{first}: {message}");
        if self.handle.is_null() {
            return;
        }
        let strings = [wide(first), wide(message)];
        let ptrs = [strings[0].as_ptr(), strings[1].as_ptr()];
        // SAFETY: the handle is a registered source; two NUL-terminated strings are passed.
        unsafe {
            ReportEventW(
                self.handle,
                kind,
                0,
                EVENT_ID,
                ptr::null_mut(),
                2,
                0,
                ptrs.as_ptr(),
                ptr::null(),
            )
        };
    }

    /// An error event: `"<source> error: <detail>"` and the message.
    pub fn error(&self, message: &str) {
        self.report(
            EVENTLOG_ERROR_TYPE,
            &format!("{} error", self.source),
            message,
        );
    }

    /// An informational event.
    pub fn info(&self, message: &str) {
        self.report(EVENTLOG_INFORMATION_TYPE, &self.source, message);
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: registered in `new`, deregistered once.
            unsafe { DeregisterEventSource(self.handle) };
        }
    }
}
