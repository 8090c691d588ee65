//! A minimal client of the service pipe, as OpenVPN-GUI uses it (spec §1.5): open, message
//! read mode, one write of the startup message, replies read one message at a time.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::time::{Duration, Instant};

use openvpnserv::windows::sys::wide::wide;
use openvpnserv_proto::{Reply, StartupMessage};
use windows_sys::Win32::Foundation::{
    ERROR_MORE_DATA, ERROR_PIPE_BUSY, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, ReadFile, WriteFile, OPEN_EXISTING};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeServerProcessId, PeekNamedPipe, SetNamedPipeHandleState, WaitNamedPipeW,
    PIPE_READMODE_MESSAGE,
};

/// What reading a reply found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// One message.
    Message(Vec<u8>),
    /// The service closed the pipe.
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    pipe: OwnedHandle,
}

/// `GetLastError()` of the call just made.
fn last_error() -> u32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32
}

impl Client {
    /// Connects to `pipe_path`, waiting up to 5 s for a free instance. Err = Win32 code.
    pub fn connect(pipe_path: &str) -> Result<Self, u32> {
        let name = wide(pipe_path);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // SAFETY: NUL-terminated name; no security attributes, no template.
            let h = unsafe {
                CreateFileW(
                    name.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    0,
                    ptr::null(),
                    OPEN_EXISTING,
                    0,
                    ptr::null_mut(),
                )
            };
            if h != INVALID_HANDLE_VALUE {
                // SAFETY: a new handle we own.
                let pipe = unsafe { OwnedHandle::from_raw_handle(h) };
                let mode = PIPE_READMODE_MESSAGE;
                // SAFETY: valid handle; `mode` outlives the call.
                if unsafe { SetNamedPipeHandleState(h, &raw const mode, ptr::null(), ptr::null()) }
                    == 0
                {
                    return Err(last_error());
                }
                return Ok(Self { pipe });
            }
            let err = last_error();
            if err != ERROR_PIPE_BUSY || Instant::now() > deadline {
                return Err(err);
            }
            // SAFETY: NUL-terminated name.
            unsafe { WaitNamedPipeW(name.as_ptr(), 1000) };
        }
    }

    fn raw(&self) -> HANDLE {
        self.pipe.as_raw_handle() as HANDLE
    }

    /// Writes one message.
    pub fn write(&self, bytes: &[u8]) -> Result<(), u32> {
        let mut written = 0;
        // SAFETY: valid handle; the buffer outlives the synchronous call.
        let ok = unsafe {
            WriteFile(
                self.raw(),
                bytes.as_ptr(),
                bytes.len() as u32,
                &raw mut written,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            Err(last_error())
        } else {
            Ok(())
        }
    }

    /// Sends a startup message.
    pub fn send(&self, msg: &StartupMessage) -> Result<(), u32> {
        self.write(&msg.encode())
    }

    /// Reads one message, waiting up to `timeout`.
    pub fn read(&self, timeout: Duration) -> Read {
        let deadline = Instant::now() + timeout;
        loop {
            let mut avail = 0u32;
            // SAFETY: valid handle; only the byte count is asked for.
            let ok = unsafe {
                PeekNamedPipe(
                    self.raw(),
                    ptr::null_mut(),
                    0,
                    ptr::null_mut(),
                    &raw mut avail,
                    ptr::null_mut(),
                )
            };
            if ok == 0 {
                return Read::Closed;
            }
            if avail > 0 {
                break;
            }
            if Instant::now() > deadline {
                return Read::Timeout;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // SAFETY: valid handle; `buf` holds 4096 bytes.
            let ok = unsafe {
                ReadFile(
                    self.raw(),
                    buf.as_mut_ptr(),
                    buf.len() as u32,
                    &raw mut n,
                    ptr::null_mut(),
                )
            };
            out.extend_from_slice(&buf[..n as usize]);
            if ok != 0 {
                return Read::Message(out);
            }
            // The rest of a long message follows; anything else (ERROR_BROKEN_PIPE) ends it.
            if last_error() != ERROR_MORE_DATA {
                return Read::Closed;
            }
        }
    }

    /// Reads and decodes one reply (panics with a clear message on anything else).
    pub fn reply(&self, timeout: Duration) -> Reply {
        match self.read(timeout) {
            Read::Message(bytes) => {
                Reply::decode(&bytes).unwrap_or_else(|e| panic!("undecodable reply {bytes:?}: {e}"))
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// The pid of the process that owns the server end (what OpenVPN-GUI compares with the
    /// service's pid).
    pub fn server_pid(&self) -> Option<u32> {
        let mut pid = 0;
        // SAFETY: valid handle and out pointer.
        let ok = unsafe { GetNamedPipeServerProcessId(self.raw(), &raw mut pid) };
        (ok != 0).then_some(pid)
    }
}

/// Whether a pipe of this name (NUL-terminated) exists, busy or free; does not connect.
pub fn pipe_exists(name: &[u16]) -> bool {
    // SAFETY: NUL-terminated name.
    if unsafe { WaitNamedPipeW(name.as_ptr(), 1) } != 0 {
        return true;
    }
    last_error() != windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND
}
