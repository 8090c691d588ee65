//! One client connection, from accept to clean-up (spec §2–§4, §6 on Linux).
//!
//! accept → identity (kernel) → session slot → startup message within 2 s → policy →
//! network preparation → openvpn as the caller → PID reply → stdin → serve the channel until
//! openvpn exits (or the channel ends, or the service stops) → exit-code reply → undo.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use openvpnserv_core::limits::{LimitError, Limits, Slot};
use openvpnserv_policy::path::linux::{FsCaller, LinuxConfigCheck};
use openvpnserv_policy::{decide_linux, AuthSettings, Decision};
use openvpnserv_proto::channel::Codec;
use openvpnserv_proto::codes::{self, ERROR_ACCESS_DENIED, ERROR_CANT_WAIT, ERROR_STARTUP_DATA};
use openvpnserv_proto::startup::{FUNCTION_LABEL, MAX_UNITS, TIMEOUT_LABEL};
use openvpnserv_proto::{Reply, StartupMessage};
use openvpnserv_settings::{Instance, Settings};
use tokio::io::AsyncWriteExt;
use tokio_seqpacket::UnixSeqpacket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use zeroize::Zeroize;

use super::control::{now, sysfs_counters};
use super::fs::HostFs;
use super::identity::{peer_credentials, resolve, GidMembership, PeerCred, PeerIdentity};
use super::launch::{spawn, LaunchSpec};
use super::net::{Network, NetworkSession, SessionInfo};
use super::offload::{self, Offload, OffloadError};
use super::openvpn::Openvpn;
use super::output::{self, Reader};
use super::registry::{Registry, Started};
use super::systemd::{Systemd, UnitSpec};

/// Time a client has to send its startup message (spec §2.3).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Grace given to openvpn before it is killed (spec §6.3, §6.4).
pub const GRACE: Duration = Duration::from_secs(2);
/// How long a stopping service lets openvpn run its down sequence after SIGTERM, answering
/// its hooks meanwhile, before it kills it: upstream's grace (spec §6.4). Under systemd the
/// session units are stopped first, with their own longer bound (`systemd::SESSION_STOP_TIMEOUT`).
pub const STOP_GRACE: Duration = GRACE;
/// Bound on every write to the client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// What every session shares.
pub struct Shared<N> {
    /// Effective settings.
    pub settings: Settings,
    /// The instance.
    pub instance: Instance,
    /// The network layer.
    pub network: N,
    /// Session limits.
    pub limits: Limits,
    /// Cancelled when the service stops.
    pub shutdown: CancellationToken,
    /// Blocking work (paths, the user database, fork) off the event loop.
    pub offload: Offload,
    /// systemd, when the service runs under it: openvpn then runs in a unit per session.
    pub systemd: Option<Systemd>,
    /// The connections, as the control socket shows them.
    pub registry: Arc<Registry>,
    next_id: AtomicU64,
    refusals: RateLimited,
}

/// Counts events and lets the caller log at most once per second, with the count.
#[derive(Debug)]
struct RateLimited {
    state: std::sync::Mutex<(std::time::Instant, u64)>,
}

impl RateLimited {
    fn new() -> Self {
        let long_ago = std::time::Instant::now()
            .checked_sub(Duration::from_secs(60))
            .unwrap_or_else(std::time::Instant::now);
        Self {
            state: std::sync::Mutex::new((long_ago, 0)),
        }
    }

    fn note(&self, log: impl FnOnce(u64)) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1 += 1;
        if state.0.elapsed() >= Duration::from_secs(1) {
            log(state.1);
            *state = (std::time::Instant::now(), 0);
        }
    }
}

impl<N: Network> Shared<N> {
    /// Shared state for a service run.
    pub fn new(
        settings: Settings,
        instance: Instance,
        network: N,
        shutdown: CancellationToken,
    ) -> Self {
        let limits = Limits::new(
            settings.max_sessions as usize,
            settings.max_sessions_per_user as usize,
        );
        Self {
            settings,
            instance,
            network,
            limits,
            shutdown,
            offload: Offload::default(),
            systemd: None,
            registry: Arc::new(Registry::default()),
            next_id: AtomicU64::new(1),
            refusals: RateLimited::new(),
        }
    }
}

