//! The Windows service: a drop-in `openvpnserv.exe` (spec §1–§7).
//!
//! * [`scm`]: `-install`, `-remove`, `-start`, and running under the SCM.
//! * [`server`]: the client pipe's accept loop; [`session`]: one client from startup message
//!   to undo; [`launch`]: starting openvpn as the client; [`token`]: group membership.
//! * [`reply`]: error replies; [`version`]: which channel numbering; [`eventlog`]: the
//!   `tracing` layer that writes the event log.
//! * [`net`]: the real network layer behind `openvpnserv_core::windows::net::WinNet`; the
//!   handlers' logic is in `openvpnserv_core::windows::session`.
//! * [`sys`]: the only layer that calls the operating system directly. Every other module
//!   here is declared with `deny(unsafe_code)` and calls its wrappers.

#[deny(unsafe_code)]
pub mod eventlog;
#[deny(unsafe_code)]
pub mod launch;
#[deny(unsafe_code)]
pub mod net;
#[deny(unsafe_code)]
pub mod reply;
#[deny(unsafe_code)]
pub mod scm;
#[deny(unsafe_code)]
pub mod server;
#[deny(unsafe_code)]
pub mod session;
pub mod sys;
#[deny(unsafe_code)]
pub mod token;
#[deny(unsafe_code)]
pub mod version;

use std::process::ExitCode;

use openvpnserv_core::windows::session::startup_cleanup;
use openvpnserv_proto::channel::Arch;
use openvpnserv_settings::registry::RegistryError;
use openvpnserv_settings::{Instance, Settings};
use tracing::{error, info};

use crate::cli::Cli;
use server::{Context, MembershipSource, Server};
use sys::kernel::Event;
use sys::registry::Key;
use sys::Win32Error;

/// Loads the settings of `instance` from `HKLM\SOFTWARE\OpenVPN<id>` (spec §7). The rules
/// live in `openvpnserv_settings::registry`; this only fetches the values.
pub fn load_settings(instance: &Instance) -> Result<Settings, RegistryError> {
    let Ok(key) = Key::open(&instance.registry_key()) else {
        return Err(RegistryError::KeyMissing {
            key: instance.registry_key(),
        });
    };
    openvpnserv_settings::registry::read(instance, |name| key.setting(name))
}

/// Why the service could not start; its `Display` is the event log's text.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The registry settings are missing or unusable.
    #[error(transparent)]
    Settings(#[from] RegistryError),
    /// The service's own identity could not be read.
    #[error(transparent)]
    Context(Win32Error),
    /// The client pipe could not be created (its name may be taken: CVE-2024-4877).
    #[error("Could not create the pipe {path}: {source}")]
    Pipe {
        /// The pipe's path.
        path: String,
        /// What failed.
        source: Win32Error,
    },
}

impl StartError {
    /// The Win32 exit code the SCM is told.
    pub fn exit_code(&self) -> u32 {
        match self {
            StartError::Settings(RegistryError::KeyMissing { .. }) => 2,
            StartError::Settings(RegistryError::Value { .. }) => 13,
            StartError::Context(e) | StartError::Pipe { source: e, .. } => e.code,
        }
    }
}

/// Start-up: clean-up, settings, the first pipe instance.
fn start(
    instance: &Instance,
    membership: MembershipSource,
) -> Result<Server<net::RealNetFactory>, StartError> {
    startup_cleanup(&mut net::RealNet);
    let settings = load_settings(instance)?;
    let ctx = Context::new(
        instance.clone(),
        settings,
        Arch::NATIVE,
        membership,
        net::RealNetFactory,
    )
    .map_err(StartError::Context)?;
    // Each session decides again from the openvpn.exe it starts; this logs the first view.
    let (revision, why) = ctx.numbering.for_session();
    info!(
        "channel numbering {revision:?}: {}",
        why.unwrap_or_default()
    );
    Server::bind(ctx).map_err(|source| StartError::Pipe {
        path: instance.pipe_path(),
        source,
    })
}

/// Runs the service for `instance` until `stop` is set: start-up clean-up, settings, the
/// first pipe instance, then `running()` and the accept loop. Returns the Win32 exit code.
pub fn run_service(
    instance: &Instance,
    membership: MembershipSource,
    stop: &Event,
    running: impl FnOnce(),
) -> u32 {
    eventlog::init(&instance.event_source());
    let server = match start(instance, membership) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return e.exit_code();
        }
    };
    running();
    match server.run(stop) {
        Ok(()) => 0,
        Err(e) => e.code,
    }
}

const USAGE: &str = "\
openvpnserv -install   to install the interactive service
openvpnserv -start [name]  to start the service (name = \"interactive\" is optional)
openvpnserv -remove    to remove the service

openvpnserv -instance interactive <id>
   Runs the service as an alternate instance.
   The service settings will be loaded from
   HKLM\\SOFTWARE\\OpenVPN<id> registry key, and the service will accept
   requests on \\\\.\\pipe\\openvpn<id>\\service named pipe.
";

/// Entry point of the Windows executable.
pub fn main(cli: &Cli) -> ExitCode {
    let instance = match cli.instance() {
        Ok(i) => i,
        Err(e) => {
            eventlog::init("openvpnserv");
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        return match load_settings(&instance) {
            Ok(settings) => {
                println!(
                    "# effective settings of instance {:?}, read from HKLM\\{}",
                    instance.id(),
                    instance.registry_key()
                );
                print!("{}", openvpnserv_settings::registry::render(&settings));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("openvpnserv: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.install {
        return scm::install(&instance);
    }
    if cli.remove {
        return scm::remove(&instance);
    }
    if cli.start {
        return scm::start(&instance);
    }
    println!("{} - use --help for usage", instance.display_name());
    println!("StartServiceCtrlDispatcher being called.");
    println!("This may take a few seconds. Please wait.");
    if let Err(e) = scm::dispatch(instance) {
        eventlog::init("openvpnserv");
        error!("StartServiceCtrlDispatcher failed: {e}");
        eprint!("{USAGE}");
    }
    ExitCode::SUCCESS
}
