//! `iservice connect` and `iservice start`: start openvpn through the service with a config
//! and follow the connection over its management interface; `connect` until it ends,
//! `start` until it is up (then openvpn goes on alone).

use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::cli::StartArgs;
use crate::connect::options::{free_loopback_port, generate_password};
use crate::connect::{
    run, Credentials, Event, LaunchPlan, Outcome, PasswordSource, Registry, RunOptions, Sink,
};
use crate::service::{self, Endpoint};
use crate::ui::{can_prompt, JsonSink, TerminalPrompter, TerminalRestore, TerminalSink};

/// Runs `connect` (`detach` false) or `start` (`detach` true) with the display `args` ask
/// for; the exit code.
pub fn main(
    runtime: &tokio::runtime::Runtime,
    config: &Path,
    args: &StartArgs,
    detach: bool,
) -> u8 {
    let mut sink = sink(args);
    let terminal = TerminalRestore::save();
    let outcome = runtime.block_on(launch(config, args, detach, sink.as_mut()));
    drop(terminal);
    outcome.code()
}

/// The display: JSON lines or the terminal.
pub fn sink(args: &StartArgs) -> Box<dyn Sink> {
    if args.json {
        Box::new(JsonSink::new(std::io::stdout()))
    } else {
        Box::new(TerminalSink::new(args.verbose))
    }
}

/// Ends the command before openvpn was started.
pub fn fail(sink: &mut dyn Sink, outcome: Outcome, message: String) -> Outcome {
    sink.event(
        Duration::ZERO,
        &Event::Exit {
            code: outcome.code(),
            outcome: outcome.name(),
            message,
            openvpn_log: None,
        },
    );
    outcome
}

/// Starts `config` through the service and follows it (see [`main`]).
pub async fn launch(config: &Path, args: &StartArgs, detach: bool, sink: &mut dyn Sink) -> Outcome {
    let instance = match super::instance(args.instance.instance.as_deref()) {
        Ok(instance) => instance,
        Err(e) => return fail(sink, Outcome::LocalError, e.to_string()),
    };
    let endpoint = match &args.socket {
        Some(path) => Endpoint::Socket(path.clone()),
        None => Endpoint::for_instance(&instance),
    };
    let mut options = RunOptions::default();
    options.timeouts.reply = Duration::from_secs(args.timeout);
    options.session.interactive = !args.non_interactive && can_prompt();
    options.detach = detach;
    options.registry = registry(args);
    if let Some(file) = &args.auth_file {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => Zeroizing::new(text),
            Err(e) => {
                let why = format!("cannot read the auth file {}: {e}", file.display());
                return fail(sink, Outcome::LocalError, why);
            }
        };
        match Credentials::from_auth_file(&text) {
            Ok(creds) => options.session.auth_file = Some(creds),
            Err(e) => {
                return fail(
                    sink,
                    Outcome::LocalError,
                    format!("{}: {e}", file.display()),
                )
            }
        }
    }
    let password = match generate_password() {
        Ok(p) => p,
        Err(e) => return fail(sink, Outcome::LocalError, e),
    };
    // Keeps the Linux password file until the end; it is removed on drop. openvpn reads it
    // once, at its start, so a connection left running by `start` no longer needs it.
    let (source, _password_file) = match password_source(&password) {
        Ok(found) => found,
        Err(e) => return fail(sink, Outcome::LocalError, e),
    };
    let management = match free_loopback_port() {
        Ok(addr) => addr,
        Err(e) => {
            let why = format!("cannot find a free loopback port for the management interface: {e}");
            return fail(sink, Outcome::LocalError, why);
        }
    };
    let mut plan = match LaunchPlan::new(config, password, source, management) {
        Ok(plan) => plan,
        Err(e) => return fail(sink, Outcome::LocalError, e.to_string()),
    };
    if let Some(log) = windows_log(config) {
        // openvpn.exe writes its output there (as with the GUI's log folder), so that a
        // failure can show openvpn's last lines without changing the pipe protocol.
        plan.options.push_str(" --log ");
        plan.options
            .push_str(&crate::connect::options::quote_arg(&log.to_string_lossy()));
        options.registry = Some(Arc::new(crate::connect::logfile::LogFileRegistry {
            path: log,
        }));
    }
    let transport = match service::connect(&endpoint, options.timeouts.connect).await {
        Ok(t) => t,
        Err(e) => return fail(sink, Outcome::ServiceUnavailable, e.to_string()),
    };
    sink.event(
        Duration::ZERO,
        &Event::ServiceConnected {
            endpoint: endpoint.to_string(),
        },
    );
    let mut interrupts = interrupts();
    run(
        transport,
        &plan,
        &options,
        sink,
        Arc::new(TerminalPrompter),
        &mut interrupts,
    )
    .await
}

