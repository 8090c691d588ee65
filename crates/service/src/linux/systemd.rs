//! openvpn in a systemd unit of its own, per session (`docs/LINUX.md`, "What runs where").
//!
//! Under systemd the service runs in a sandbox (read-only system, private `/tmp`, a system
//! call filter, a small capability set). A child it forked would inherit all of it, and
//! the user's openvpn, its scripts and the files it names would then see a different
//! machine than the user does (`PrivateTmp`, `ProtectSystem`, `PrivateDevices` and
//! `SystemCallFilter` each broke sessions when tried). So openvpn is started by systemd
//! itself, through its D-Bus API on the system bus (connected when first needed, so a bus
//! that starts after the service is used; the manager's private socket would not need the
//! bus, but its signals carry a sender zbus 5 rejects with a panic): a transient service
//! `openvpnserv<id>-session-<n>.service`, as the user, outside our sandbox, in a cgroup of its
//! own, with its output on a pipe to the service (`output.rs`). It is bound to the service's unit
//! (`BindsTo=`, `After=`): on stop systemd ends the sessions first, while the service still
//! answers their hooks, then the service.
//!
//! The channel cannot be given to a unit on the systems we support (`ExtraFileDescriptors=`
//! came with systemd 257, Debian 12 has 252), so the unit's standard input is one end of a
//! socket pair and its program is our launcher ([`launcher_main`], `openvpnserv-hook
//! --launch-openvpn`): it receives the channel over stdin (`SCM_RIGHTS`), puts it on fd 3,
//! enters the working directory as the user, says whether that worked, and becomes openvpn.
//! What the service then writes on the socket is openvpn's stdin.

use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncReadExt;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{self, OwnedValue, Value};
use zbus_systemd::systemd1::{ManagerProxy, ServiceProxy};

use super::launch::{LaunchSpec, PATH};
use super::net::CHANNEL_FD;

/// The launcher's first argument.
pub const LAUNCH_ARG: &str = "--launch-openvpn";
/// How long the launcher may take to start and report.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long systemd gives a session's openvpn after SIGTERM (its down sequence, which the
/// service answers) before SIGKILL, when it stops the session's unit.
pub const SESSION_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on each call to systemd.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session's unit could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// A call to systemd failed.
    #[error("systemd: {what}: {source}")]
    Bus {
        /// What was asked.
        what: String,
        /// The error.
        source: Box<zbus::Error>,
    },
    /// systemd did not answer in time.
    #[error("systemd did not answer within {CALL_TIMEOUT:?} ({0})")]
    Timeout(String),
    /// A local step (socket pair, pidfd) failed.
    #[error("{what}: {source}")]
    Os {
        /// What was attempted.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The launcher could not prepare openvpn (the errno it reported).
    #[error("{0}")]
    Launch(io::Error),
}

impl SystemdError {
    /// The OS error to report to the client, if there is one.
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Self::Launch(e) | Self::Os { source: e, .. } => e.raw_os_error(),
            Self::Timeout(_) => Some(libc::ETIMEDOUT),
            Self::Bus { .. } => None,
        }
    }
}

fn bus(what: impl Into<String>) -> impl FnOnce(zbus::Error) -> SystemdError {
    let what = what.into();
    move |source| SystemdError::Bus {
        what,
        source: Box::new(source),
    }
}

async fn bounded<T>(
    what: &str,
    f: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, SystemdError> {
    tokio::time::timeout(CALL_TIMEOUT, f)
        .await
        .map_err(|_| SystemdError::Timeout(what.to_owned()))?
        .map_err(bus(what))
}

/// A unit name part from an instance id (`[A-Za-z0-9_.$-]`): `$` is not allowed in unit
/// names and becomes `\x24`, as `systemd-escape` writes it.
fn escape(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c.to_string()
            } else {
                format!("\\x{:02x}", c as u32)
            }
        })
        .collect()
}

