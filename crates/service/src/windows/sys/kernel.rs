//! Kernel objects and the small system services around them: owned handles, events and
//! waits; processes; named pipes with overlapped I/O, anonymous pipes and inheritable file
//! handles; message texts (`FormatMessageW`); the system directory; file versions; and the
//! event log source.

use std::ffi::c_void;
use std::fs::File;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    DuplicateHandle, LocalFree, SetHandleInformation, DUPLICATE_SAME_ACCESS, ERROR_IO_PENDING,
    ERROR_MORE_DATA, ERROR_NO_DATA, ERROR_OPERATION_ABORTED, ERROR_PIPE_CONNECTED, HANDLE,
    HANDLE_FLAG_INHERIT, HLOCAL, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FlushFileBuffers, GetFileVersionInfoSizeW, GetFileVersionInfoW, ReadFile,
    VerQueryValueW, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, VS_FIXEDFILEINFO, WRITE_DAC,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    FormatMessageW, FORMAT_MESSAGE_ALLOCATE_BUFFER, FORMAT_MESSAGE_ARGUMENT_ARRAY,
    FORMAT_MESSAGE_FROM_STRING, FORMAT_MESSAGE_FROM_SYSTEM, FORMAT_MESSAGE_IGNORE_INSERTS,
};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
    EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, CreatePipe, DisconnectNamedPipe,
    GetNamedPipeClientProcessId, SetNamedPipeHandleState, PIPE_READMODE_MESSAGE,
    PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::SystemInformation::GetSystemDirectoryW;
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateProcessW, GetCurrentProcess, GetCurrentThreadId, GetExitCodeProcess,
    SetEvent, TerminateProcess, WaitForMultipleObjects, WaitForSingleObject, CREATE_NO_WINDOW,
    CREATE_UNICODE_ENVIRONMENT, INFINITE, PROCESS_INFORMATION, STARTUPINFOW,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use super::error::{check, Win32Error};
use super::security::SecurityDescriptor;
use super::wide::{from_wide, wide};

// ---------------------------------------------------------------------------------------------
// Handles, events, waits

/// Takes ownership of a handle returned by a successful call.
pub(super) fn owned(handle: HANDLE) -> OwnedHandle {
    // SAFETY: callers pass a valid handle that nothing else owns.
    unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) }
}

