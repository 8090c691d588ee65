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
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{Command, ExitCode};
use std::time::Duration;

use super::{inherited_fd, MODE_ENV};
use crate::linux::net::{CHANNEL_FD, CHANNEL_FD_ENV};
use nix::sys::socket::{recv, send, setsockopt, sockopt, MsgFlags};
use nix::sys::time::TimeVal;
use openvpnserv_core::linux::config::{self, UserConfig};
use openvpnserv_core::linux::hook::{self, Options, Phase};
use openvpnserv_core::linux::iproute::{self, describe};
use openvpnserv_proto::channel::{Codec, Envelope, Request};
use openvpnserv_proto::codes;

/// How long the service may take to acknowledge one request.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

fn say(msg: &str) {
    eprintln!("openvpnserv-hook: {msg}");
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
    fn open(env: &HashMap<String, String>) -> Result<Self, String> {
        let n = match env.get(CHANNEL_FD_ENV) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{CHANNEL_FD_ENV}={v:?} is not an fd number"))?,
            None => CHANNEL_FD,
        };
        let fd = inherited_fd(n).map_err(|e| {
            format!("the service's channel (fd {n}) is not open: {e}; is openvpn running under openvpnserv?")
        })?;
        let timeout = TimeVal::new(ACK_TIMEOUT.as_secs() as _, 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)
            .map_err(|e| format!("fd {n} is not the service's channel socket: {e}"))?;
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

    fn send(&self, request: &Request) -> Result<(), String> {
        let bytes = self
            .codec
            .encode(&Envelope {
                message_id: 0,
                request: request.clone(),
            })
            .map_err(|e| e.to_string())?;
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| format!("sending to the service: {e}"))?;
        Ok(())
    }

    fn ack(&self) -> Result<u32, String> {
        let mut buf = [0u8; 64];
        let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| format!("waiting for the service's answer: {e}"))?;
        let ack = self
            .codec
            .decode_ack(&buf[..n])
            .map_err(|e| format!("the service's answer: {e}"))?;
        Ok(ack.error_number)
    }

    /// Sends every request (up to [`WINDOW`] ahead of the acks); returns each refused
    /// request's index and code.
    pub fn send_all(&self, requests: &[Request]) -> Result<Vec<(usize, u32)>, String> {
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
    fn send_and_report(&self, requests: &[Request]) -> Result<usize, String> {
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

fn hook(phase: Phase, args: &[String], env: &HashMap<String, String>) -> Result<bool, String> {
    let cfg = user_config(env);
    let opts = Options {
        addresses_and_routes: env.get(MODE_ENV).map(String::as_str) != Some("iproute"),
        block_outside_dns: cfg.block_outside_dns,
    };
    let requests = hook::translate(phase, env, opts)?;
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

fn iproute(args: &[String], env: &HashMap<String, String>) -> Result<bool, String> {
    let requests = iproute::parse(args)?;
    let channel = Channel::open(env)?;
    Ok(channel.send_and_report(&requests)? == 0)
}

/// The hook's entry point.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: HashMap<String, String> = std::env::vars().collect();
    let result = match args.first().and_then(|a| Phase::parse(a)) {
        Some(phase) => hook(phase, &args[1..], &env),
        None if args.is_empty() => Err(
            "run by openvpn under openvpnserv: up|route-up|route-pre-down|down, or ip arguments"
                .into(),
        ),
        None => iproute(&args, &env),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say(&e);
            ExitCode::FAILURE
        }
    }
}
