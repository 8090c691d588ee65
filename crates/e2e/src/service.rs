//! Starting and stopping the service under test, and talking to it as a user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openvpnserv_proto::Reply;

/// A binary of this workspace, from the target directory of the running test.
///
/// The e2e stage of `scripts/test-all.sh` builds the binaries first
/// (`cargo build -p openvpnserv -p openvpnserv-e2e --bins`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // A test runs from target/<profile>/deps/, a binary from target/<profile>/.
    let here = exe.parent().expect("target directory");
    let dir = if here.ends_with("deps") {
        here.parent().expect("profile directory")
    } else {
        here
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p openvpnserv -p openvpnserv-e2e --bins`",
        path.display()
    );
    path
}

/// A directory under /tmp that other users can traverse; removed on drop.
#[derive(Debug)]
pub struct TestDir {
    /// Its path.
    pub path: PathBuf,
}

impl TestDir {
    /// Creates a fresh directory (mode 0755).
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ovse2e-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { path }
    }

    /// A path inside.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates a subdirectory with `mode`.
    pub fn mkdir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Writes a file with `mode`.
    pub fn write(&self, rel: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.join(rel);
        std::fs::write(&p, content).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running service with its own instance id (so it never meets a real service).
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// The instance id.
    pub instance: String,
    /// Its client socket.
    pub socket: PathBuf,
    /// Its settings file.
    pub settings: PathBuf,
    log: PathBuf,
}

/// A new instance id.
pub fn unique_instance() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "e2e{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Service {
    /// Starts `openvpnserv` with `settings` (TOML) for a fresh instance, logging to a file in
    /// `dir`, and waits until its socket exists.
    pub fn start(dir: &TestDir, settings: &str) -> Self {
        Self::start_with(dir, settings, &unique_instance(), |cmd| cmd)
    }

    /// Like [`Service::start`], with a chosen instance and a hook that may wrap or adjust
    /// the command (it receives `openvpnserv` with its arguments and returns what to run).
    pub fn start_with(
        dir: &TestDir,
        settings: &str,
        instance: &str,
        wrap: impl FnOnce(Command) -> Command,
    ) -> Self {
        let mut service = Self::spawn_with(dir, settings, instance, wrap);
        service.wait_ready();
        service
    }

    /// Like [`Service::start_with`], without waiting until the service is ready.
    pub fn spawn_with(
        dir: &TestDir,
        settings: &str,
        instance: &str,
        wrap: impl FnOnce(Command) -> Command,
    ) -> Self {
        let (cmd, settings_path, log) = Self::command(dir, settings, instance);
        let child = wrap(cmd).spawn().expect("start openvpnserv");
        Self {
            child: Some(child),
            instance: instance.to_owned(),
            socket: PathBuf::from(format!("/run/openvpn{instance}/service")),
            settings: settings_path,
            log,
        }
    }

    /// The command that starts `openvpnserv` for `instance` with `settings`, logging to a file
    /// in `dir`; also returns the settings and log paths.
    pub fn command(dir: &TestDir, settings: &str, instance: &str) -> (Command, PathBuf, PathBuf) {
        let settings_path = dir.write(&format!("iservice-{instance}.toml"), settings, 0o644);
        let log = dir.join(&format!("service-{instance}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary("openvpnserv"));
        cmd.args([
            "-instance",
            "interactive",
            instance,
            "--foreground",
            "--settings",
        ])
        .arg(&settings_path)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup"))
        .stderr(log_file);
        (cmd, settings_path, log)
    }

    /// Waits (up to 20 s) until the service logs that it is ready; panics if it exits first.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains(" ready ") || self.log().contains(" ready\n") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("openvpnserv exited early ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("openvpnserv did not become ready:\n{}", self.log());
    }

    /// The exit status, if the service has exited (`None` while it runs).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The service's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the service logged so far.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        strip_ansi(&raw)
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("service running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        wait_timeout(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("openvpnserv did not stop within 30 s:\n{}", self.log())
        })
    }

    /// Kills the service with SIGKILL (a crash) and reaps it.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("service running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if wait_timeout(&mut child, Duration::from_secs(15)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(format!("/run/openvpn{}", self.instance));
    }
}

/// Waits for a child with a timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lower-case hexadecimal of bytes (how the probe and the fake openvpn take raw bytes).
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A reply that does not parse, as the text it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable reply {0:?}")]
pub struct Unparsable(pub String);

/// Why the probe could not report.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe binary did not run.
    #[error("cannot run probe: {0}")]
    Spawn(std::io::Error),
    /// The probe failed (no service listening, a connection reset by a service that died).
    #[error("{0}")]
    Failed(String),
}

/// What a probe client saw: the replies in order and whether the service closed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Each reply as parsed (or the raw text when it does not parse).
    pub replies: Vec<Result<Reply, Unparsable>>,
    /// Milliseconds from sending to the first reply.
    pub first_reply_ms: Option<u64>,
    /// The service closed the connection.
    pub closed: bool,
}

impl Transcript {
    /// The first reply, which must parse.
    pub fn first(&self) -> &Reply {
        match self.replies.first() {
            Some(Ok(r)) => r,
            other => panic!("no parsable first reply: {other:?}"),
        }
    }

    /// The PID of a successful start.
    pub fn pid(&self) -> u32 {
        match self.first() {
            Reply::Pid(pid) => *pid,
            other @ Reply::Error { .. } => panic!("expected a PID reply, got {other:?}"),
        }
    }

    /// The error code of the first reply.
    pub fn code(&self) -> u32 {
        match self.first() {
            Reply::Error { code, .. } => *code,
            Reply::Pid(_) => 0,
        }
    }
}

/// How the probe behaves.
#[derive(Debug, Clone)]
pub enum Send {
    /// A startup message.
    Startup {
        /// Working directory.
        dir: String,
        /// Options.
        options: String,
        /// stdin text.
        stdin: String,
    },
    /// Raw bytes.
    Raw(Vec<u8>),
    /// Nothing at all (a silent client).
    Nothing,
}

/// Runs the `probe` binary as `command` (from [`crate::users::TestUser::command`] or a root
/// `Command`), sends `what` to `socket` and collects replies until the service closes the
/// connection, `linger` passes without a reply, or `disconnect_after_first` says to leave.
pub fn probe(
    command: Command,
    socket: &Path,
    what: &Send,
    linger: Duration,
    disconnect_after_first: bool,
) -> Transcript {
    try_probe(command, socket, what, linger, disconnect_after_first)
        .unwrap_or_else(|e| panic!("probe failed: {e}"))
}

/// Like [`probe`], but a probe that fails (no service listening, a connection reset by a
/// service that died) is an error rather than a panic.
pub fn try_probe(
    mut command: Command,
    socket: &Path,
    what: &Send,
    linger: Duration,
    disconnect_after_first: bool,
) -> Result<Transcript, ProbeError> {
    command
        .arg(socket)
        .arg(linger.as_millis().to_string())
        .arg(if disconnect_after_first {
            "leave"
        } else {
            "stay"
        });
    match what {
        Send::Startup {
            dir,
            options,
            stdin,
        } => {
            command.arg("startup").arg(dir).arg(options).arg(stdin);
        }
        Send::Raw(bytes) => {
            command.arg("raw").arg(to_hex(bytes));
        }
        Send::Nothing => {
            command.arg("nothing");
        }
    }
    let out = command.output().map_err(ProbeError::Spawn)?;
    if !out.status.success() {
        return Err(ProbeError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let mut t = Transcript {
        replies: Vec::new(),
        first_reply_ms: None,
        closed: false,
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(json) = line.strip_prefix("REPLY ") {
            let (ms, text): (u64, String) = serde_json::from_str(json).expect("probe output");
            t.first_reply_ms.get_or_insert(ms);
            t.replies
                .push(Reply::parse(&text).map_err(|_| Unparsable(text)));
        } else if line.starts_with("CLOSED") {
            t.closed = true;
        }
    }
    Ok(t)
}

/// The probe as a given user.
pub fn probe_command(user: &crate::users::TestUser) -> Command {
    user.command(binary("probe"))
}

/// The probe as root.
pub fn root_probe_command() -> Command {
    Command::new(binary("probe"))
}

/// The service command `svc` (from [`Service::command`]) run inside `ns`, with its output
/// appended to `log` and `RUST_LOG` set to `level`.
pub fn in_namespace(ns: &crate::netns::Netns, svc: &Command, log: &Path, level: &str) -> Command {
    let mut wrapped = ns.command(svc.get_program());
    wrapped.args(svc.get_args());
    let file = std::fs::File::options()
        .append(true)
        .open(log)
        .expect("service log");
    wrapped
        .env("RUST_LOG", level)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file);
    wrapped
}

/// A seqpacket connection to `path`, as a client makes.
pub fn connect_seqpacket(path: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    Ok(fd)
}