impl<N> Shared<N> {
    /// Numbers the sessions from `first` on (never lower than they already are).
    pub fn number_sessions_from(&self, first: u64) {
        self.next_id.fetch_max(first, Ordering::Relaxed);
    }
}

/// Sends a reply, bounded in time; a client that went away is not an error for the session.
async fn send_reply(conn: &UnixSeqpacket, reply: &Reply) {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.send(&reply.encode())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => debug!("could not send the reply to the client: {e}"),
        Err(_) => debug!("the client did not take the reply within {WRITE_TIMEOUT:?}"),
    }
}

/// A connection that passed admission: identified, with a session slot.
pub struct Admitted {
    conn: UnixSeqpacket,
    cred: PeerCred,
    slot: Slot,
    id: u64,
}

/// Admits an accepted connection, synchronously in the accept loop: the peer's credentials
/// and a session slot. A refused connection is answered and closed right here, without a
/// task or a timer, so that a flood of connections from one user costs a few system calls
/// each and cannot crowd out other users' sessions.
pub fn admit<N>(shared: &Shared<N>, conn: UnixSeqpacket) -> Option<Admitted> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let cred = match peer_credentials(&conn) {
        Ok(cred) => cred,
        Err(e) => {
            warn!(
                session = id,
                "refusing a client that cannot be identified: {e}"
            );
            return None;
        }
    };
    match shared.limits.acquire(cred.uid) {
        Ok(slot) => Some(Admitted {
            conn,
            cred,
            slot,
            id,
        }),
        Err(limit) => {
            shared.refusals.note(|count| {
                warn!(
                    uid = cred.uid,
                    client_pid = cred.pid.unwrap_or(0),
                    "refused: {limit} ({count} refusals in the last second)"
                );
            });
            let text = match limit {
                LimitError::Total { .. } => "Too many concurrent clients".to_owned(),
                LimitError::PerUser { limit } => format!(
                    "Too many sessions for uid {} (limit {limit}, max_sessions_per_user); end one of them or ask an administrator to raise the limit",
                    cred.uid
                ),
            };
            refuse_now(&conn, &Reply::error(ERROR_CANT_WAIT, text, ""));
            None
        }
    }
}

/// Answers without waiting and closes.
fn refuse_now(conn: &UnixSeqpacket, reply: &Reply) {
    send_now(conn, &reply.encode());
}

/// Sends one message without waiting, to a connection about to be closed. A message already
/// queued is read first: closing a unix socket with unread data makes the client's next
/// read fail with `ECONNRESET`, and it would lose the answer.
pub(super) fn send_now(conn: &UnixSeqpacket, message: &[u8]) {
    let fd = conn.as_raw_fd();
    let mut one = [0u8; 1];
    while matches!(recv(fd, &mut one, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC), Ok(n) if n > 0)
    {
    }
    let _ = send(fd, message, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL);
}

/// Serves an admitted connection to the end.
pub async fn serve<N: Network>(shared: Arc<Shared<N>>, admitted: Admitted) {
    let span = tracing::info_span!(
        "session",
        id = admitted.id,
        uid = admitted.cred.uid,
        client_pid = admitted.cred.pid.unwrap_or(0),
        user = tracing::field::Empty,
    );
    run(shared, admitted).instrument(span).await;
}

