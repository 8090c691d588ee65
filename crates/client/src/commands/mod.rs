//! What each `iservice` subcommand does (the command line is in [`crate::cli`]; `main.rs`
//! only parses it and calls [`main`]).
//!
//! * [`connect`]: `connect` and `start` (start openvpn through the service, follow it);
//! * [`manage`]: `list`, `status`, `stop`, `log` through the control socket (Linux);
//! * [`restart`]: stop one's own connection, wait for its end, start it again;
//! * [`format`]: sizes, ages and the table of `list`;
//! * [`output`]: the JSON of the management commands and their exit codes;
//! * [`shell`]: completions and the man page.

pub mod connect;
pub mod format;
pub mod manage;
pub mod output;
pub mod restart;
pub mod shell;

use std::path::PathBuf;

use openvpnserv_settings::{Instance, InstanceError};

use crate::cli::{Cli, Commands, InstanceArgs};
use crate::connect::Outcome;

/// A `-instance` switch that names no usable instance.
#[derive(Debug, thiserror::Error)]
pub enum InstanceArgError {
    /// Not `interactive NAME`.
    #[error("invalid argument to -instance {0}: use -instance interactive NAME")]
    Kind(String),
    /// The name cannot be used.
    #[error(transparent)]
    Name(#[from] InstanceError),
}

/// The instance `-instance interactive NAME` names (the default one without it).
pub fn instance(words: Option<&[String]>) -> Result<Instance, InstanceArgError> {
    match words {
        None => Ok(Instance::default()),
        Some([kind, name]) if kind.eq_ignore_ascii_case("interactive") => Ok(Instance::new(name)?),
        Some(words) => Err(InstanceArgError::Kind(
            words.first().cloned().unwrap_or_default(),
        )),
    }
}

/// The control socket: `--control-socket`, else next to `--socket` (tests), else the
/// instance's.
pub fn control_socket(
    args: &InstanceArgs,
    socket: Option<&PathBuf>,
) -> Result<PathBuf, InstanceArgError> {
    if let Some(path) = &args.control_socket {
        return Ok(path.clone());
    }
    if let Some(socket) = socket {
        return Ok(socket.with_file_name("control"));
    }
    Ok(crate::control::control_path(&instance(
        args.instance.as_deref(),
    )?))
}

/// Runs the command; returns the process exit code.
pub fn main(cli: Cli) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iservice: error: cannot start the async runtime: {e}");
            return Outcome::LocalError.code();
        }
    };
    let code = match cli.command {
        Commands::Connect(args) => connect::main(&runtime, &args.config, &args.start, false),
        Commands::Start(args) => connect::main(&runtime, &args.config, &args.start, true),
        Commands::Restart(args) => restart::main(&runtime, &args),
        Commands::List(args) => runtime.block_on(manage::list(&args)),
        Commands::Status(args) => runtime.block_on(manage::status(&args)),
        Commands::Stop(args) => runtime.block_on(manage::stop(&args)),
        Commands::Log(args) => runtime.block_on(manage::log(&args)),
        Commands::Completions(args) => shell::completions(args.shell, &mut std::io::stdout()),
        Commands::Man => shell::man(&mut std::io::stdout()),
    };
    // A prompt may still wait for a line on its blocking thread (the command ended while it
    // asked, e.g. by Ctrl-C): do not wait for it. The process ends, and the thread with it.
    runtime.shutdown_background();
    code
}
