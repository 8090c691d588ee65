//! The hook: the helper openvpn runs, as the user, for the Linux service
//! (`openvpnserv-hook`, see `src/bin/openvpnserv-hook.rs`).
//!
//! The service appends options that make openvpn run it (design §2):
//! * `openvpnserv-hook up|route-up|route-pre-down|down [openvpn's script arguments]` from the
//!   script hooks: the script environment becomes channel requests
//!   (`openvpnserv_core::linux::hook`); then the config's own script for that hook runs, as the
//!   user, with the same environment and arguments — after ours, except for `route-pre-down`,
//!   whose purpose is to run before routes go, so there the config's script runs first;
//! * `openvpnserv-hook <ip arguments>` as `--iproute` where openvpn supports it: one `ip`
//!   command becomes requests (`openvpnserv_core::linux::iproute`).
//!
//! Each request is sent on the channel (fd `$OPENVPNSERV_CHANNEL_FD`, 3 by default) and its
//! acknowledgement awaited. A refused request is reported on stderr (openvpn's log); in `up`
//! and for `ip` commands it also makes the hook fail, as a failed `ip` would.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{Command, ExitCode};
use std::time::Duration;

use super::{inherited_fd, DCO_OFF_ENV, MODE_ENV, OPENVPN_ENV, ROUTE_NOEXEC_ENV};
use crate::linux::net::{CHANNEL_FD, CHANNEL_FD_ENV};
use nix::errno::Errno;
use nix::sys::socket::{recv, send, setsockopt, sockopt, MsgFlags};
use nix::sys::time::TimeVal;
use openvpnserv_core::linux::config::{self, UserConfig};
use openvpnserv_core::linux::hook::{self, Options, Phase};
use openvpnserv_core::linux::iproute::{self, describe};
use openvpnserv_core::linux::TranslateError;
use openvpnserv_proto::channel::{AckDecodeError, Codec, EncodeError, Envelope, Request};
use openvpnserv_proto::codes;

/// How long the service may take to acknowledge one request.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

fn say(msg: &str) {
    eprintln!("openvpnserv-hook: {msg}");
}

/// Why the hook could not do its work; openvpn's log shows the text.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Run by hand, without a hook name or `ip` arguments.
    #[error("run by openvpn under openvpnserv: up|route-up|route-pre-down|down, or ip arguments")]
    Usage,
    /// The environment or `ip` command does not translate into requests.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// The channel fd variable is not a number.
    #[error("{CHANNEL_FD_ENV}={0:?} is not an fd number")]
    BadFd(String),
    /// The channel fd is not open.
    #[error("the service's channel (fd {fd}) is not open: {source}; is openvpn running under openvpnserv?")]
    NoChannel {
        /// The fd.
        fd: i32,
        /// Why.
        source: io::Error,
    },
    /// The fd is open but is not a socket.
    #[error("fd {fd} is not the service's channel socket: {source}")]
    NotChannel {
        /// The fd.
        fd: i32,
        /// Why.
        source: Errno,
    },
    /// A request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Sending failed.
    #[error("sending to the service: {0}")]
    Send(Errno),
    /// Receiving the acknowledgement failed (or timed out).
    #[error("waiting for the service's answer: {0}")]
    Receive(Errno),
    /// The acknowledgement is malformed.
    #[error("the service's answer: {0}")]
    Ack(#[from] AckDecodeError),
}

/// Requests in flight at once. The service answers in order, so the hook may send ahead
/// instead of waiting a round trip per request (a route-up with thousands of routes); the
/// window stays far below what the socket buffers hold, so neither side ever blocks the other.
pub const WINDOW: usize = 32;

/// The hook's end of the channel.
#[derive(Debug)]
pub struct Channel<'a> {
    fd: BorrowedFd<'a>,
    codec: Codec,
}

impl Channel<'static> {
    fn open(env: &HashMap<String, String>) -> Result<Self, HookError> {
        let n = match env.get(CHANNEL_FD_ENV) {
            Some(v) => v.parse().map_err(|_| HookError::BadFd(v.clone()))?,
            None => CHANNEL_FD,
        };
        let fd = inherited_fd(n).map_err(|source| HookError::NoChannel { fd: n, source })?;
        let timeout = TimeVal::new(ACK_TIMEOUT.as_secs() as _, 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)
            .map_err(|source| HookError::NotChannel { fd: n, source })?;
        Ok(Channel::new(fd))
    }
}

impl<'a> Channel<'a> {
    /// A channel on a connected seqpacket socket.
    pub fn new(fd: BorrowedFd<'a>) -> Self {
        Self {
            fd,
            codec: Codec::NATIVE,
        }
    }