async fn run<N: Network>(shared: Arc<Shared<N>>, admitted: Admitted) {
    let Admitted {
        conn,
        cred,
        slot: _slot,
        id,
    } = admitted;
    let Some(mut startup) = read_startup(&conn).await else {
        return;
    };
    let (identity, argv) = match check(&shared, cred, &startup).await {
        Ok(checked) => checked,
        Err(reply) => {
            startup.stdin.zeroize();
            send_reply(&conn, &reply).await;
            return;
        }
    };

    let info = SessionInfo {
        id,
        user: identity.session_user(),
        user_args: argv.clone(),
    };
    let (mut net, extra) = match shared.network.prepare(&info).await {
        Ok(prepared) => prepared,
        Err(e) => {
            warn!("network preparation failed: {e}");
            startup.stdin.zeroize();
            send_reply(&conn, &Reply::error(e.code, e.function, e.message)).await;
            return;
        }
    };

    let config = config_path(&argv, &startup.working_dir);
    let started =
        start_with_output(&shared, id, &identity, &startup.working_dir, argv, extra).await;
    let (mut child, channel, output) = match started {
        Ok(started) => started,
        Err(reply) => {
            startup.stdin.zeroize();
            send_reply(&conn, &reply).await;
            net.cleanup().await;
            return;
        }
    };
    let pid = child.pid();
    net.started(pid);
    let (stop, reader) = register(&shared, id, &identity, config, &child, &net, output);
    send_reply(&conn, &Reply::Pid(pid)).await;

    // stdin: the third string as UTF-8, written once; the pipe stays open for the session.
    let mut stdin_bytes = std::mem::take(&mut startup.stdin).into_bytes();
    let stdin = child.take_stdin();
    let stdin = match stdin {
        Some(mut pipe) => {
            if !stdin_bytes.is_empty() {
                match tokio::time::timeout(WRITE_TIMEOUT, pipe.write_all(&stdin_bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!("could not write openvpn's stdin: {e}"),
                    Err(_) => warn!("openvpn did not take its stdin within {WRITE_TIMEOUT:?}"),
                }
            }
            Some(pipe)
        }
        None => None,
    };
    stdin_bytes.zeroize();

    let end = serve_channel(&shared, id, &conn, &mut child, &channel, &mut net, &stop).await;
    let (status, late) = finish(&mut child, end).await;
    if let Some(reader) = reader {
        reader.finish().await;
    }
    let code = status.map(exit_code);
    log_exit(code, shared.registry.last_line(id));
    let bytes = net.view().tun.as_deref().and_then(sysfs_counters);
    shared
        .registry
        .exited(id, code.map(|c| c as i32), bytes, now());
    child.release().await;
    drop(stdin);
    drop(channel);
    net.cleanup().await;
    if let Some(code) = code.filter(|&c| c != 0 && late) {
        send_reply(&conn, &Reply::exit_error(code)).await;
    }
    info!("session ended");
}

/// Opens openvpn's output pipe and starts openvpn with it; returns openvpn, the channel and
/// the pipe's read end, or the reply to send.
async fn start_with_output<N>(
    shared: &Shared<N>,
    id: u64,
    identity: &PeerIdentity,
    working_dir: &str,
    argv: Vec<String>,
    extra: Vec<String>,
) -> Result<(Openvpn, UnixSeqpacket, OwnedFd), Reply> {
    let (read, write) = output::pipe().map_err(|e| {
        warn!("cannot create openvpn's output pipe: {e}");
        Reply::error(
            codes::errno::reply_code(e.raw_os_error()),
            "CreateProcessAsUser",
            format!("cannot create openvpn's output pipe: {e}"),
        )
    })?;
    let (child, channel) =
        start_openvpn(shared, id, identity, working_dir, argv, extra, write).await?;
    Ok((child, channel, read))
}

/// Lists the started session for the control socket and starts reading openvpn's output;
/// returns the token that stops the session (cancelled by the service's stop too) and the
/// output's reader.
fn register<N: Network>(
    shared: &Shared<N>,
    id: u64,
    identity: &PeerIdentity,
    config: String,
    child: &Openvpn,
    net: &N::Session,
    output: OwnedFd,
) -> (CancellationToken, Option<Reader>) {
    let pid = child.pid();
    let stop = shared.shutdown.child_token();
    let name = shared.registry.register(
        Started {
            id,
            uid: identity.uid,
            user: identity.name.clone(),
            config,
            pid,
            stop: stop.clone(),
        },
        now(),
    );
    shared.registry.network(id, net.view(), now());
    let reader = Reader::start(Arc::clone(&shared.registry), id, output)
        .inspect_err(|e| warn!("cannot read openvpn's output: {e}"))
        .ok();
    match child {
        Openvpn::Unit(u) => {
            info!(openvpn_pid = pid, unit = %u.name(), connection = %name, "openvpn started");
        }
        Openvpn::Child(_) => info!(openvpn_pid = pid, connection = %name, "openvpn started"),
    }
    (stop, reader)
}

/// The config file openvpn was started with (the last `--config`), as the policy resolved
/// it, absolute.
fn config_path(argv: &[String], working_dir: &str) -> String {
    argv.windows(2)
        .rev()
        .find(|w| w[0] == "--config")
        .map(|w| Path::new(working_dir).join(&w[1]).display().to_string())
        .unwrap_or_default()
}

/// Reads and decodes the startup message, answering errors itself.
async fn read_startup(conn: &UnixSeqpacket) -> Option<StartupMessage> {
    // One more unit than allowed, so that anything longer decodes as too long. Allocated
    // only once the client has sent something, so that silent clients cost little.
    let received = tokio::time::timeout(STARTUP_TIMEOUT, async {
        // Dropping the readiness guard keeps the readiness for the read below.
        drop(conn.as_async_fd().readable().await?);
        let mut buf = vec![0u8; (MAX_UNITS + 1) * 2];
        let n = conn.recv(&mut buf).await?;
        Ok::<_, std::io::Error>((buf, n))
    })
    .await;
    let (mut buf, n) = match received {
        Err(_) => {
            warn!("timeout waiting for startup data");
            send_reply(conn, &Reply::error(ERROR_STARTUP_DATA, TIMEOUT_LABEL, "")).await;
            return None;
        }
        Ok(Err(e)) => {
            warn!("could not read startup data: {e}");
            return None;
        }
        Ok(Ok(read)) => read,
    };
    if n == 0 {
        // A client that connected and closed (or sent an empty message): cheap and quiet,
        // so that a connect-and-close flood costs little.
        debug!("client sent nothing and closed");
        send_reply(conn, &Reply::error(ERROR_STARTUP_DATA, FUNCTION_LABEL, "")).await;
        return None;
    }
    let decoded = StartupMessage::decode(&buf[..n]);
    buf.zeroize();
    match decoded {
        Ok(decoded) => {
            if decoded.trailing_units > 0 || decoded.odd_byte {
                debug!(
                    trailing_units = decoded.trailing_units,
                    odd_byte = decoded.odd_byte,
                    "ignoring data after the startup strings"
                );
            }
            Some(decoded.message)
        }
        Err(e) => {
            warn!("malformed startup data ({n} bytes): {e}");
            send_reply(conn, &Reply::error(e.code(), FUNCTION_LABEL, "")).await;
            None
        }
    }
}

/// The reply for blocking work that gave no answer.
fn offload_reply(e: &OffloadError) -> Reply {
    warn!("refused: {e}");
    let code = match e {
        OffloadError::TimedOut { .. } => codes::WAIT_TIMEOUT,
        OffloadError::Busy { .. } => ERROR_CANT_WAIT,
        OffloadError::Failed { .. } | OffloadError::Ended { .. } => codes::ERROR_GEN_FAILURE,
    };
    Reply::error(code, "the service", e.to_string())
}

/// Who the caller is (the user database) and what they may start (the policy, which
/// resolves the config path through the file system): both can block on something the user
/// controls, so they run off the event loop, bounded in time.
async fn check<N>(
    shared: &Shared<N>,
    cred: PeerCred,
    startup: &StartupMessage,
) -> Result<(PeerIdentity, Vec<String>), Reply> {
    let uid = cred.uid;
    let settings = shared.settings.clone();
    let options = startup.options.clone();
    let working_dir = startup.working_dir.clone();
    let span = tracing::Span::current();
    let job = move || {
        let _entered = span.enter();
        // The user database is consulted only for clients that sent a startup message.
        let identity = match resolve(cred) {
            Ok(identity) => identity,
            Err(e) => {
                warn!("refused: {e}");
                return Err(Reply::error(
                    ERROR_ACCESS_DENIED,
                    "LookupAccountSid",
                    format!("{e}; the service only serves accounts in the user database"),
                ));
            }
        };
        span.record("user", tracing::field::display(&identity.name));
        let argv = authorize(&settings, &identity, &options, &working_dir)?;
        refuse_unsupported(&argv, &working_dir)?;
        Ok((identity, argv))
    };
    match shared
        .offload
        .run(uid, "checking the request", offload::LIMIT, job)
        .await
    {
        Ok(checked) => checked,
        Err(e) => Err(offload_reply(&e)),
    }
}

/// Largest config file the service reads to look for options it cannot honour.
const MAX_CONFIG: u64 = 1 << 20;

/// Refuses, before anything starts, options the Linux service cannot honour (in the
/// arguments or the config file they name), with a message that names the option. The
/// config is read as root: for an ordinary user it is a file inside `config_dir` that no
/// user can swap (the policy checked), and an administrator may name any file anyway.
fn refuse_unsupported(argv: &[String], working_dir: &str) -> Result<(), Reply> {
    use std::io::Read as _;
    let config = argv
        .windows(2)
        .rev()
        .find(|w| w[0] == "--config")
        .map(|w| Path::new(working_dir).join(&w[1]));
    let text = config.as_ref().and_then(|path| {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG).read_to_string(&mut text))
            .ok()
            .map(|_| (path.display().to_string(), text))
    });
    let found = openvpnserv_core::linux::config::unsupported(
        argv,
        text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
    );
    match found {
        None => Ok(()),
        Some(u) => {
            warn!("refused: {u}");
            Err(Reply::error(ERROR_STARTUP_DATA, u.to_string(), ""))
        }
    }
}

