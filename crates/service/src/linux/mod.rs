//! The Linux service (design §1): a root daemon on `/run/openvpn<id>/service` that starts
//! openvpn as the calling user and performs its network changes.
//!
//! * [`listener`]: the socket (bound here or passed by systemd).
//! * [`server`]: accept loop, readiness, stop.
//! * [`session`]: one client, from startup message to clean-up.
//! * [`control`]: the control socket (list, status, stop, log), over the [`registry`] of
//!   connections and the [`output`] of each openvpn.
//! * [`identity`]: who the caller is, from the kernel.
//! * [`launch`]: fork/exec as the caller.
//! * [`net`]: the network layer and its seam ([`net::Network`]).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use openvpnserv_settings::{linux as settings_file, Instance, Settings};
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::cli::Cli;

pub mod control;
pub mod fs;
pub mod identity;
pub mod journald;
pub mod launch;
pub mod listener;
pub mod net;
pub mod offload;
pub mod openvpn;
pub mod output;
pub mod registry;
pub mod ring;
pub mod server;
pub mod session;
pub mod systemd;

/// How long an idle blocking thread lives: as long as the service (see [`main`]).
const BLOCKING_THREADS_LIVE: std::time::Duration =
    std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// Loads the settings of `instance`: `--settings FILE` if given, else the instance's default
/// file if it exists, else the built-in defaults.
pub fn load_settings(
    cli: &Cli,
    instance: &Instance,
) -> Result<(Settings, Option<String>), settings_file::LinuxSettingsError> {
    settings_file::load(
        cli.settings.as_deref(),
        Path::new(&instance.settings_path()),
    )
}

/// Why the service stopped with an error (logged before it exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The network layer could not start.
    #[error("cannot start the network layer (netlink): {0}")]
    Network(std::io::Error),
    /// The socket could not be bound or taken from systemd.
    #[error(transparent)]
    Listen(#[from] listener::ListenError),
    /// The accept loop failed.
    #[error("the accept loop failed: {0}")]
    Serve(std::io::Error),
}

/// Logs to the journal when systemd connected stderr to it (and `--foreground` was not
/// given), else to stderr. `RUST_LOG` overrides the level (default `info`).
fn init_logging(foreground: bool) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = (!foreground && std::env::var_os("JOURNAL_STREAM").is_some())
        .then(|| journald::JournaldLayer::new("openvpnserv").ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    if let Some(journald) = journald {
        registry.with(journald).init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .init();
    }
}

/// Makes sure fds 0–2 are open, so that no socket or pipe of ours ever lands on them (a child
/// would then get it as its stdio).
fn ensure_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                // Opening takes the lowest free number, which is `fd`; keep it open for good.
                std::mem::forget(null);
            }
        }
    }
}

/// Entry point of the Linux executable.
pub fn main(cli: &Cli) -> ExitCode {
    if cli.install || cli.remove || cli.start {
        eprintln!(
            "openvpnserv: -install, -remove and -start are Windows service commands; on Linux use the systemd units in dist/systemd/"
        );
        return ExitCode::from(2);
    }
    let instance = match cli.instance() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("openvpnserv: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (settings, source) = match load_settings(cli, &instance) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("openvpnserv: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        match &source {
            Some(path) => println!(
                "# effective settings of instance {:?}, read from {path}",
                instance.id()
            ),
            None => println!(
                "# effective settings of instance {:?}: built-in defaults ({} does not exist)",
                instance.id(),
                instance.settings_path()
            ),
        }
        print!("{}", settings_file::render(&settings));
        return ExitCode::SUCCESS;
    }
    // First, while this is the only thread: the environment may be changed only now.
    let activated = listener::take_systemd_socket();
    ensure_stdio();
    init_logging(cli.foreground);
    let activated = match activated {
        Ok(fd) => fd,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if nix::unistd::geteuid().as_raw() != 0 {
        error!("openvpnserv must run as root: it starts openvpn as other users and changes the network");
        return ExitCode::FAILURE;
    }
    // Sessions run on one thread; blocking work runs on the runtime's blocking threads
    // (`offload`). openvpn is forked there, and a child asks for SIGTERM when the thread that
    // forked it dies (PR_SET_PDEATHSIG), so those threads must live as long as the service:
    // they are never retired for being idle.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_THREADS_LIVE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // For tests of the service alone (a fake openvpn): no tun, every channel request
        // refused. An explicit switch on the command line, never the environment: a root
        // daemon's environment is not where its behaviour should be decided.
        if cli.no_network {
            tracing::warn!("--no-network: the network layer is off, every channel request is refused (test mode)");
            return serve(instance, settings, net::NoNetwork, activated).await;
        }
        let config = net::NetConfig::new(&settings, &instance);
        let network = net::LinuxNetwork::new(config)
            .await
            .map_err(ServiceError::Network)?;
        serve(instance, settings, network, activated).await
    });
    // Blocking work that still waits on a mount or directory server that never answered must
    // not keep the service from exiting (dropping the runtime would wait for it for ever).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Listens (on systemd's socket when it passed one, from
/// [`listener::take_systemd_socket`]) and serves until stopped.
pub async fn serve<N: net::Network>(
    instance: Instance,
    settings: Settings,
    network: N,
    activated: Option<std::os::fd::OwnedFd>,
) -> Result<(), ServiceError> {
    let activated = activated.map(listener::from_systemd).transpose()?;
    let socket_path = instance.socket_path();
    let run_dir = instance.run_dir();
    let bound_here = activated.is_none();
    let listener = match activated {
        Some(l) => l,
        None => listener::bind(Path::new(&socket_path)).await?,
    };
    // Ours in both cases (systemd passes only the service socket), next to it.
    let control_path = control::socket_path(&instance);
    let control_listener = match listener::bind(&control_path).await {
        Ok(l) => l,
        Err(e) => {
            if bound_here {
                let _ = std::fs::remove_file(&socket_path);
            }
            return Err(e.into());
        }
    };
    // Under systemd each session's openvpn runs in a unit of its own, outside our sandbox.
    let launcher = net::NetConfig::new(&settings, &instance).hook_path;
    let systemd = systemd::Systemd::connect(instance.id(), launcher);
    if let Some(s) = &systemd {
        tracing::info!(unit = %s.own_unit(), "sessions run openvpn in units of their own");
    }
    let mut shared = session::Shared::new(settings, instance, network, CancellationToken::new());
    shared.systemd = systemd;
    let shared = Arc::new(shared);
    let control = tokio::spawn(control::run(control_listener, Arc::clone(&shared)));
    let result = server::run(listener, Arc::clone(&shared))
        .await
        .map_err(ServiceError::Serve);
    // server::run cancelled `shutdown` on its way out (or failed: end the control loop too).
    shared.shutdown.cancel();
    let _ = control.await;
    let _ = std::fs::remove_file(&control_path);
    if bound_here {
        let _ = std::fs::remove_file(&socket_path);
        // The run directory goes too when nothing is left in it (a journal that could not
        // be undone stays, with the directory, for the next start to replay).
        if result.is_ok() {
            let _ = std::fs::remove_dir(&run_dir);
        }
    }
    result
}
