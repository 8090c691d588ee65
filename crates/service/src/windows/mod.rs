//! The Windows service: a drop-in `openvpnserv.exe` (spec §1–§7).
//!
//! * [`scm`]: `-install`, `-remove`, `-start`, and running under the SCM.
//! * [`server`]: the client pipe's accept loop; [`session`]: one client from startup message
//!   to undo; [`launch`]: `CreateProcessAsUserW`; [`token`]: identity and impersonation.
//! * [`pipe`]: overlapped pipe I/O with timeouts; [`security`]: descriptors; [`reply`]:
//!   error replies through `FormatMessageW`; [`eventlog`]: the event log.
//! * [`net`]: the real network layer behind `openvpnserv_core::windows::net::WinNet`; the
//!   handlers' logic is in `openvpnserv_core::windows::session`.

pub mod eventlog;
pub mod launch;
pub mod net;
pub mod pipe;
pub mod registry;
pub mod reply;
pub mod scm;
pub mod security;
pub mod server;
pub mod session;
pub mod token;
pub mod version;
pub mod win32;

use std::process::ExitCode;

use openvpnserv_core::windows::session::startup_cleanup;
use openvpnserv_proto::channel::{Arch, Codec};
use openvpnserv_settings::Instance;

use crate::cli::Cli;
use eventlog::EventLog;
use server::{Context, MembershipSource, Server};
use win32::Event;

/// Runs the service for `instance` until `stop` is set: start-up clean-up, settings, the
/// first pipe instance, then `running()` and the accept loop. Returns the Win32 exit code.
pub fn run_service(instance: &Instance, stop: &Event, running: impl FnOnce()) -> u32 {
    let log = EventLog::new(&instance.event_source());
    startup_cleanup(&mut net::RealNet);
    let settings = match registry::load(instance) {
        Ok(s) => s,
        Err(e) => {
            log.error(&e.to_string());
            return match e {
                openvpnserv_settings::registry::RegistryError::KeyMissing { .. } => 2,
                openvpnserv_settings::registry::RegistryError::Value { .. } => 13,
            };
        }
    };
    let (revision, why) = version::revision(settings.msg_protocol, &settings.exe_path);
    log.info(&format!("channel numbering {revision:?}: {why}"));
    let ctx = match Context::new(
        instance.clone(),
        settings,
        Codec::new(Arch::NATIVE, revision),
        MembershipSource::Token,
        net::RealNetFactory,
    ) {
        Ok(c) => c,
        Err(e) => {
            log.error(&e.to_string());
            return e.code;
        }
    };
    let server = match Server::bind(ctx) {
        Ok(s) => s,
        Err(e) => {
            log.error(&format!(
                "Could not create the pipe {}: {e}",
                instance.pipe_path()
            ));
            return e.code;
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
            EventLog::new("openvpnserv").error(&e.to_string());
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        return match registry::load(&instance) {
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
        EventLog::new("openvpnserv").error(&format!("StartServiceCtrlDispatcher failed: {e}"));
        eprint!("{USAGE}");
    }
    ExitCode::SUCCESS
}