/// Applies the policy; returns openvpn's arguments or the refusal to send.
fn authorize(
    s: &Settings,
    identity: &PeerIdentity,
    options: &str,
    working_dir: &str,
) -> Result<Vec<String>, Reply> {
    let groups = identity.all_groups();
    let fs_caller = FsCaller {
        uid: identity.uid,
        gids: groups.clone(),
    };
    let log_refusal = |path: &str, why: &openvpnserv_policy::path::linux::PathRefusal| {
        info!("config path {path:?} refused: {why}");
    };
    let checker = LinuxConfigCheck {
        fs: &HostFs,
        config_dir: Path::new(&s.config_dir),
        caller: &fs_caller,
        on_refusal: &log_refusal,
    };
    let auth = AuthSettings {
        admin_groups: vec![s.ovpn_admin_group.clone()],
        service_user: s.ovpn_service_user.clone(),
        service_domain: String::new(),
    };
    let decision = decide_linux(
        options,
        working_dir,
        &checker,
        &identity.caller(),
        &GidMembership(groups),
        &auth,
    );
    match decision {
        Decision::Allowed { argv, allowance } => {
            info!(dir = %working_dir, options = %options, "allowed: {allowance:?}");
            Ok(argv)
        }
        Decision::Refused(refusal) => {
            warn!(dir = %working_dir, options = %options, "refused: {refusal}");
            Err(Reply::error(
                ERROR_STARTUP_DATA,
                refusal.message(&s.ovpn_admin_group),
                "",
            ))
        }
    }
}