/// The service's handle on systemd: present when it runs as a systemd unit.
#[derive(Debug)]
pub struct Systemd {
    /// The system bus, once connected.
    conn: tokio::sync::Mutex<Option<zbus::Connection>>,
    /// The service's own unit (sessions are bound to it).
    own_unit: String,
    /// Session units are named this plus the session number.
    prefix: String,
    /// The launcher (`openvpnserv-hook`) the units run.
    launcher: std::path::PathBuf,
}

/// What a session's unit runs.
#[derive(Debug)]
pub struct UnitSpec<'a> {
    /// The session number.
    pub session: u64,
    /// openvpn, its arguments, and as whom.
    pub run: &'a LaunchSpec,
    /// The write end of the session's output pipe: the unit's stdout and stderr.
    pub output: OwnedFd,
}

impl Systemd {
    /// The handle when this process runs as a systemd unit (`INVOCATION_ID` is set, systemd
    /// booted the system and the process's cgroup names a unit); `None` otherwise (a service started by hand forks openvpn
    /// itself). The bus is connected when first needed.
    pub fn connect(instance_id: &str, launcher: std::path::PathBuf) -> Option<Self> {
        // Started by systemd (not merely inheriting its variable), on a system it booted.
        std::env::var_os("INVOCATION_ID")?;
        if !std::path::Path::new("/run/systemd/system").is_dir() {
            return None;
        }
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own_unit = own_unit(&cgroup)?;
        Some(Self {
            conn: tokio::sync::Mutex::new(None),
            own_unit,
            prefix: format!("openvpnserv{}-session-", escape(instance_id)),
            launcher,
        })
    }

