//! Overlapped named-pipe I/O with timeouts and the stop event (spec §1.3, §1.4, §2.3, §5.1).
//!
//! Each operation starts an overlapped call and waits for its event, the stop event or the
//! time limit; an operation that does not finish is cancelled and its cancellation awaited,
//! so no buffer is ever left with the kernel.

use std::os::windows::io::OwnedHandle;
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, GetLastError, DUPLICATE_SAME_ACCESS, ERROR_IO_PENDING, ERROR_MORE_DATA,
    ERROR_NO_DATA, ERROR_PIPE_CONNECTED, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FlushFileBuffers, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED,
    PIPE_ACCESS_DUPLEX, WRITE_DAC,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeClientProcessId,
    PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES,
    PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use super::security::SecurityDescriptor;
use super::win32::{owned, raw, wait, wide, Event, Wake, Win32Error};

/// Every read and write to a client or openvpn is bounded by this (upstream `IO_TIMEOUT`).
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a pipe operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoError {
    /// The time ran out (the operation was cancelled).
    Timeout,
    /// The service is stopping (the operation was cancelled).
    Stopped,
    /// The system reported this error.
    Os(Win32Error),
}

impl IoError {
    /// The Win32 code a reply carries for this error.
    pub fn code(&self) -> u32 {
        match self {
            IoError::Timeout => openvpnserv_proto::codes::ERROR_SEM_TIMEOUT,
            IoError::Stopped => windows_sys::Win32::Foundation::ERROR_OPERATION_ABORTED,
            IoError::Os(e) => e.code,
        }
    }
}

/// The server end of a named pipe, opened for overlapped I/O.
#[derive(Debug)]
pub struct Pipe {
    handle: OwnedHandle,
    event: Event,
}

/// How a pipe instance is created.
#[derive(Debug, Clone, Copy)]
pub struct PipeSpec {
    /// Fail if the name already exists (`FILE_FLAG_FIRST_PIPE_INSTANCE`).
    pub first_instance: bool,
    /// Add `WRITE_DAC` to the open mode (the client pipe, as upstream).
    pub write_dac: bool,
    /// `nMaxInstances`.
    pub max_instances: u32,
    /// In and out buffer sizes.
    pub buffer: u32,
}

impl PipeSpec {
    /// The client pipe of spec §1.3.
    pub const fn client(first_instance: bool) -> Self {
        Self {
            first_instance,
            write_dac: true,
            max_instances: PIPE_UNLIMITED_INSTANCES,
            buffer: 1024,
        }
    }

    /// The per-session channel pipe of spec §1.4.
    pub const CHANNEL: Self = Self {
        first_instance: true,
        write_dac: false,
        max_instances: 1,
        buffer: 128,
    };
}