/// Creates the channel and starts openvpn (in its unit under systemd, else forked off the
/// event loop); on failure returns the reply to send.
async fn start_openvpn<N>(
    shared: &Shared<N>,
    session: u64,
    identity: &PeerIdentity,
    working_dir: &str,
    mut args: Vec<String>,
    extra: Vec<String>,
    output: OwnedFd,
) -> Result<(Openvpn, UnixSeqpacket), Reply> {
    let settings = &shared.settings;
    let fail = |what: &str, e: &std::io::Error| {
        warn!("{what}: {e}");
        Reply::error(
            codes::errno::reply_code(e.raw_os_error()),
            "CreateProcessAsUser",
            format!("{what}: {e}"),
        )
    };
    // A missing or unusable executable is the administrator's to fix; say so plainly.
    if let Err(e) = std::fs::metadata(&settings.exe_path) {
        return Err(fail(
            &format!("cannot use exe_path {}", settings.exe_path),
            &e,
        ));
    }
    let (ours, theirs): (OwnedFd, OwnedFd) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| fail("cannot create the channel", &e.into()))?;
    fcntl(&ours, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|e| fail("cannot create the channel", &e.into()))?;
    let channel =
        UnixSeqpacket::try_from(ours).map_err(|e| fail("cannot create the channel", &e))?;
    args.extend(extra);
    let what = || {
        format!(
            "cannot start {} as user {} in working directory {:?}",
            settings.exe_path, identity.name, working_dir
        )
    };
    let spec = LaunchSpec {
        exe: settings.exe_path.clone(),
        args,
        cwd: working_dir.to_owned(),
        uid: identity.uid,
        gid: identity.gid,
        groups: identity.groups.clone(),
        nice: settings.priority.nice(),
        home: identity.home.clone(),
        user: identity.name.clone(),
        shell: identity.shell.clone(),
    };
    if let Some(systemd) = &shared.systemd {
        let unit = UnitSpec {
            session,
            run: &spec,
            output,
        };
        let unit = systemd.start(unit, theirs).await.map_err(|e| {
            let io = match e.os_error() {
                Some(errno) => std::io::Error::from_raw_os_error(errno),
                None => std::io::Error::other(e.to_string()),
            };
            warn!("{}: {e}", what());
            Reply::error(
                codes::errno::reply_code(io.raw_os_error()),
                "CreateProcessAsUser",
                format!("{}: {e}", what()),
            )
        })?;
        return Ok((Openvpn::Unit(unit), channel));
    }
    let child = fork_openvpn(shared, spec, theirs, output)
        .await
        .map_err(|e| match e {
            Ok(e) => fail(&what(), &e),
            Err(e) => offload_reply(&e),
        })?;
    Ok((Openvpn::Child(child), channel))
}