/// Linux: the connection's name and openvpn's last lines come from the control socket.
#[cfg(target_os = "linux")]
fn registry(args: &StartArgs) -> Option<Arc<dyn Registry>> {
    let path = super::control_socket(&args.instance, args.socket.as_ref()).ok()?;
    Some(Arc::new(crate::control::ControlRegistry::new(path)))
}

/// Elsewhere there is no control socket.
#[cfg(not(target_os = "linux"))]
fn registry(_args: &StartArgs) -> Option<Arc<dyn Registry>> {
    None
}

/// Windows: `%LOCALAPPDATA%\\iservice\\log\\<name>.log`, its directory created; `None`
/// elsewhere, or when there is no such directory (then openvpn logs where its config says).
fn windows_log(config: &Path) -> Option<std::path::PathBuf> {
    if !cfg!(windows) {
        return None;
    }
    let base = std::path::PathBuf::from(std::env::var_os("LOCALAPPDATA")?);
    let path = crate::connect::logfile::log_path(&base, config);
    std::fs::create_dir_all(path.parent()?).ok()?;
    Some(path)
}

/// A private file for the management password, removed (after being overwritten) when the
/// guard drops.
#[cfg(unix)]
pub struct PasswordFile {
    /// Removes the directory when dropped, after `drop` below cleared the file.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[cfg(unix)]
impl Drop for PasswordFile {
    fn drop(&mut self) {
        if let Ok(len) = std::fs::metadata(&self.path).map(|m| m.len()) {
            let _ = std::fs::write(&self.path, vec![0u8; usize::try_from(len).unwrap_or(0)]);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Linux: the password goes in a 0600 file in a fresh 0700 directory.
#[cfg(unix)]
pub fn password_source(password: &str) -> Result<(PasswordSource, Option<PasswordFile>), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    // XDG_RUNTIME_DIR is private to the user; /tmp may be a service's private tmp.
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("iservice-")
        .tempdir_in(&base)
        .map_err(|e| {
            format!(
                "cannot create a private directory in {}: {e}",
                base.display()
            )
        })?;
    let path = dir.path().join("management-password");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{password}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((
        PasswordSource::File(path.clone()),
        Some(PasswordFile { _dir: dir, path }),
    ))
}

/// Windows: openvpn reads the password from the stdin line, as the GUI passes it.
#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)] // the same signature as the Unix version
pub fn password_source(_password: &str) -> Result<(PasswordSource, Option<()>), String> {
    Ok((PasswordSource::Stdin, None))
}

/// Ctrl-C (and on Unix SIGTERM and SIGHUP) as a stream of interrupts.
pub fn interrupts() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let ctrl_c = tx.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if ctrl_c.send(()).is_err() {
                break;
            }
        }
    });
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        for kind in [SignalKind::terminate(), SignalKind::hangup()] {
            let tx = tx.clone();
            if let Ok(mut stream) = signal(kind) {
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if tx.send(()).is_err() {
                            break;
                        }
                    }
                });
            }
        }
    }
    drop(tx);
    rx
}