/// The raw value of an owned handle, for calls.
pub(super) fn raw(handle: &impl AsRawHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

/// The text of a NUL-terminated UTF-16 string the system handed out (empty for null).
///
/// # Safety
/// `p` is null or points at a NUL-terminated UTF-16 string that stays valid during the call.
pub unsafe fn wide_at(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller guarantees a terminator; we stop at it.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units precede the terminator.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A manual-reset event.
#[derive(Debug)]
pub struct Event(OwnedHandle);

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
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

    fn raw(&self) -> HANDLE {
        raw(&self.0)
    }

    /// A second handle to the same event (for another thread or owner).
    pub fn try_clone(&self) -> Result<Self, Win32Error> {
        self.0
            .try_clone()
            .map(Self)
            .map_err(|e| Win32Error::from_io(&e, "DuplicateHandle"))
    }
}

/// Waits for `object`, or `stop`, or the timeout.
fn wait(object: &impl AsRawHandle, stop: Option<&Event>, timeout: Option<Duration>) -> Wake {
    let mut handles = vec![raw(object)];
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

/// This thread's id.
pub fn current_thread_id() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetCurrentThreadId() }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A process the service started: wait for it with a time limit, end it, read its exit code.
#[derive(Debug)]
pub struct Process {
    handle: OwnedHandle,
    pid: u32,
}

impl Process {
    /// Takes the handles a successful `CreateProcess*` returned (the thread's is closed).
    pub(super) fn from_information(pi: &PROCESS_INFORMATION) -> Self {
        drop(owned(pi.hThread));
        Self {
            handle: owned(pi.hProcess),
            pid: pi.dwProcessId,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits up to `timeout` for the process to end: `Ok(true)` when it has, `Ok(false)` when
    /// it still runs.
    pub fn wait(&self, timeout: Duration) -> Result<bool, Win32Error> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(INFINITE - 1);
        // SAFETY: a valid process handle.
        match unsafe { WaitForSingleObject(self.raw(), ms) } {
            WAIT_OBJECT_0 => Ok(true),
            windows_sys::Win32::Foundation::WAIT_TIMEOUT => Ok(false),
            _ => Err(Win32Error::last("WaitForSingleObject")),
        }
    }

    /// Ends the process with `exit_code` (`TerminateProcess`; it may take a moment to be gone).
    pub fn terminate(&self, exit_code: u32) {
        // SAFETY: a valid process handle.
        unsafe { TerminateProcess(self.raw(), exit_code) };
    }

    /// The exit code (`STILL_ACTIVE`, 259, while it runs).
    pub fn exit_code(&self) -> Result<u32, Win32Error> {
        let mut code = 0;
        // SAFETY: a valid process handle and out pointer.
        let ok = unsafe { GetExitCodeProcess(self.raw(), &raw mut code) };
        check(ok, "GetExitCodeProcess")?;
        Ok(code)
    }

    /// The DACL of the process as SDDL, read back from the process.
    pub fn dacl_sddl(&self) -> Result<String, Win32Error> {
        super::security::dacl_sddl_of(self.raw())
    }

    fn raw(&self) -> HANDLE {
        raw(&self.handle)
    }
}

/// Starts a program as the service, inheriting no handle, without a window (spec §5.6 "run
/// helper"). `exe` is the image, `cmdline` the whole command line.
pub fn spawn_detached(exe: &str, cmdline: &str) -> Result<Process, Win32Error> {
    let app = wide(exe);
    let mut cmd = wide(cmdline);
    // SAFETY: plain data; zero is its initial state.
    let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
    si.cb = size_of::<STARTUPINFOW>() as u32;
    // SAFETY: plain data, filled by the call.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated image name and mutable command line that outlive the call; no
    // handle inheritance, default environment and directory.
    let ok = unsafe {
        CreateProcessW(
            app.as_ptr(),
            cmd.as_mut_ptr(),
            ptr::null(),
            ptr::null(),
            0,
            CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT,
            ptr::null(),
            ptr::null(),
            &raw const si,
            &raw mut pi,
        )
    };
    check(ok, "CreateProcess")?;
    Ok(Process::from_information(&pi))
}

// ---------------------------------------------------------------------------------------------
// Named pipes

/// Every read and write to a client or openvpn is bounded by this (upstream `IO_TIMEOUT`).
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a pipe operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoError {
    /// The time ran out (the operation was cancelled).
    #[error("timed out")]
    Timeout,
    /// The service is stopping (the operation was cancelled).
    #[error("the service is stopping")]
    Stopped,
    /// The system reported this error.
    #[error(transparent)]
    Os(Win32Error),
}

impl IoError {
    /// The Win32 code a reply carries for this error.
    pub fn code(&self) -> u32 {
        match self {
            IoError::Timeout => openvpnserv_proto::codes::ERROR_SEM_TIMEOUT,
            IoError::Stopped => ERROR_OPERATION_ABORTED,
            IoError::Os(e) => e.code,
        }
    }

    /// Whether this is "the message did not fit" (`ERROR_MORE_DATA`).
    pub fn is_more_data(&self) -> bool {
        matches!(self, IoError::Os(w) if w.code == ERROR_MORE_DATA)
    }
}

/// The server end of a named pipe, opened for overlapped I/O (spec §1.3, §1.4, §2.3, §5.1).
///
/// Each operation starts an overlapped call and waits for its event, the stop event or the
/// time limit; an operation that does not finish is cancelled and its cancellation awaited,
/// so no buffer is ever left with the kernel.
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

    fn raw(&self) -> HANDLE {
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
            let err = Win32Error::last(label);
            if err.code != ERROR_IO_PENDING {
                return Err(IoError::Os(err));
            }
            let wake = wait(&self.event.0, stop, timeout);
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
            return Err(IoError::Os(Win32Error::last(label)));
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

    /// Impersonates the connected client on this thread (`ImpersonateNamedPipeClient`).
    pub(super) fn impersonate_client(&self) -> Result<(), Win32Error> {
        // SAFETY: a connected server pipe handle.
        let ok =
            unsafe { windows_sys::Win32::System::Pipes::ImpersonateNamedPipeClient(self.raw()) };
        check(ok, "ImpersonateNamedPipeClient")
    }
}

/// Opens an existing file or device (`CreateFileW`, `OPEN_EXISTING`) with a handle that child
/// processes may inherit; `label` names the step in an error.
pub fn open_inheritable(
    path: &str,
    access: u32,
    share: u32,
    label: &str,
) -> Result<OwnedHandle, Win32Error> {
    let name = wide(path);
    let sa = inheritable();
    // SAFETY: `name` is NUL-terminated; `sa` outlives the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            share,
            &raw const sa,
            OPEN_EXISTING,
            0,
            ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(Win32Error::last(label));
    }
    Ok(owned(h))
}

/// Opens the client end of a pipe inheritably and switches it to message read mode.
pub fn open_pipe_client_inheritable(
    name: &str,
    access: u32,
    label: &str,
) -> Result<OwnedHandle, Win32Error> {
    let client = open_inheritable(name, access, 0, label)?;
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: a valid pipe handle; `mode` outlives the call.
    let ok =
        unsafe { SetNamedPipeHandleState(raw(&client), &raw const mode, ptr::null(), ptr::null()) };
    check(ok, "SetNamedPipeHandleState")?;
    Ok(client)
}

/// `SECURITY_ATTRIBUTES` with the default descriptor, inheritable.
fn inheritable() -> SECURITY_ATTRIBUTES {
    SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: ptr::null_mut(),
        bInheritHandle: 1,
    }
}