/// Forks openvpn off the event loop: `fork` waits for the child to `exec`, and the child first
/// enters the user's working directory, which may sit on a mount that does not answer. A
/// child that starts after the session gave up waiting is killed. Fails with the OS error,
/// or with why the blocking work gave no answer.
async fn fork_openvpn<N>(
    shared: &Shared<N>,
    spec: LaunchSpec,
    channel: OwnedFd,
    output: OwnedFd,
) -> Result<tokio::process::Child, Result<std::io::Error, OffloadError>> {
    let (ticket, job) = shared.offload.admit(spec.uid).map_err(Err)?;
    let span = tracing::Span::current();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let _job = job;
        let _entered = span.enter();
        if let Err(Ok(mut child)) = tx.send(spawn(&spec, channel, output)) {
            warn!("openvpn started after the session gave up waiting; killing it");
            let _ = child.start_kill();
        }
    });
    let limit = offload::LIMIT;
    let started = match tokio::time::timeout(limit, &mut rx).await {
        Ok(Ok(started)) => started,
        Ok(Err(_)) => {
            return Err(Err(OffloadError::Ended {
                what: "starting openvpn",
            }))
        }
        Err(_) => {
            ticket.abandon();
            // No child may slip through between the timeout and the drop: close, then look.
            rx.close();
            rx.try_recv().map_err(|_| {
                Err(OffloadError::TimedOut {
                    what: "starting openvpn",
                    limit,
                })
            })?
        }
    };
    started.map_err(Ok)
}

/// Why the channel loop stopped.
enum End {
    /// openvpn exited by itself.
    Exited(std::process::ExitStatus),
    /// The channel ended or was abandoned while openvpn still ran.
    ChannelEnded,
    /// The session was stopped (the service stops, or a control socket's `stop`) and
    /// openvpn is gone (it ran its down sequence, or was killed after [`STOP_GRACE`]).
    Shutdown(Option<std::process::ExitStatus>),
}