impl Pipe {
    /// Creates a message-mode pipe instance that refuses remote clients.
    pub fn create(name: &str, spec: PipeSpec, sd: &SecurityDescriptor) -> Result<Self, Win32Error> {
        let name = wide(name);
        let sa = sd.attributes(false);
        let mut open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
        if spec.first_instance {
            open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
        }
        if spec.write_dac {
            open_mode |= WRITE_DAC;
        }
        // SAFETY: `name` is NUL-terminated; `sa` and the descriptor it points at outlive the call.
        let h = unsafe {
            CreateNamedPipeW(
                name.as_ptr(),
                open_mode,
                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                spec.max_instances,
                spec.buffer,
                spec.buffer,
                0,
                &raw const sa,
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(Win32Error::last("CreateNamedPipe"));
        }
        Ok(Self {
            handle: owned(h),
            event: Event::new()?,
        })
    }

    /// The raw handle.
    pub fn raw(&self) -> HANDLE {
        raw(&self.handle)
    }

    /// Runs one overlapped operation to its end, or cancels it.
    fn io(
        &self,
        label: &str,
        stop: Option<&Event>,
        timeout: Option<Duration>,
        start: impl FnOnce(*mut OVERLAPPED) -> i32,
    ) -> Result<u32, IoError> {
        let mut ov: Box<OVERLAPPED> = Box::new(
            // SAFETY: OVERLAPPED is plain data for which all-zero is the documented initial state.
            unsafe { std::mem::zeroed() },
        );
        ov.hEvent = self.event.raw();
        let ov_ptr: *mut OVERLAPPED = &raw mut *ov;
        if start(ov_ptr) == 0 {
            // SAFETY: no preconditions.
            let err = unsafe { GetLastError() };
            if err != ERROR_IO_PENDING {
                return Err(IoError::Os(Win32Error::new(err, label)));
            }
            let wake = wait(self.event.raw(), stop, timeout);
            if wake != Wake::Ready {
                // SAFETY: cancels only this operation on our handle; the wait below keeps
                // `ov` alive until the kernel is done with it.
                unsafe { CancelIoEx(self.raw(), ov_ptr) };
                let mut n = 0;
                // SAFETY: waits for the (cancelled) operation to finish with `ov`.
                unsafe { GetOverlappedResult(self.raw(), ov_ptr, &raw mut n, 1) };
                return Err(if wake == Wake::Stopped {
                    IoError::Stopped
                } else {
                    IoError::Timeout
                });
            }
        }
        let mut n = 0;
        // SAFETY: the operation has completed; this collects its result.
        let ok = unsafe { GetOverlappedResult(self.raw(), ov_ptr, &raw mut n, 0) };
        if ok == 0 {
            // SAFETY: no preconditions.
            let err = unsafe { GetLastError() };
            return Err(IoError::Os(Win32Error::new(err, label)));
        }
        Ok(n)
    }

    /// Waits for a client (spec §1.3). `Ok(false)` when the client connected and left at
    /// once (`ERROR_NO_DATA`): the instance has been disconnected and can be reused.
    pub fn connect(&self, stop: &Event) -> Result<bool, IoError> {
        // SAFETY: the handle is valid; `ov` is provided by `io` and outlives the operation.
        match self.io("ConnectNamedPipe", Some(stop), None, |ov| unsafe {
            ConnectNamedPipe(self.raw(), ov)
        }) {
            Ok(_) => Ok(true),
            Err(IoError::Os(e)) if e.code == ERROR_PIPE_CONNECTED => Ok(true),
            Err(IoError::Os(e)) if e.code == ERROR_NO_DATA => {
                self.disconnect();
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads one message into `buf`. A message longer than `buf` yields
    /// `Os(ERROR_MORE_DATA)`.
    pub fn read(
        &self,
        buf: &mut [u8],
        stop: Option<&Event>,
        timeout: Option<Duration>,
    ) -> Result<usize, IoError> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let ptr = buf.as_mut_ptr();
        let n = self.io("ReadFile", stop, timeout, |ov| {
            // SAFETY: `buf` outlives the operation (`io` waits for completion or cancellation).
            unsafe { ReadFile(self.raw(), ptr.cast(), len, ptr::null_mut(), ov) }
        })?;
        Ok(n as usize)
    }

    /// Writes one message, within [`IO_TIMEOUT`].
    pub fn write(&self, data: &[u8], stop: Option<&Event>) -> Result<(), IoError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.io("WriteFile", stop, Some(IO_TIMEOUT), |ov| {
            // SAFETY: `data` outlives the operation (`io` waits for completion or cancellation).
            unsafe { WriteFile(self.raw(), data.as_ptr(), len, ptr::null_mut(), ov) }
        })
        .map(|_| ())
    }

    /// Waits up to `timeout` for the client to read everything written (`FlushFileBuffers`
    /// on a second handle, in a helper thread). Upstream's flush is unbounded; a client that
    /// never reads must not pin a session (spec §11).
    pub fn flush_bounded(&self, timeout: Duration) {
        let mut dup: HANDLE = ptr::null_mut();
        // SAFETY: duplicates our valid handle into this process.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                self.raw(),
                GetCurrentProcess(),
                &raw mut dup,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        if ok == 0 {
            return;
        }
        let dup = owned(dup);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: `dup` is a valid handle owned by this thread; the call returns at the
            // latest when the pipe is disconnected.
            unsafe { FlushFileBuffers(raw(&dup)) };
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(timeout);
    }

    /// Disconnects the client (pending flushes then return).
    pub fn disconnect(&self) {
        // SAFETY: the handle is valid.
        unsafe { DisconnectNamedPipe(self.raw()) };
    }

    /// The DACL of this pipe as SDDL, read back from the object.
    pub fn dacl_sddl(&self) -> Result<String, Win32Error> {
        super::security::dacl_sddl_of(self.raw())
    }

    /// The client's process id.
    pub fn client_pid(&self) -> Option<u32> {
        let mut pid = 0;
        // SAFETY: the handle is valid; `pid` is a valid out pointer.
        let ok = unsafe { GetNamedPipeClientProcessId(self.raw(), &raw mut pid) };
        (ok != 0).then_some(pid)
    }
}

/// Whether an I/O error is "the message did not fit".
pub fn is_more_data(e: &IoError) -> bool {
    matches!(e, IoError::Os(w) if w.code == ERROR_MORE_DATA)
}