/// An anonymous pipe with room for `size` bytes: an inheritable read end (a child's stdin)
/// and the service's write end, which is not inheritable.
pub fn stdin_pipe(size: u32) -> Result<(OwnedHandle, File), Win32Error> {
    let sa = inheritable();
    let (mut r, mut w): (HANDLE, HANDLE) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid out pointers; `sa` outlives the call.
    let ok = unsafe { CreatePipe(&raw mut r, &raw mut w, &raw const sa, size) };
    check(ok, "CreatePipe")?;
    let (r, w) = (owned(r), owned(w));
    // SAFETY: `w` is valid; only its inherit flag changes.
    let ok = unsafe { SetHandleInformation(raw(&w), HANDLE_FLAG_INHERIT, 0) };
    check(ok, "SetHandleInformation")?;
    Ok((r, File::from(w)))
}

// ---------------------------------------------------------------------------------------------
// Message texts

/// Frees a `LocalAlloc`'d block the system handed out, once.
struct LocalBlock(*mut c_void);

impl Drop for LocalBlock {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the system with LocalAlloc and freed only here.
            unsafe { LocalFree(self.0 as HLOCAL) };
        }
    }
}

/// Copies `len` units out of a `FormatMessageW` buffer and frees it.
fn take_message(buf: *mut u16, len: u32) -> Option<Vec<u16>> {
    let block = LocalBlock(buf.cast());
    if len == 0 || buf.is_null() {
        return None;
    }
    // SAFETY: FormatMessageW wrote `len` units at `buf`, which `block` frees after the copy.
    let units = unsafe { std::slice::from_raw_parts(buf, len as usize) }.to_vec();
    drop(block);
    Some(units)
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
    take_message(buf, len).map_or_else(String::new, |u| String::from_utf16_lossy(&u))
}

/// Upstream's error reply pattern (spec §6.1).
const REPLY_PATTERN: &str = "0x%1!08x!\n%2!s!\n%3!s!";

/// `FormatMessageW FROM_STRING` of upstream's reply pattern `0x%1!08x!\n%2!s!\n%3!s!` with
/// `code`, `function` and `text`: the units the system makes of it, or `None` when formatting
/// fails.
pub fn format_reply(code: u32, function: &str, text: &str) -> Option<Vec<u16>> {
    let pattern = wide(REPLY_PATTERN);
    let function = wide(function);
    let text = wide(text);
    let args: [usize; 3] = [
        code as usize,
        function.as_ptr() as usize,
        text.as_ptr() as usize,
    ];
    let mut out: *mut u16 = ptr::null_mut();
    // SAFETY: FROM_STRING with an argument array of three pointer-sized values matching the
    // pattern's inserts (a number, two NUL-terminated wide strings that outlive the call);
    // ALLOCATE_BUFFER stores a LocalAlloc'd pointer at `out`.
    let len = unsafe {
        FormatMessageW(
            FORMAT_MESSAGE_FROM_STRING
                | FORMAT_MESSAGE_ALLOCATE_BUFFER
                | FORMAT_MESSAGE_ARGUMENT_ARRAY,
            pattern.as_ptr().cast(),
            0,
            0,
            (&raw mut out).cast(),
            0,
            args.as_ptr().cast(),
        )
    };
    take_message(out, len)
}