/// Serves channel requests until openvpn exits, the channel ends, or the service stops.
/// When the service stops, openvpn gets SIGTERM and the channel is still served, so that
/// its down sequence (`route-pre-down`, `down`, the config's own scripts) runs to the end,
/// for at most [`STOP_GRACE`]; then it is killed.
async fn serve_channel<N: Network>(
    shared: &Shared<N>,
    id: u64,
    conn: &UnixSeqpacket,
    child: &mut Openvpn,
    channel: &UnixSeqpacket,
    net: &mut N::Session,
    stop: &CancellationToken,
) -> End {
    let codec = Codec::NATIVE;
    let mut buf = vec![0u8; codec.max_request_size() + 1];
    let mut client_buf = [0u8; 64];
    let mut client_open = true;
    let mut stopping: Option<tokio::time::Instant> = None;
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let deadline = stopping.unwrap_or(far);
        tokio::select! {
            status = child.wait() => {
                if stopping.is_some() {
                    info!("openvpn ended its down sequence after SIGTERM: {status:?}");
                    return End::Shutdown(status.ok());
                }
                return match status {
                    Ok(status) => End::Exited(status),
                    Err(e) => {
                        warn!("cannot wait for openvpn: {e}");
                        End::ChannelEnded
                    }
                };
            }
            received = channel.recv(&mut buf) => {
                let n = match received {
                    Ok(0) | Err(_) => {
                        debug!("channel ended");
                        return End::ChannelEnded;
                    }
                    Ok(n) => n,
                };
                let ack = match codec.decode_request(&buf[..n]) {
                    Ok(envelope) => {
                        let kind = envelope.request.kind();
                        let error_number = net.handle(envelope.request).await;
                        debug!(?kind, error_number, "channel request");
                        shared.registry.network(id, net.view(), now());
                        openvpnserv_proto::channel::Ack { message_id: envelope.message_id, error_number }
                    }
                    Err(e) => if let Some(ack) = e.ack() {
                        warn!("bad channel message: {e}");
                        ack
                    } else {
                        warn!("openvpn sent an oversized channel message ({e}); abandoning the channel");
                        return End::ChannelEnded;
                    },
                };
                if let Err(e) = channel.send(&codec.encode_ack(ack)).await {
                    debug!("could not send an ack: {e}");
                    return End::ChannelEnded;
                }
            }
            received = conn.recv(&mut client_buf), if client_open => {
                if matches!(received, Ok(0) | Err(_)) {
                    info!("client disconnected; the session goes on");
                    client_open = false;
                }
            }
            () = stop.cancelled(), if stopping.is_none() => {
                let why = if shared.shutdown.is_cancelled() {
                    "the service is stopping"
                } else {
                    "asked to stop over the control socket"
                };
                info!("{why}: SIGTERM to openvpn, whose down sequence is still served for up to {STOP_GRACE:?}");
                shared.registry.exiting(id, now());
                child.terminate().await;
                stopping = Some(tokio::time::Instant::now() + STOP_GRACE);
            }
            () = tokio::time::sleep_until(deadline), if stopping.is_some() => {
                info!("openvpn still runs {STOP_GRACE:?} after SIGTERM; killing it");
                return End::Shutdown(child.kill_and_reap().await);
            }
        }
    }
}

/// Ends openvpn as the reason requires; returns how it ended (if known) and whether a
/// non-zero exit gets the late reply (not when the session was stopped or openvpn killed).
async fn finish(child: &mut Openvpn, end: End) -> (Option<std::process::ExitStatus>, bool) {
    match end {
        End::Exited(status) => (Some(status), true),
        End::ChannelEnded => {
            if let Ok(Ok(status)) = tokio::time::timeout(GRACE, child.wait()).await {
                (Some(status), true)
            } else {
                info!("openvpn still runs {GRACE:?} after its channel ended; killing it");
                (child.kill_and_reap().await, false)
            }
        }
        End::Shutdown(status) => (status, false),
    }
}

/// The exit code of the `0x20000000` reply (a signal counts as 128 + its number).
fn exit_code(status: std::process::ExitStatus) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u32,
        (None, Some(signal)) => 128 + signal as u32,
        (None, None) => 1,
    }
}

/// The service's line for openvpn's exit; a failure carries openvpn's last output line,
/// which usually says why.
fn log_exit(code: Option<u32>, last_line: Option<String>) {
    match code {
        Some(0) => info!("openvpn exited with code 0"),
        Some(code) => {
            if let Some(line) = last_line {
                info!(
                    "openvpn exited with error: exit code = {code}; its last output line: {line:?}"
                );
            } else {
                info!("openvpn exited with error: exit code = {code}");
            }
        }
        None => {}
    }
}