    /// The system bus (connecting now if not yet, or again after it went away).
    async fn bus(&self) -> Result<zbus::Connection, SystemdError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(CALL_TIMEOUT, zbus::Connection::system())
            .await
            .map_err(|_| SystemdError::Timeout("connecting to the system bus".into()))?
            .map_err(bus("connecting to the system bus"))?;
        *conn = Some(c.clone());
        Ok(c)
    }

    /// Forgets the bus after an error, so that the next call connects again.
    async fn forget_bus(&self) {
        *self.conn.lock().await = None;
    }

    /// The service's own unit.
    pub fn own_unit(&self) -> &str {
        &self.own_unit
    }

    async fn manager(&self) -> Result<ManagerProxy<'static>, SystemdError> {
        let conn = self.bus().await?;
        ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(bus("manager proxy"))
    }

    async fn service(
        &self,
        path: zvariant::OwnedObjectPath,
    ) -> Result<ServiceProxy<'static>, SystemdError> {
        let conn = self.bus().await?;
        ServiceProxy::builder(&conn)
            .path(path)
            .map_err(bus("unit path"))?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(bus("service proxy"))
    }

    /// Stops the session units a previous run of this instance left (a service killed with
    /// SIGKILL) and forgets failed ones, before its journals are replayed: their openvpn
    /// has no channel any more, and nothing of theirs may outlive the replay.
    pub async fn stop_leftovers(&self) -> Result<usize, SystemdError> {
        let manager = self.manager().await?;
        let pattern = format!("{}*.service", self.prefix);
        let units = bounded(
            "ListUnitsByPatterns",
            manager.list_units_by_patterns(Vec::new(), vec![pattern]),
        )
        .await?;
        let mut stopped = 0;
        for u in &units {
            let name = u.0.clone();
            let active = u.3.as_str();
            if active == "failed" {
                let _ = bounded("ResetFailedUnit", manager.reset_failed_unit(name)).await;
                continue;
            }
            if active == "inactive" {
                continue;
            }
            tracing::info!(unit = %name, "stopping a session unit a previous run left");
            let _ = bounded(
                "StopUnit",
                manager.stop_unit(name.clone(), "replace".into()),
            )
            .await;
            stopped += 1;
        }
        // Wait (bounded) until they are gone: a stopping openvpn's hooks reach nobody, so
        // its down sequence is short.
        let deadline = tokio::time::Instant::now() + SESSION_STOP_TIMEOUT + Duration::from_secs(5);
        while stopped > 0 && tokio::time::Instant::now() < deadline {
            let left = bounded(
                "ListUnitsByPatterns",
                manager.list_units_by_patterns(
                    vec!["active".into(), "activating".into(), "deactivating".into()],
                    vec![format!("{}*.service", self.prefix)],
                ),
            )
            .await?;
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(stopped)
    }

    /// Starts openvpn in the session's unit; hands it `channel` (as fd 3) and returns once
    /// it runs as the user in its working directory.
    pub async fn start(
        &self,
        spec: UnitSpec<'_>,
        channel: OwnedFd,
    ) -> Result<SessionUnit, SystemdError> {
        let name = format!("{}{}.service", self.prefix, spec.session);
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| SystemdError::Os {
            what: "creating openvpn's stdin",
            source: e.into(),
        })?;
        let run = spec.run;
        let stderr = spec.output.try_clone().map_err(|source| SystemdError::Os {
            what: "duplicating openvpn's output pipe",
            source,
        })?;
        let mut argv = vec![
            "openvpnserv-hook".to_owned(),
            LAUNCH_ARG.to_owned(),
            run.cwd.clone(),
            run.exe.clone(),
        ];
        argv.extend(run.args.iter().cloned());
        let groups: Vec<String> = run.groups.iter().map(u32::to_string).collect();
        let env = vec![
            format!("HOME={}", run.home),
            format!("USER={}", run.user),
            format!("LOGNAME={}", run.user),
            format!("SHELL={}", run.shell),
            format!("PATH={PATH}"),
            format!(
                "LANG={}",
                std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into())
            ),
        ];
        let bind = vec![self.own_unit.clone()];
        let props: Vec<(String, OwnedValue)> = vec![
            prop(
                "Description",
                format!(
                    "openvpn of {} (uid {}), session {} of {}",
                    run.user, run.uid, spec.session, self.own_unit
                ),
            )?,
            prop("Type", "exec")?,
            prop(
                "ExecStart",
                vec![(self.launcher.display().to_string(), argv, false)],
            )?,
            prop("User", run.uid.to_string())?,
            prop("Group", run.gid.to_string())?,
            prop("SupplementaryGroups", groups)?,
            prop("Environment", env)?,
            prop("Nice", run.nice)?,
            prop("StandardInputFileDescriptor", zvariant::Fd::from(theirs))?,
            // openvpn's output goes to the service (`output.rs`), which keeps its last lines
            // for the control socket's `log`.
            prop(
                "StandardOutputFileDescriptor",
                zvariant::Fd::from(spec.output),
            )?,
            prop("StandardErrorFileDescriptor", zvariant::Fd::from(stderr))?,
            prop("SyslogIdentifier", "openvpn")?,
            // SIGTERM to openvpn only; whatever its scripts left gets SIGKILL after it.
            prop("KillMode", "mixed")?,
            prop("TimeoutStopUSec", SESSION_STOP_TIMEOUT.as_micros() as u64)?,
            // The unit stays (as active/exited or failed) after openvpn exits, so that its
            // exit status can be read; the session then stops or resets it.
            prop("RemainAfterExit", true)?,
            prop("BindsTo", bind.clone())?,
            prop("After", bind)?,
        ];
        let manager = self.manager().await?;
        let started = bounded(
            "StartTransientUnit",
            manager.start_transient_unit(name.clone(), "fail".into(), props, Vec::new()),
        )
        .await;
        if let Err(e) = started {
            if matches!(e, SystemdError::Bus { .. } | SystemdError::Timeout(_)) {
                self.forget_bus().await;
            }
            return Err(e);
        }
        let mut unit = SessionUnit {
            name,
            conn: self.bus().await?,
            pid: 0,
            pidfd: None,
            stdin: None,
            status: None,
        };
        match unit.handshake(self, ours, &channel).await {
            Ok(()) => Ok(unit),
            Err(e) => {
                unit.release().await;
                Err(e)
            }
        }
    }
}

