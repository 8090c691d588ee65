//! One client session (spec §2, §3, §4, §5, §6.3): startup message, decision, launch, the
//! channel, and the end with its 2 s grace, undo and replies.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use openvpnserv_core::limits;
use openvpnserv_core::windows::session::{SessionConfig, WinSession};
use openvpnserv_policy::path::windows::WindowsConfigCheck;
use openvpnserv_policy::{decide_windows, Allowance, AuthSettings, Caller, Membership};
use openvpnserv_proto::channel::Codec;
use openvpnserv_proto::codes::{ERROR_OPENVPN_STARTUP, ERROR_STARTUP_DATA, ERROR_TOO_MANY_SESS};
use openvpnserv_proto::startup::{self, MAX_BYTES};
use openvpnserv_proto::{Reply, StartupMessage};
use tracing::{debug, error, info};
use zeroize::Zeroize;

use super::launch::{self, LaunchRequest, Launched};
use super::reply::error_reply;
use super::server::{Context, MembershipSource, NetFactory};
use super::sys::kernel::{Event, IoError, Pipe, Process, IO_TIMEOUT};
use super::sys::security::{Impersonation, Token};
use super::sys::Win32Error;
use super::token::TokenMembership;

/// How long openvpn may take to exit after its channel ends.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Why a session ended before openvpn ran: the reply's code and line 2.
#[derive(Debug, thiserror::Error)]
#[error("{label} (0x{code:08x})")]
struct Failure {
    code: u32,
    label: String,
}

impl From<Win32Error> for Failure {
    fn from(e: Win32Error) -> Self {
        Self {
            code: e.code,
            label: e.function,
        }
    }
}

struct NoGroups;

impl Membership for NoGroups {
    fn is_member(&self, _group: &str) -> bool {
        false
    }
}

/// A per-user session slot (counted by the user's SID), given back on drop.
struct Slot {
    _held: limits::Slot<String>,
    /// The user's account name, for the log.
    name: String,
}

fn take_slot<F: NetFactory>(ctx: &Context<F>, user: &str, name: &str) -> Option<Slot> {
    let held = ctx.per_user.acquire(user.to_owned()).ok()?;
    Some(Slot {
        _held: held,
        name: name.to_owned(),
    })
}

/// Sends a reply; a client that went away is not an error worth more than a log line.
fn send(conn: &Pipe, bytes: &[u8], stop: &Event) {
    let _ = conn.write(bytes, Some(stop));
}

/// Ends the conversation with the client: give it up to 2 s to read what was sent, then
/// disconnect.
fn close(conn: &Pipe) {
    conn.flush_bounded(IO_TIMEOUT);
    conn.disconnect();
}

/// The time from accept to each step of a session's start, logged (at debug level) with the
/// PID reply: where connect → PID reply goes.
struct Steps {
    accepted: Instant,
    marks: Vec<(&'static str, Duration)>,
}

impl Steps {
    fn new(accepted: Instant) -> Self {
        Self {
            accepted,
            marks: Vec::with_capacity(12),
        }
    }

    fn mark(&mut self, step: &'static str) {
        self.marks.push((step, self.accepted.elapsed()));
    }

