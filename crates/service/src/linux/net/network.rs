//! The seam between a Linux session and the network layer.
//!
//! A session (see `session.rs`) owns the client connection, the openvpn child and the
//! channel socket. Everything that touches the network — the user's tun device, the options
//! that make openvpn use it and run our hook, each channel request, and the undo — sits behind
//! [`Network`] and [`NetworkSession`], so the session logic can be tested with a fake and the
//! network layer on its own.
//!
//! Contract:
//! * [`Network::recover`] runs once at service start, before any client is accepted, and
//!   undoes whatever journals a previous service run left behind. It returns the first
//!   session number this run may use: above every number a journal still left there names,
//!   so that no session's files or names meet those of an earlier run.
//! * [`Network::prepare`] runs after the request was authorized and before openvpn starts.
//!   It returns the session's network state and the arguments to append after the user's
//!   options (openvpn takes the last occurrence of an option, so these win).
//! * [`NetworkSession::handle`] runs for each decoded channel request, one at a time, and
//!   returns the acknowledgement's error code (0 = success).
//! * [`NetworkSession::cleanup`] runs exactly once when the session ends, whatever the reason
//!   (openvpn exited or was killed, service stop), after openvpn is gone.

use std::future::Future;

use openvpnserv_proto::channel::Request;
use openvpnserv_proto::codes::ERROR_NOT_SUPPORTED;

pub use crate::linux::registry::NetView;

/// The channel socket is always this fd in openvpn (and in the scripts it runs, which inherit
/// it). The hook finds it through [`CHANNEL_FD_ENV`].
pub const CHANNEL_FD: i32 = 3;
/// Environment variable (set with `--setenv`) naming the channel fd for the hook.
pub const CHANNEL_FD_ENV: &str = "OPENVPNSERV_CHANNEL_FD";

/// Who a session runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Login name.
    pub name: String,
}

/// What the network layer is told about a new session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Service-unique session number (also in every log line of the session).
    pub id: u64,
    /// Who it runs as.
    pub user: SessionUser,
    /// openvpn's arguments from the request (before the network layer's own).
    pub user_args: Vec<String>,
}

/// Why a session's network could not be prepared. The client receives `code`, `function` and
/// `message` as an error reply, and nothing is started.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{function}: {message}")]
pub struct NetworkError {
    /// Win32-style error code for the reply.
    pub code: u32,
    /// Reply line 2 (what failed).
    pub function: String,
    /// Reply line 3 (why, and what to do).
    pub message: String,
}

/// The network layer of the service.
pub trait Network: Send + Sync + 'static {
    /// One session's network state.
    type Session: NetworkSession;

    /// Undoes what a previous service run left behind. Runs before the first accept;
    /// returns the first session number this run may use.
    fn recover(&self) -> impl Future<Output = u64> + Send;

    /// Prepares a session: returns its state and the arguments to append to openvpn's.
    fn prepare(
        &self,
        info: &SessionInfo,
    ) -> impl Future<Output = Result<(Self::Session, Vec<String>), NetworkError>> + Send;
}

/// One session's network state.
pub trait NetworkSession: Send + 'static {
    /// openvpn was started with this pid.
    fn started(&mut self, _pid: u32) {}

    /// Performs one channel request; returns the ack's error code.
    fn handle(&mut self, request: Request) -> impl Future<Output = u32> + Send;

    /// Undoes everything this session changed. Runs once, after openvpn is gone.
    fn cleanup(self) -> impl Future<Output = ()> + Send;

    /// What is applied now: the tun and its addresses (for the control socket's list).
    fn view(&self) -> NetView {
        NetView::default()
    }
}

/// A network layer that changes nothing: every request is refused with
/// `ERROR_NOT_SUPPORTED`. Used by tests of the session logic.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNetwork;

impl Network for NoNetwork {
    type Session = NoNetwork;

    async fn recover(&self) -> u64 {
        1
    }

    async fn prepare(&self, _info: &SessionInfo) -> Result<(NoNetwork, Vec<String>), NetworkError> {
        Ok((NoNetwork, Vec::new()))
    }
}

impl NetworkSession for NoNetwork {
    async fn handle(&mut self, _request: Request) -> u32 {
        ERROR_NOT_SUPPORTED
    }

    async fn cleanup(self) {}
}