fn prop<'a, T: Into<Value<'a>>>(name: &str, v: T) -> Result<(String, OwnedValue), SystemdError> {
    let owned = OwnedValue::try_from(v.into()).map_err(|e| SystemdError::Os {
        what: "encoding a unit property",
        source: io::Error::other(e),
    })?;
    Ok((name.to_owned(), owned))
}

/// The session's unit is no longer loaded.
#[derive(Debug)]
struct Gone;

/// A session's openvpn running in its unit.
#[derive(Debug)]
pub struct SessionUnit {
    name: String,
    conn: zbus::Connection,
    pid: u32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    stdin: Option<tokio::net::UnixStream>,
    status: Option<ExitStatus>,
}

impl SessionUnit {
    /// openvpn's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn manager(&self) -> Option<ManagerProxy<'static>> {
        ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()
    }

    /// The unit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// openvpn's stdin (once).
    pub fn take_stdin(&mut self) -> Option<tokio::net::UnixStream> {
        self.stdin.take()
    }

    async fn handshake(
        &mut self,
        systemd: &Systemd,
        ours: OwnedFd,
        channel: &OwnedFd,
    ) -> Result<(), SystemdError> {
        let os = |what: &'static str| {
            move |e: nix::Error| SystemdError::Os {
                what,
                source: e.into(),
            }
        };
        // The socket is empty, so this one-byte message with the fd never blocks.
        let fds = [channel.as_raw_fd()];
        sendmsg::<()>(
            ours.as_raw_fd(),
            &[IoSlice::new(b"C")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(os("handing the channel to openvpn's unit"))?;
        let std_stream = std::os::unix::net::UnixStream::from(ours);
        std_stream
            .set_nonblocking(true)
            .map_err(|source| SystemdError::Os {
                what: "openvpn's stdin",
                source,
            })?;
        let mut stream =
            tokio::net::UnixStream::from_std(std_stream).map_err(|source| SystemdError::Os {
                what: "openvpn's stdin",
                source,
            })?;
        let mut answer = [0u8; 4];
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut answer)).await;
        if !matches!(read, Ok(Ok(_))) {
            let why = self.failure(systemd).await;
            return Err(SystemdError::Launch(io::Error::other(format!(
                "openvpn's unit {} did not start: {why}",
                self.name
            ))));
        }
        let errno = i32::from_le_bytes(answer);
        if errno != 0 {
            return Err(SystemdError::Launch(io::Error::from_raw_os_error(errno)));
        }
        self.stdin = Some(stream);
        let manager = systemd.manager().await?;
        let path = bounded("GetUnit", manager.get_unit(self.name.clone())).await?;
        let service = systemd.service(path).await?;
        self.pid = bounded("MainPID", service.main_pid()).await?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid as libc::pid_t, 0) };
        if raw < 0 {
            return Err(SystemdError::Os {
                what: "pidfd_open for openvpn",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
        // SAFETY: an OwnedFd keeps its one fd open, unchanged, until the AsyncFd drops it.
        let watched =
            unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
        self.pidfd = Some(watched.map_err(|e| SystemdError::Os {
            what: "watching openvpn",
            source: e.into(),
        })?);
        Ok(())
    }

    /// Why the unit failed, as systemd says it.
    async fn failure(&self, systemd: &Systemd) -> String {
        let Ok(manager) = systemd.manager().await else {
            return "systemd cannot be asked".into();
        };
        let Ok(path) = bounded("GetUnit", manager.get_unit(self.name.clone())).await else {
            return "the unit is gone".into();
        };
        let Ok(service) = systemd.service(path).await else {
            return "the unit is gone".into();
        };
        let result = bounded("Result", service.result())
            .await
            .unwrap_or_default();
        let status = bounded("ExecMainStatus", service.exec_main_status())
            .await
            .unwrap_or_default();
        format!(
            "result {result}, exit status {status} (see journalctl -u {})",
            self.name
        )
    }

    /// Waits for openvpn to exit and returns how it ended (cancel-safe). When systemd
    /// stopped the unit and let it go before its status could be read, that is reported as
    /// an exit by SIGTERM, which is how systemd stops it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if let Some(pidfd) = &self.pidfd {
            let _ready = pidfd.readable().await?;
        }
        let status = self.exit_status().await;
        self.status = Some(status);
        Ok(status)
    }

    async fn exit_status(&self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match self.read_status().await {
                Ok(Some(status)) => return status,
                // Stopped by systemd (the service stops) and already let go: SIGTERM.
                Err(Gone) => return ExitStatus::from_raw(libc::SIGTERM),
                Ok(None) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return ExitStatus::from_raw(libc::SIGTERM);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status once systemd has recorded it; `None` while it has not (or cannot be
    /// asked), [`Gone`] when the unit is no longer loaded.
    async fn read_status(&self) -> Result<Option<ExitStatus>, Gone> {
        let Some(manager) = self.manager().await else {
            return Ok(None);
        };
        let path = match bounded("GetUnit", manager.get_unit(self.name.clone())).await {
            Ok(path) => path,
            Err(SystemdError::Bus { source, .. }) if matches!(&*source, zbus::Error::MethodError(name, _, _) if name.as_str().ends_with("NoSuchUnit")) =>
            {
                return Err(Gone);
            }
            Err(_) => return Ok(None),
        };
        Ok(self.status_of(path).await)
    }

    async fn status_of(&self, path: zvariant::OwnedObjectPath) -> Option<ExitStatus> {
        let service = ServiceProxy::builder(&self.conn)
            .path(path)
            .ok()?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()?;
        if bounded("ExecMainExitTimestamp", service.exec_main_exit_timestamp())
            .await
            .ok()?
            == 0
        {
            return None;
        }
        let code = bounded("ExecMainCode", service.exec_main_code())
            .await
            .ok()?;
        let value = bounded("ExecMainStatus", service.exec_main_status())
            .await
            .ok()?;
        Some(match code {
            // CLD_EXITED: an exit code; CLD_KILLED, CLD_DUMPED: a signal.
            1 => ExitStatus::from_raw((value & 0xff) << 8),
            _ => ExitStatus::from_raw(value & 0x7f),
        })
    }

    /// Sends `signal` to openvpn (the unit's main process) through systemd: the service
    /// itself has no right to signal other users' processes (no `CAP_KILL`).
    pub async fn signal(&self, signal: i32) {
        let Some(manager) = self.manager().await else {
            return;
        };
        if let Err(e) = bounded(
            "KillUnit",
            manager.kill_unit(self.name.clone(), "main".into(), signal),
        )
        .await
        {
            tracing::debug!("signalling {}: {e}", self.name);
        }
    }

    /// Ends the unit: stops it (which also ends what openvpn's scripts left running) and
    /// forgets a failed one, so that nothing of the session stays loaded.
    pub async fn release(&self) {
        let Some(manager) = self.manager().await else {
            return;
        };
        let _ = bounded(
            "StopUnit",
            manager.stop_unit(self.name.clone(), "replace".into()),
        )
        .await;
        let _ = bounded(
            "ResetFailedUnit",
            manager.reset_failed_unit(self.name.clone()),
        )
        .await;
    }
}

/// The launcher, run by systemd as the user in the session's unit: `openvpnserv-hook
/// --launch-openvpn <working dir> <openvpn> <arguments…>`, with the service's socket on
/// stdin. Takes the channel from stdin onto fd 3, enters the working directory, reports
/// the errno of that (0 when it worked) on stdin, and executes openvpn (as `openvpn`).
pub fn launcher_main(args: &[String]) -> std::process::ExitCode {
    match launch(args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("openvpnserv-hook {LAUNCH_ARG}: {e}");
            std::process::ExitCode::from(127)
        }
    }
}

/// Why the launcher could not become openvpn.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    #[error("usage: {LAUNCH_ARG} <working directory> <openvpn> [arguments…] (run by openvpnserv through systemd)")]
    Usage,
    #[error("{what}: {source}")]
    Os { what: String, source: nix::Error },
    #[error("an argument contains a NUL byte")]
    Nul,
    #[error("the service sent no channel on stdin")]
    NoChannel,
}

