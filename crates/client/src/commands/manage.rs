//! `iservice list`, `status`, `stop` and `log`: requests to the service's control socket
//! (Linux). The service decides from the kernel who asks: an ordinary user sees and stops
//! only their own connections, the admin group and root all of them; a refusal comes back
//! as an error with its own exit code (docs/ISERVICE.md).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cli::{InstanceArgs, ListArgs, LogArgs, NameArgs, StopArgs};
use crate::connect::Outcome;
use crate::control::{ControlClient, ControlError, ErrorCode, State};
use crate::service::Transport;

use super::format;
use super::output::{self, failure, outcome_of, Output};

/// How long one answer of the control socket may take.
#[cfg(target_os = "linux")]
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often `log --follow` and `stop` ask again.
const POLL: Duration = Duration::from_millis(250);

/// Connects, or reports why not.
#[cfg(target_os = "linux")]
async fn client(
    args: &InstanceArgs,
    json: bool,
) -> Result<ControlClient<crate::service::linux::SeqpacketTransport>, u8> {
    let path = super::control_socket(args, None).map_err(|e| {
        failure(
            &mut std::io::stdout(),
            json,
            Outcome::LocalError,
            &e.to_string(),
        )
    })?;
    crate::control::connect(&path, TIMEOUT)
        .await
        .map_err(|e| failure(&mut std::io::stdout(), json, outcome_of(&e), &e.to_string()))
}

/// Other platforms: these commands need the Linux service's control socket.
#[cfg(not(target_os = "linux"))]
#[allow(clippy::unused_async)] // the same signature as the Linux version
async fn client(
    _args: &InstanceArgs,
    json: bool,
) -> Result<ControlClient<crate::service::PlatformTransport>, u8> {
    Err(failure(
        &mut std::io::stdout(),
        json,
        Outcome::LocalError,
        "this command needs the Linux service's control socket; on Windows it is not available yet (use OpenVPN-GUI, or `iservice connect` and Ctrl-C)",
    ))
}

/// `iservice list`.
pub async fn list(args: &ListArgs) -> u8 {
    match client(&args.instance, args.json).await {
        Ok(mut c) => list_with(&mut c, args.json, &mut std::io::stdout()).await,
        Err(code) => code,
    }
}

/// `iservice status NAME`.
pub async fn status(args: &NameArgs) -> u8 {
    match client(&args.instance, args.json).await {
        Ok(mut c) => status_with(&mut c, &args.name, args.json, &mut std::io::stdout()).await,
        Err(code) => code,
    }
}

/// `iservice stop NAME|--all`.
pub async fn stop(args: &StopArgs) -> u8 {
    match client(&args.instance, args.json).await {
        Ok(mut c) => {
            let wait = Duration::from_secs(args.wait);
            let name = if args.all { None } else { args.name.as_deref() };
            stop_with(&mut c, name, wait, args.json, &mut std::io::stdout()).await
        }
        Err(code) => code,
    }
}

/// `iservice log NAME [--follow]`.
pub async fn log(args: &LogArgs) -> u8 {
    match client(&args.instance, args.json).await {
        Ok(mut c) => {
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let view = LogView {
                name: &args.name,
                follow: args.follow,
                last: args.lines,
                json: args.json,
            };
            log_with(&mut c, &view, stop, &mut std::io::stdout()).await
        }
        Err(code) => code,
    }
}

fn refused(out: &mut dyn Write, json: bool, e: &ControlError) -> u8 {
    failure(out, json, outcome_of(e), &e.to_string())
}

/// `list` over a connected client.
pub async fn list_with<T: Transport>(
    client: &mut ControlClient<T>,
    json: bool,
    out: &mut dyn Write,
) -> u8 {
    match client.list().await {
        Ok(connections) => {
            if json {
                output::json(
                    out,
                    &Output::List {
                        connections: &connections,
                    },
                );
            } else {
                let _ = out.write_all(format::table(&connections, format::now()).as_bytes());
            }
            0
        }
        Err(e) => refused(out, json, &e),
    }
}

/// `status` over a connected client.
pub async fn status_with<T: Transport>(
    client: &mut ControlClient<T>,
    name: &str,
    json: bool,
    out: &mut dyn Write,
) -> u8 {
    match client.status(name).await {
        Ok(connection) => {
            if json {
                output::json(
                    out,
                    &Output::Status {
                        connection: &connection,
                    },
                );
            } else {
                let _ = out.write_all(format::details(&connection, format::now()).as_bytes());
            }
            0
        }
        Err(e) => refused(out, json, &e),
    }
}