// ---------------------------------------------------------------------------------------------
// System directory and file versions

/// The system directory (`GetSystemDirectoryW`, else `C:\Windows\system32`).
pub fn system_dir() -> String {
    let mut buf = [0u16; 260];
    // SAFETY: `buf` holds 260 units.
    let n = unsafe { GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32) };
    if n == 0 || n as usize >= buf.len() {
        return r"C:\Windows\system32".to_owned();
    }
    from_wide(&buf)
}

/// `(major, minor)` of an executable's file version, if it has a version resource.
pub fn file_version(path: &str) -> Option<(u16, u16)> {
    let path = wide(path);
    let mut ignored = 0;
    // SAFETY: `path` is NUL-terminated.
    let size = unsafe { GetFileVersionInfoSizeW(path.as_ptr(), &raw mut ignored) };
    if size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: `buf` holds `size` bytes.
    if unsafe { GetFileVersionInfoW(path.as_ptr(), 0, size, buf.as_mut_ptr().cast()) } == 0 {
        return None;
    }
    let root = wide("\\");
    let mut info: *mut VS_FIXEDFILEINFO = ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `buf` holds a version resource; `info` receives a pointer into it.
    let ok = unsafe {
        VerQueryValueW(
            buf.as_ptr().cast(),
            root.as_ptr(),
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    if ok == 0 || info.is_null() || (len as usize) < size_of::<VS_FIXEDFILEINFO>() {
        return None;
    }
    // SAFETY: `info` points at a VS_FIXEDFILEINFO inside `buf`, which is still alive.
    let ms = unsafe { (*info).dwFileVersionMS };
    Some(((ms >> 16) as u16, (ms & 0xFFFF) as u16))
}

// ---------------------------------------------------------------------------------------------
// The event log

/// The type of an event log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `EVENTLOG_ERROR_TYPE`.
    Error,
    /// `EVENTLOG_WARNING_TYPE`.
    Warning,
    /// `EVENTLOG_INFORMATION_TYPE`.
    Information,
}

/// A registered event source (`RegisterEventSourceW`), deregistered on drop.
#[derive(Debug)]
pub struct EventSource(HANDLE);

// SAFETY: an event-source handle may be used from any thread (ReportEventW is thread-safe),
// and it is only deregistered on drop.
unsafe impl Send for EventSource {}
// SAFETY: as above.
unsafe impl Sync for EventSource {}

impl EventSource {
    /// Registers `source`. A source without registration in the registry still logs (with a
    /// generic message file); `None` when the call fails.
    pub fn register(source: &str) -> Option<Self> {
        let name = wide(source);
        // SAFETY: `name` is NUL-terminated; a null server is the local machine.
        let handle = unsafe { RegisterEventSourceW(ptr::null(), name.as_ptr()) };
        (!handle.is_null()).then_some(Self(handle))
    }

    /// Reports one event with `event_id` and its insertion strings.
    pub fn report(&self, kind: EventKind, event_id: u32, strings: &[&str]) {
        let kind = match kind {
            EventKind::Error => EVENTLOG_ERROR_TYPE,
            EventKind::Warning => EVENTLOG_WARNING_TYPE,
            EventKind::Information => EVENTLOG_INFORMATION_TYPE,
        };
        let wides: Vec<Vec<u16>> = strings.iter().map(|s| wide(s)).collect();
        let ptrs: Vec<*const u16> = wides.iter().map(Vec::as_ptr).collect();
        // SAFETY: the handle is a registered source; `ptrs` holds `ptrs.len()` NUL-terminated
        // strings that outlive the call; no raw data.
        unsafe {
            ReportEventW(
                self.0,
                kind,
                0,
                event_id,
                ptr::null_mut(),
                ptrs.len() as u16,
                0,
                ptrs.as_ptr(),
                ptr::null(),
            )
        };
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, deregistered once.
        unsafe { DeregisterEventSource(self.0) };
    }
}