fn launch(args: &[String]) -> Result<std::convert::Infallible, LaunchError> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let [cwd, exe, rest @ ..] = args else {
        return Err(LaunchError::Usage);
    };
    let os = |what: &str| {
        let what = what.to_owned();
        move |source| LaunchError::Os { what, source }
    };
    let stdin = 0;
    // SAFETY: fd 0 is the socket systemd put there for this process; borrowed, not closed.
    let stdin_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stdin) };
    let timeout = nix::sys::time::TimeVal::new(HANDSHAKE_TIMEOUT.as_secs() as _, 0);
    nix::sys::socket::setsockopt(
        &stdin_fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &timeout,
    )
    .map_err(os("stdin is not the service's socket"))?;
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut byte)];
    let msg = recvmsg::<()>(
        stdin,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(os("receiving the channel"))?;
    let mut channel = None;
    for c in msg.cmsgs().map_err(os("reading the channel message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            channel = fds.first().copied();
        }
    }
    let channel = channel.ok_or(LaunchError::NoChannel)?;
    if channel == CHANNEL_FD {
        fcntl(
            // SAFETY: the fd just received belongs to this process.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(channel) },
            FcntlArg::F_SETFD(FdFlag::empty()),
        )
        .map_err(os("the channel"))?;
    } else {
        // SAFETY: plain dup2 on fds of this process; dup2 leaves fd 3 without close-on-exec.
        if unsafe { libc::dup2(channel, CHANNEL_FD) } == -1 {
            return Err(os("putting the channel on fd 3")(nix::Error::last()));
        }
        // SAFETY: the received fd is ours and no longer needed.
        unsafe { libc::close(channel) };
    }
    let to_c = |s: &str| CString::new(s).map_err(|_| LaunchError::Nul);
    let cwd_c = to_c(cwd)?;
    let errno = match nix::unistd::chdir(cwd_c.as_c_str()) {
        Ok(()) => 0,
        Err(e) => e as i32,
    };
    nix::unistd::write(stdin_fd, &errno.to_le_bytes()).map_err(os("answering the service"))?;
    if errno != 0 {
        return Err(os(&format!("entering {cwd}"))(nix::Error::from_raw(errno)));
    }
    let exe_c = to_c(exe)?;
    let mut exec_argv = vec![to_c("openvpn")?];
    for a in rest {
        exec_argv.push(to_c(a)?);
    }
    let err = nix::unistd::execv(&exe_c, &exec_argv).unwrap_err();
    Err(os(&format!("executing {exe}"))(err))
}

/// The unit a process runs in, from its `/proc/<pid>/cgroup` (the unified hierarchy's line,
/// or systemd's own in a hybrid one).
fn own_unit(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .filter(|l| l.starts_with("0::") || l.contains(":name=systemd:"))
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_unit_comes_from_the_cgroup() {
        let hybrid = "12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/openvpnserv@a.service\n0::/system.slice/openvpnserv@a.service\n";
        assert_eq!(own_unit(hybrid).as_deref(), Some("openvpnserv@a.service"));
        assert_eq!(
            own_unit("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
    }

    #[test]
    fn unit_names_escape_what_systemd_does_not_take() {
        assert_eq!(escape(""), "");
        assert_eq!(escape("e2e.1_x-y"), "e2e.1_x-y");
        assert_eq!(escape("a$b"), "a\\x24b");
    }
}