/// Waits until each of `names` has exited (or is gone), at most `wait`; those that did.
pub async fn wait_exited<T: Transport>(
    client: &mut ControlClient<T>,
    names: &[String],
    wait: Duration,
) -> Result<Vec<String>, ControlError> {
    let deadline = Instant::now() + wait;
    let mut exited = Vec::new();
    let mut left: Vec<String> = names.to_vec();
    loop {
        let mut still = Vec::new();
        for name in left {
            match client.status(&name).await {
                Ok(c) if c.state == State::Exited => exited.push(name),
                Err(ControlError::Refused {
                    code: ErrorCode::NotFound,
                    ..
                }) => exited.push(name),
                Ok(_) => still.push(name),
                Err(e) => return Err(e),
            }
        }
        if still.is_empty() || Instant::now() >= deadline {
            return Ok(exited);
        }
        left = still;
        tokio::time::sleep(POLL).await;
    }
}

/// `stop` over a connected client: `name`, or all with `None`.
pub async fn stop_with<T: Transport>(
    client: &mut ControlClient<T>,
    name: Option<&str>,
    wait: Duration,
    json: bool,
    out: &mut dyn Write,
) -> u8 {
    let names = match client.stop(name).await {
        Ok(names) => names,
        Err(e) => return refused(out, json, &e),
    };
    if !json {
        match (name, names.is_empty()) {
            (Some(name), true) => {
                let _ = writeln!(out, "{name} has already ended");
            }
            (None, true) => {
                let _ = writeln!(out, "no connections to stop");
            }
            _ => {
                for n in &names {
                    let _ = writeln!(out, "stopping {n}");
                }
            }
        }
    }
    let exited = if wait.is_zero() {
        Vec::new()
    } else {
        match wait_exited(client, &names, wait).await {
            Ok(exited) => exited,
            Err(e) => return refused(out, json, &e),
        }
    };
    if json {
        output::json(
            out,
            &Output::Stop {
                stopping: &names,
                exited: &exited,
            },
        );
    } else {
        for n in &exited {
            let _ = writeln!(out, "{n} has exited");
        }
        for n in names.iter().filter(|n| !exited.contains(n)) {
            if !wait.is_zero() {
                let _ = writeln!(
                    out,
                    "{n} is still exiting after {} s; `iservice status {n}` shows when it is done",
                    wait.as_secs()
                );
            }
        }
    }
    0
}

/// What `log` shows.
#[derive(Debug, Clone)]
pub struct LogView<'a> {
    /// The connection.
    pub name: &'a str,
    /// Keep reading until openvpn exits.
    pub follow: bool,
    /// Only the last N lines first.
    pub last: Option<u32>,
    /// JSON objects instead of the text.
    pub json: bool,
}

fn show_line(out: &mut dyn Write, json: bool, number: u64, text: &str) {
    if json {
        output::json(out, &Output::LogLine { number, text });
    } else {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// `log` over a connected client; `stop` ends a `--follow` early (Ctrl-C).
pub async fn log_with<T: Transport>(
    client: &mut ControlClient<T>,
    view: &LogView<'_>,
    stop: impl std::future::Future<Output = ()>,
    out: &mut dyn Write,
) -> u8 {
    let json = view.json;
    // Everything kept so far, or its last N lines.
    let mut kept: std::collections::VecDeque<(u64, String)> = std::collections::VecDeque::new();
    let mut from = 0;
    let mut ended;
    loop {
        let chunk = match client.log(view.name, from, None).await {
            Ok(chunk) => chunk,
            Err(e) => return refused(out, json, &e),
        };
        ended = chunk.ended;
        let count = chunk.lines.len();
        for (i, line) in chunk.lines.into_iter().enumerate() {
            kept.push_back((chunk.first + i as u64, line));
            if let Some(last) = view.last {
                while kept.len() > usize::try_from(last).unwrap_or(usize::MAX) {
                    kept.pop_front();
                }
            }
        }
        if count == 0 || chunk.next <= from {
            from = chunk.next.max(from);
            break;
        }
        from = chunk.next;
    }
    for (number, text) in &kept {
        show_line(out, json, *number, text);
    }
    if view.follow && !ended {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(POLL) => {}
            }
            let chunk = match client.log(view.name, from, None).await {
                Ok(chunk) => chunk,
                Err(e) => return refused(out, json, &e),
            };
            for (i, line) in chunk.lines.iter().enumerate() {
                show_line(out, json, chunk.first + i as u64, line);
            }
            from = chunk.next.max(from);
            ended = chunk.ended;
            if ended && chunk.lines.is_empty() {
                break;
            }
        }
    }
    if json {
        output::json(out, &Output::LogEnd { next: from, ended });
    }
    0
}