    fn send(&self, request: &Request) -> Result<(), HookError> {
        let bytes = self.codec.encode(&Envelope {
            message_id: 0,
            request: request.clone(),
        })?;
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).map_err(HookError::Send)?;
        Ok(())
    }

    fn ack(&self) -> Result<u32, HookError> {
        let mut buf = [0u8; 64];
        let n =
            recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(HookError::Receive)?;
        Ok(self.codec.decode_ack(&buf[..n])?.error_number)
    }

    /// Sends every request (up to [`WINDOW`] ahead of the acks); returns each refused
    /// request's index and code.
    pub fn send_all(&self, requests: &[Request]) -> Result<Vec<(usize, u32)>, HookError> {
        let mut refused = Vec::new();
        let mut sent = 0;
        for acked in 0..requests.len() {
            while sent < requests.len() && sent - acked < WINDOW {
                self.send(&requests[sent])?;
                sent += 1;
            }
            let code = self.ack()?;
            if code != codes::NO_ERROR {
                refused.push((acked, code));
            }
        }
        Ok(refused)
    }

    /// Sends every request and reports refusals on stderr; returns how many were refused.
    fn send_and_report(&self, requests: &[Request]) -> Result<usize, HookError> {
        let refused = self.send_all(requests)?;
        for &(i, code) in &refused {
            say(&format!(
                "{}: refused with {code} ({})",
                describe(&requests[i]),
                codes::name(code).unwrap_or("error")
            ));
        }
        Ok(refused.len())
    }
}

/// The config's own scripts, read from `$config` (unreadable = none).
fn user_config(env: &HashMap<String, String>) -> UserConfig {
    env.get("config")
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|text| config::scan(&text))
        .unwrap_or_default()
}

/// Runs the config's script for `phase` with openvpn's arguments; its exit status counts.
fn run_user_script(cfg: &UserConfig, phase: Phase, args: &[String]) -> bool {
    let Some(cmd) = cfg.script(phase) else {
        return true;
    };
    let words = config::words(cmd);
    let Some((program, own)) = words.split_first() else {
        return true;
    };
    match Command::new(program).args(own).args(args).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            say(&format!(
                "the config's {} script {cmd:?} failed: {s}",
                phase.name()
            ));
            false
        }
        Err(e) => {
            say(&format!(
                "cannot run the config's {} script {cmd:?}: {e}",
                phase.name()
            ));
            false
        }
    }
}

fn hook(phase: Phase, args: &[String], env: &HashMap<String, String>) -> Result<bool, HookError> {
    let cfg = user_config(env);
    let opts = Options {
        addresses_and_routes: env.get(MODE_ENV).map(String::as_str) != Some("iproute"),
        block_outside_dns: cfg.block_outside_dns,
        openvpn_2_7: env.get(OPENVPN_ENV).map(String::as_str) == Some("2.7"),
        route_noexec: cfg.route_noexec
            || env.get(ROUTE_NOEXEC_ENV).map(String::as_str) == Some("1"),
    };
    if phase == Phase::Up && env.get(DCO_OFF_ENV).map(String::as_str) == Some("1") {
        say("data channel offload (DCO) is off for this session, on purpose: it needs CAP_NET_ADMIN, which openvpn running as you does not have, so the service starts openvpn with --disable-dco");
    }
    if opts.route_noexec && opts.addresses_and_routes && phase == Phase::RouteUp {
        say("route-noexec is set: the service applies none of the routes the server pushed (neither IPv4 nor IPv6, so that no family leaves the tunnel while the other goes in); remove route-noexec to have them applied");
    }
    let requests = hook::translate(phase, env, opts)?;
    let dns_here = requests
        .iter()
        .any(|r| matches!(r, Request::AddDnsCfg(_) | Request::AddNrptCfg(_)));
    if opts.openvpn_2_7 && phase == Phase::Up && dns_here {
        say("openvpn passed this session's DNS to --up instead of --dns-updown (as it does after a PUSH_UPDATE of dns options); it is applied from there, as openvpn converted it");
    }
    let channel = Channel::open(env)?;
    let user_first = phase == Phase::RoutePreDown;
    let mut ok = true;
    if user_first {
        ok &= run_user_script(&cfg, phase, args);
    }
    let failed = channel.send_and_report(&requests)?;
    // Without its address and link the tunnel cannot work: let openvpn stop.
    ok &= !(phase == Phase::Up && failed > 0);
    if !user_first {
        ok &= run_user_script(&cfg, phase, args);
    }
    Ok(ok)
}

/// openvpn 2.7's `--dns-updown` command: its DNS configuration, nothing else. Its environment
/// is bare (no `config`, no variables the service set), so the channel is the default fd.
fn dns_updown(up: bool, env: &HashMap<String, String>) -> Result<bool, HookError> {
    let requests = hook::translate_dns(up, env)?;
    let channel = Channel::open(env)?;
    Ok(channel.send_and_report(&requests)? == 0)
}

fn iproute(args: &[String], env: &HashMap<String, String>) -> Result<bool, HookError> {
    let requests = iproute::parse(args)?;
    let channel = Channel::open(env)?;
    Ok(channel.send_and_report(&requests)? == 0)
}

/// The hook's entry point.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: HashMap<String, String> = std::env::vars().collect();
    let script_type = env.get("script_type").map(String::as_str);
    let result = match args.first().and_then(|a| Phase::parse(a)) {
        Some(phase) => hook(phase, &args[1..], &env),
        None if args.is_empty() && script_type == Some("dns-up") => dns_updown(true, &env),
        None if args.is_empty() && script_type == Some("dns-down") => dns_updown(false, &env),
        None if args.is_empty() => Err(HookError::Usage),
        None => iproute(&args, &env),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
