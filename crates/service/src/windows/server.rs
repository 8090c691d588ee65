//! The client pipe's accept loop (spec §1.3, §6.4): one listening instance always ready, a
//! worker thread per client, a cap on concurrent sessions, and a clean stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use openvpnserv_core::limits::Limits;
use openvpnserv_core::windows::net::WinNet;
use openvpnserv_core::windows::sddl;
use openvpnserv_proto::channel::Arch;
use openvpnserv_proto::codes::ERROR_CANT_WAIT;
use openvpnserv_settings::{Instance, Settings};
use tracing::{error, info};

use super::reply::error_reply;
use super::session;
use super::sys::kernel::{Event, IoError, Pipe, PipeSpec};
use super::sys::security::{SecurityDescriptor, Token};
use super::sys::Win32Error;
use super::token::administrators_group_name;
use super::version::Numbering;

/// Makes the network layer of each session.
pub trait NetFactory: Send + Sync + 'static {
    /// The network layer.
    type Net: WinNet<Engine: Send> + Send + 'static;
    /// A network layer for one session (or for the start-up clean-up).
    fn make(&self) -> Self::Net;
}

/// Where group membership comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipSource {
    /// The client's token and the local groups (the service).
    Token,
    /// Nobody is in any group. Tests use this to act as an ordinary user under Wine, where
    /// every process is an administrator. It can only take rights away.
    NoGroups,
}

/// Everything a session needs to know.
pub struct Context<F: NetFactory> {
    /// The instance.
    pub instance: Instance,
    /// Its settings.
    pub settings: Settings,
    /// Channel layout (the numbering is decided per session).
    pub arch: Arch,
    /// The channel numbering of each session (`msg_protocol`, or openvpn.exe's version).
    pub numbering: Numbering,
    /// The local Administrators name, then `ovpn_admin_group`.
    pub admin_groups: Vec<String>,
    /// Group membership source.
    pub membership: MembershipSource,
    /// The service's own SID.
    pub service_sid: String,
    /// Network layer factory.
    pub net: F,
    /// Sessions per user SID. The total is bounded by the accept loop (one worker per
    /// client, at most `max_sessions`), before the client's identity is known.
    pub per_user: Limits<String>,
    /// The number of the next session, for the log.
    next_id: AtomicU64,
}

impl<F: NetFactory> Context<F> {
    /// A context for `instance`.
    pub fn new(
        instance: Instance,
        settings: Settings,
        arch: Arch,
        membership: MembershipSource,
        net: F,
    ) -> Result<Self, Win32Error> {
        let service_sid = Token::process()?
            .user("GetTokenInformation (service token)")?
            .sid;
        let admin_groups = vec![
            administrators_group_name(),
            settings.ovpn_admin_group.clone(),
        ];
        let per_user = Limits::new(
            settings.max_sessions as usize,
            settings.max_sessions_per_user as usize,
        );
        let numbering = Numbering::new(settings.msg_protocol, &settings.exe_path);
        Ok(Self {
            instance,
            settings,
            arch,
            numbering,
            admin_groups,
            membership,
            service_sid,
            net,
            per_user,
            next_id: AtomicU64::new(1),
        })
    }

    /// A number for a new session (1, 2, …), which its log lines carry.
    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The bound client pipe.
pub struct Server<F: NetFactory> {
    ctx: Arc<Context<F>>,
    sd: SecurityDescriptor,
    listening: Pipe,
}

impl<F: NetFactory> Server<F> {
    /// Creates the first instance of the client pipe; fails if the name is taken
    /// (CVE-2024-4877: nobody else may own our pipe name).
    pub fn bind(ctx: Context<F>) -> Result<Self, Win32Error> {
        let sd = SecurityDescriptor::from_sddl(sddl::CLIENT_PIPE)?;
        let listening = Pipe::create(&ctx.instance.pipe_path(), PipeSpec::client(true), &sd)?;
        Ok(Self {
            ctx: Arc::new(ctx),
            sd,
            listening,
        })
    }

    /// The listening instance (tests read its security descriptor).
    pub fn listening(&self) -> &Pipe {
        &self.listening
    }

    /// Accepts clients until `stop` is set; then waits for every session to end (each gets
    /// its 2 s grace and undo). An error means the pipe could not be served any more.
    pub fn run(mut self, stop: &Event) -> Result<(), Win32Error> {
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        let result = loop {
            match self.listening.connect(stop) {
                Ok(true) => {}
                Ok(false) => {
                    info!("ConnectNamedPipe returned ERROR_NO_DATA (client dropped)");
                    continue;
                }
                Err(IoError::Stopped) => break Ok(()),
                Err(IoError::Timeout) => continue,
                Err(IoError::Os(e)) => {
                    error!("Could not connect pipe: {e}");
                    break Err(Win32Error::new(e.code, "ConnectNamedPipe"));
                }
            }
            let accepted = std::time::Instant::now();
            // First the next listening instance, so a client always finds one.
            let next = match Pipe::create(
                &self.ctx.instance.pipe_path(),
                PipeSpec::client(false),
                &self.sd,
            ) {
                Ok(p) => p,
                Err(e) => {
                    error!("Could not create the next pipe instance: {e}");
                    break Err(e);
                }
            };
            let conn = std::mem::replace(&mut self.listening, next);
            workers.retain(|w| !w.is_finished());
            if workers.len() >= self.ctx.settings.max_sessions as usize {
                // Written into the pipe's buffer and left there for the client; closing the
                // handle (not disconnecting) keeps it readable.
                let _ = conn.write(
                    &error_reply(ERROR_CANT_WAIT, "Too many concurrent clients"),
                    Some(stop),
                );
                error!(
                    client_pid = conn.client_pid().unwrap_or(0),
                    "Too many concurrent clients"
                );
                continue;
            }
            let ctx = Arc::clone(&self.ctx);
            let stop = match stop.try_clone() {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            match std::thread::Builder::new()
                .name("session".into())
                .spawn(move || session::serve(&conn, &ctx, &stop, accepted))
            {
                Ok(w) => workers.push(w),
                Err(e) => error!("Insufficient resources to service new clients: {e}"),
            }
        };
        stop.set();
        for w in workers {
            let _ = w.join();
        }
        result
    }
}