    /// `step +Δms` for each step, Δ since the one before.
    fn text(&self) -> String {
        let mut out = String::new();
        let mut last = Duration::ZERO;
        for (step, at) in &self.marks {
            let delta = at.saturating_sub(last);
            last = *at;
            let _ = write!(out, "{step} +{:.2}ms ", delta.as_secs_f64() * 1000.0);
        }
        let _ = write!(out, "= {:.2}ms", last.as_secs_f64() * 1000.0);
        out
    }
}

/// What the log says about a session: its number and the client's process id.
#[derive(Debug, Clone, Copy)]
struct Tag {
    session: u64,
    client_pid: u32,
}

/// Serves one connected client to the end.
pub fn serve<F: NetFactory>(conn: &Pipe, ctx: &Context<F>, stop: &Event, accepted: Instant) {
    let mut steps = Steps::new(accepted);
    steps.mark("thread");
    let tag = Tag {
        session: ctx.next_session_id(),
        client_pid: conn.client_pid().unwrap_or(0),
    };
    steps.mark("client_pid");
    let mut msg = match read_startup(conn, stop, tag) {
        Ok(m) => m,
        Err(Some(f)) => {
            send(conn, &error_reply(f.code, &f.label), stop);
            close(conn);
            return;
        }
        Err(None) => {
            conn.disconnect();
            return;
        }
    };
    steps.mark("startup_message");
    let (launched, slot) = match start(conn, ctx, &msg, tag, &mut steps) {
        Ok(x) => x,
        Err(f) => {
            error!(session = tag.session, client_pid = tag.client_pid, "{f}");
            send(conn, &error_reply(f.code, &f.label), stop);
            close(conn);
            return;
        }
    };
    let user = slot.name.clone();
    let pid = launched.process.pid();
    send(conn, &Reply::Pid(pid).encode(), stop);
    steps.mark("pid_reply");
    debug!(
        session = tag.session,
        user = %user,
        openvpn_pid = pid,
        "openvpn started; from accept: {}",
        steps.text()
    );
    write_stdin(&launched.stdin, &msg.stdin);
    // The third string is usually the management password.
    msg.stdin.zeroize();
    // Only the channel needs the numbering: decided after the PID reply (a stat of the
    // file that was just started), off the client's wait.
    let (revision, why) = ctx.numbering.for_session();
    if let Some(why) = why {
        info!(
            session = tag.session,
            "channel numbering {revision:?}: {why}"
        );
    }
    let codec = Codec::new(ctx.arch, revision);
    let Launched {
        process,
        stdin,
        channel,
    } = launched;
    let mut session = WinSession::new(
        ctx.net.make(),
        SessionConfig {
            exe_path: ctx.settings.exe_path.clone(),
            bin_dir: ctx.settings.bin_dir.clone(),
        },
    );
    session.set_pid(pid);
    serve_channel(&channel, &mut session, codec, stop, tag);
    drop(channel);
    if let Some(code) = end_process(&process) {
        let text = format!("OpenVPN exited with error: exit code = {code}");
        error!(session = tag.session, user = %user, "{text}");
        send(conn, &error_reply(ERROR_OPENVPN_STARTUP, &text), stop);
    }
    session.finish();
    debug!(session = tag.session, user = %user, "session ended");
    drop(stdin);
    close(conn);
}

/// Reads and decodes the startup message (spec §2.2, §2.3). `Err(None)`: the service is
/// stopping, no reply.
fn read_startup(conn: &Pipe, stop: &Event, tag: Tag) -> Result<StartupMessage, Option<Failure>> {
    let startup_error = |label: &str| Failure {
        code: ERROR_STARTUP_DATA,
        label: label.to_owned(),
    };
    let mut buf = vec![0u8; MAX_BYTES + 1];
    let n = match conn.read(&mut buf, Some(stop), Some(IO_TIMEOUT)) {
        Ok(n) => n,
        Err(IoError::Timeout) => {
            error!(
                session = tag.session,
                client_pid = tag.client_pid,
                "Timeout waiting for startup data"
            );
            return Err(Some(startup_error(startup::TIMEOUT_LABEL)));
        }
        Err(IoError::Stopped) => return Err(None),
        Err(e) if e.is_more_data() => {
            error!(
                session = tag.session,
                client_pid = tag.client_pid,
                "Startup data is too long"
            );
            return Err(Some(startup_error(startup::FUNCTION_LABEL)));
        }
        Err(e) => {
            return Err(Some(Failure {
                code: e.code(),
                label: "ReadPipeAsync".into(),
            }))
        }
    };
    if n == 0 {
        // Upstream 2.7 peeks for data and takes "nothing" for the timeout, also when a
        // 0-byte message completed the peek at once: same label, without the wait.
        error!(
            session = tag.session,
            client_pid = tag.client_pid,
            "Timeout waiting for startup data (a 0-byte message)"
        );
        return Err(Some(startup_error(startup::TIMEOUT_LABEL)));
    }
    let decoded = StartupMessage::decode(&buf[..n]);
    // The raw bytes hold the management password too.
    buf.zeroize();
    match decoded {
        Ok(d) => Ok(d.message),
        Err(e) => {
            error!(
                session = tag.session,
                client_pid = tag.client_pid,
                "Invalid startup data: {e}"
            );
            Err(Some(startup_error(e.function())))
        }
    }
}

/// Checks and starts openvpn as the client (spec §3, §4.1). Impersonation ends on every
/// path: explicitly on success (a failure to revert kills openvpn), by the guard otherwise.
fn start<F: NetFactory>(
    conn: &Pipe,
    ctx: &Context<F>,
    msg: &StartupMessage,
    tag: Tag,
    steps: &mut Steps,
) -> Result<(Launched, Slot), Failure> {
    let imp = Impersonation::start(conn)?;
    let token = Token::thread()?;
    let token_user = token.user("GetTokenInformation (impersonation token)")?;
    let user_sid = token_user.sid.clone();
    steps.mark("token");
    let (user, domain) = token_user.account().unwrap_or_else(|e| {
        error!(session = tag.session, client_pid = tag.client_pid, "{e}");
        (String::new(), String::new())
    });
    steps.mark("account_name");
    let caller = Caller {
        user: user.clone(),
        domain: domain.clone(),
        superuser: false,
    };
    let auth = AuthSettings {
        admin_groups: ctx.admin_groups.clone(),
        service_user: ctx.settings.ovpn_service_user.clone(),
        service_domain: "NT SERVICE".into(),
    };
    let check = WindowsConfigCheck {
        config_dir: ctx.settings.config_dir.clone(),
    };
    let decision = match ctx.membership {
        MembershipSource::Token => {
            let membership = TokenMembership::new(&token_user, &token)?;
            decide_windows(
                &msg.options,
                &msg.working_dir,
                &check,
                &caller,
                &membership,
                &auth,
            )
        }
        MembershipSource::NoGroups => decide_windows(
            &msg.options,
            &msg.working_dir,
            &check,
            &caller,
            &NoGroups,
            &auth,
        ),
    };
    steps.mark("decision");
    match decision {
        Ok(Allowance::Validated) => {}
        Ok(Allowance::Authorized(by, refusal)) => info!(
            session = tag.session,
            user = %user,
            "Authorizing user '{user}@{domain}' by virtue of {by} ({refusal})"
        ),
        Err(refusal) => {
            return Err(Failure {
                code: ERROR_STARTUP_DATA,
                label: refusal.message(&ctx.settings.ovpn_admin_group),
            })
        }
    }
    let Some(slot) = take_slot(ctx, &user_sid, &user) else {
        return Err(Failure {
            code: ERROR_TOO_MANY_SESS,
            label: format!(
                "Too many sessions for this user (at most {}; the registry value max_sessions_per_user sets it)",
                ctx.settings.max_sessions_per_user
            ),
        });
    };
    steps.mark("slot");
    let channel_name = ctx
        .instance
        .session_pipe_path(launch::thread_id(), &launch::new_uuid());
    steps.mark("uuid");
    let launched = launch::launch_marked(
        &token,
        &LaunchRequest {
            exe_path: &ctx.settings.exe_path,
            options: &msg.options,
            working_dir: &msg.working_dir,
            priority_class: ctx.settings.priority.windows_class(),
            channel_name,
            service_sid: &ctx.service_sid,
            user_sid: &user_sid,
            stdin_len: msg.stdin.len(),
        },
        &mut |step| steps.mark(step),
    )?;
    steps.mark("launch");
    if let Err(e) = imp.revert() {
        launched.process.terminate(1);
        return Err(e.into());
    }
    steps.mark("revert");
    Ok((launched, slot))
}

/// Writes the third startup string to openvpn's stdin as UTF-8 (spec §4.6). The pipe was
/// made with room for it, so the write does not wait for openvpn.
fn write_stdin(mut stdin: &File, text: &str) {
    if text.is_empty() {
        return;
    }
    let _ = stdin.write_all(text.as_bytes());
}

/// Serves channel requests until the channel ends, the service stops, or a request is too
/// large (CVE-2024-27459: no ack, the channel is dropped).
fn serve_channel<N: openvpnserv_core::windows::net::WinNet>(
    channel: &Pipe,
    session: &mut WinSession<N>,
    codec: Codec,
    stop: &Event,
    tag: Tag,
) {
    let mut buf = vec![0u8; codec.max_request_size() + 1];
    loop {
        let n = match channel.read(&mut buf, Some(stop), None) {
            Ok(n) => n,
            Err(e) if e.is_more_data() => {
                error!(
                    session = tag.session,
                    "OpenVPN process sent too large payload length"
                );
                return;
            }
            Err(_) => return,
        };
        let ack = match codec.decode_request(&buf[..n]) {
            Ok(env) => openvpnserv_proto::channel::Ack {
                message_id: env.message_id,
                error_number: session.handle(&env.request),
            },
            Err(e) => {
                error!(session = tag.session, "Bad message from openvpn: {e}");
                match e.ack() {
                    Some(ack) => ack,
                    None => return,
                }
            }
        };
        if channel.write(&codec.encode_ack(ack), Some(stop)).is_err() {
            return;
        }
    }
}

/// Waits up to [`EXIT_GRACE`] for openvpn; kills it if it is still running. Returns its exit
/// code if it exited by itself with a non-zero code.
fn end_process(process: &Process) -> Option<u32> {
    match process.wait(EXIT_GRACE) {
        Ok(true) => process.exit_code().ok().filter(|&code| code != 0),
        Ok(false) => {
            process.terminate(1);
            let _ = process.wait(Duration::from_secs(5));
            None
        }
        Err(_) => None,
    }
}
