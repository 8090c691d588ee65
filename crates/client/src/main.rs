//! `iservice`: start openvpn through the `OpenVPN` interactive service and follow the
//! connection. Usage, exit codes and the `--json` schema: docs/ISERVICE.md.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iservice::connect::options::{free_loopback_port, generate_password};
use iservice::connect::{
    run, Credentials, Event, LaunchPlan, Outcome, PasswordSource, RunOptions, Sink,
};
use iservice::service::{self, Endpoint};
use iservice::ui::{can_prompt, JsonSink, TerminalPrompter, TerminalRestore, TerminalSink};
use openvpnserv_settings::{Instance, InstanceError};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Start openvpn through the interactive service and follow the connection.
#[derive(Debug, Parser)]
#[command(name = "iservice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Start openvpn with CONFIG and follow the connection until it ends (Ctrl-C
    /// disconnects).
    Connect(ConnectArgs),
}

#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// The openvpn config file (ordinary users: inside the service's config directory).
    config: PathBuf,

    /// Use the service instance NAME (upstream form: `-instance interactive NAME`).
    #[arg(long, num_args = 2, value_names = ["interactive", "NAME"])]
    instance: Option<Vec<String>>,

    /// Write one JSON object per event on stdout instead of the live display.
    #[arg(long)]
    json: bool,

    /// Answer openvpn's user name/password request from FILE (user name on line 1,
    /// password on line 2) instead of asking.
    #[arg(long, value_name = "FILE")]
    auth_file: Option<PathBuf>,

    /// Never ask on the terminal (credentials come from --auth-file only).
    #[arg(long)]
    non_interactive: bool,

    /// Seconds to wait for the service's reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    timeout: u64,

    /// Show openvpn's whole log and protocol details.
    #[arg(short, long)]
    verbose: bool,

    /// Linux: connect to this socket instead of the instance's (for tests and debugging).
    #[arg(long, value_name = "PATH", hide = true)]
    socket: Option<PathBuf>,
}

/// Rewrites upstream's single-dash `-instance` to `--instance`.
fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            if arg
                .to_str()
                .is_some_and(|a| a.eq_ignore_ascii_case("-instance"))
            {
                OsString::from("--instance")
            } else {
                arg
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize(std::env::args_os()));
    let Commands::Connect(args) = cli.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iservice: error: cannot start the async runtime: {e}");
            return ExitCode::from(Outcome::LocalError.code());
        }
    };
    let mut sink: Box<dyn Sink> = if args.json {
        Box::new(JsonSink::new(std::io::stdout()))
    } else {
        Box::new(TerminalSink::new(args.verbose))
    };
    let terminal = TerminalRestore::save();
    let outcome = runtime.block_on(connect(&args, sink.as_mut()));
    // A prompt may still wait for a line on its blocking thread (the command ended while it
    // asked, e.g. by Ctrl-C): do not wait for it. The process ends, and the thread with it.
    runtime.shutdown_background();
    drop(terminal);
    ExitCode::from(outcome.code())
}

fn fail(sink: &mut dyn Sink, outcome: Outcome, message: String) -> Outcome {
    sink.event(
        Duration::ZERO,
        &Event::Exit {
            code: outcome.code(),
            outcome: outcome.name(),
            message,
        },
    );
    outcome
}

async fn connect(args: &ConnectArgs, sink: &mut dyn Sink) -> Outcome {
    let instance = match instance(args.instance.as_deref()) {
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
    // Keeps the Linux password file until the end; it is removed on drop.
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
    let plan = match LaunchPlan::new(&args.config, password, source, management) {
        Ok(plan) => plan,
        Err(e) => return fail(sink, Outcome::LocalError, e.to_string()),
    };
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

/// A `-instance` switch that names no usable instance.
#[derive(Debug, thiserror::Error)]
enum InstanceArgError {
    /// Not `interactive NAME`.
    #[error("invalid argument to -instance {0}: use -instance interactive NAME")]
    Kind(String),
    /// The name cannot be used.
    #[error(transparent)]
    Name(#[from] InstanceError),
}

fn instance(words: Option<&[String]>) -> Result<Instance, InstanceArgError> {
    match words {
        None => Ok(Instance::default()),
        Some([kind, name]) if kind.eq_ignore_ascii_case("interactive") => Ok(Instance::new(name)?),
        Some(words) => Err(InstanceArgError::Kind(
            words.first().cloned().unwrap_or_default(),
        )),
    }
}

/// A private file for the management password, removed (after being overwritten) when the
/// guard drops.
#[cfg(unix)]
struct PasswordFile {
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

#[cfg(unix)]
fn password_source(password: &str) -> Result<(PasswordSource, Option<PasswordFile>), String> {
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
fn password_source(_password: &str) -> Result<(PasswordSource, Option<()>), String> {
    Ok((PasswordSource::Stdin, None))
}

/// Ctrl-C (and on Unix SIGTERM and SIGHUP) as a stream of interrupts.
fn interrupts() -> mpsc::UnboundedReceiver<()> {
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
