//! Starting openvpn as the client (spec §4.1 steps 5–13, §1.4), with an explicit list of
//! inherited handles and a thread security descriptor (§11).

use std::fs::File;
use std::os::windows::io::{AsRawHandle, OwnedHandle};

use openvpnserv_core::windows::sddl;
use uuid::Uuid;
use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE};
use windows_sys::Win32::Storage::FileSystem::FILE_SHARE_WRITE;

use super::sys::kernel::{
    current_thread_id, open_inheritable, open_pipe_client_inheritable, stdin_pipe, Pipe, PipeSpec,
    Process,
};
use super::sys::security::{spawn_as_user, SecurityDescriptor, Spawn, Token};
use super::sys::Win32Error;

/// What [`launch`] needs.
pub struct LaunchRequest<'a> {
    /// `exe_path` (lpApplicationName).
    pub exe_path: &'a str,
    /// The client's options, verbatim.
    pub options: &'a str,
    /// The working directory.
    pub working_dir: &'a str,
    /// Priority class flag.
    pub priority_class: u32,
    /// Channel pipe name (`\\.\pipe\openvpn<id>\service_<tid>_<uuid>`).
    pub channel_name: String,
    /// The service's SID as text.
    pub service_sid: &'a str,
    /// The client's SID as text.
    pub user_sid: &'a str,
    /// Bytes that will be written to stdin (the pipe gets room for them).
    pub stdin_len: usize,
}

/// A started openvpn.
pub struct Launched {
    /// The process.
    pub process: Process,
    /// Write end of openvpn's stdin (kept open for the whole session).
    pub stdin: File,
    /// Service end of the channel.
    pub channel: Pipe,
}

impl Launched {
    /// The DACL of openvpn's process as SDDL, read back from the process.
    pub fn process_dacl_sddl(&self) -> Result<String, Win32Error> {
        self.process.dacl_sddl()
    }
}

/// A fresh random (v4) UUID as `UuidToStringW` renders it: lower case, no braces.
pub fn new_uuid() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// This thread's id (part of the channel name, as upstream).
pub fn thread_id() -> u32 {
    current_thread_id()
}

/// The channel pipe and its inheritable, synchronous client end (spec §1.4). Call while
/// impersonating, so that the pipe's owner (`OW` in its DACL) is the client.
pub fn create_channel(name: &str) -> Result<(Pipe, OwnedHandle), Win32Error> {
    let sd = SecurityDescriptor::from_sddl(sddl::CHANNEL_PIPE)?;
    let pipe = Pipe::create(name, PipeSpec::CHANNEL, &sd)?;
    let client = open_pipe_client_inheritable(name, GENERIC_READ | GENERIC_WRITE, "CreateFile")?;
    Ok((pipe, client))
}

/// Starts openvpn (spec §4.1 steps 5–13). Call while impersonating the client; `token` is its
/// impersonation token.
pub fn launch(token: &Token, req: &LaunchRequest<'_>) -> Result<Launched, Win32Error> {
    launch_marked(token, req, &mut |_| {})
}

/// [`launch`], calling `mark` after each of its steps (the session times them).
pub fn launch_marked(
    token: &Token,
    req: &LaunchRequest<'_>,
    mark: &mut dyn FnMut(&'static str),
) -> Result<Launched, Win32Error> {
    let process_sd = SecurityDescriptor::from_sddl(&sddl::object_sddl(
        req.service_sid,
        req.user_sid,
        sddl::USER_PROCESS_RIGHTS,
    ))?;
    let thread_sd = SecurityDescriptor::from_sddl(&sddl::object_sddl(
        req.service_sid,
        req.user_sid,
        sddl::USER_THREAD_RIGHTS,
    ))?;
    mark("launch_descriptors");
    let primary = token.duplicate_primary()?;
    mark("launch_primary_token");
    let nul = open_inheritable(
        "NUL",
        GENERIC_WRITE,
        FILE_SHARE_WRITE,
        "CreateFile for stdout",
    )?;
    let size = u32::try_from(req.stdin_len + 4096).unwrap_or(u32::MAX);
    let (stdin_read, stdin_write) = stdin_pipe(size)?;
    mark("launch_nul_stdin");
    let (channel, channel_client) = create_channel(&req.channel_name)?;
    mark("launch_channel");
    // openvpn takes the handle's value in decimal.
    let cmdline = format!(
        "openvpn {} --msg-channel {}",
        req.options,
        channel_client.as_raw_handle() as usize
    );
    // Only these handles reach openvpn, whatever else is inheritable in the service now.
    let process = spawn_as_user(&Spawn {
        token: &primary,
        exe: req.exe_path,
        cmdline: &cmdline,
        cwd: req.working_dir,
        priority_class: req.priority_class,
        stdio: [&stdin_read, &nul, &nul],
        inherit: &[&stdin_read, &nul, &channel_client],
        process_sd: &process_sd,
        thread_sd: &thread_sd,
    })?;
    Ok(Launched {
        process,
        stdin: stdin_write,
        channel,
    })
}
