//! `iservice restart NAME`: for the owner of the connection, stop it, wait until its
//! openvpn has exited, then start the same config again as `iservice start` does (prompts
//! included). Someone else's connection is refused, also for administrators: restarting
//! would start it as the administrator, with their credentials, not the owner's.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RestartArgs;
use crate::connect::{Event, Outcome, Sink};
use crate::control::ControlClient;
use crate::service::Transport;

#[cfg(target_os = "linux")]
use super::connect::launch;
use super::connect::{fail, sink};
use super::manage::wait_exited;
use super::output::outcome_of;

/// How long the old openvpn may take to exit.
const EXIT_WAIT: Duration = Duration::from_secs(35);

/// Runs `restart`; the exit code.
pub fn main(runtime: &tokio::runtime::Runtime, args: &RestartArgs) -> u8 {
    let mut sink = sink(&args.start);
    let terminal = crate::ui::TerminalRestore::save();
    let outcome = runtime.block_on(restart(args, sink.as_mut()));
    drop(terminal);
    outcome.code()
}

/// Linux: find and stop the caller's own connection, then start its config again.
#[cfg(target_os = "linux")]
async fn restart(args: &RestartArgs, sink: &mut dyn Sink) -> Outcome {
    let path = match super::control_socket(&args.start.instance, args.start.socket.as_ref()) {
        Ok(path) => path,
        Err(e) => return fail(sink, Outcome::LocalError, e.to_string()),
    };
    let mut client = match crate::control::connect(&path, Duration::from_secs(10)).await {
        Ok(client) => client,
        Err(e) => return fail(sink, outcome_of(&e), e.to_string()),
    };
    let uid = rustix::process::getuid().as_raw();
    match stop_own(&mut client, &args.name, uid, sink).await {
        Ok(config) => launch(&config, &args.start, true, sink).await,
        Err(outcome) => outcome,
    }
}

/// Other platforms: restart needs the Linux service's control socket.
#[cfg(not(target_os = "linux"))]
#[allow(clippy::unused_async)] // the same signature as the Linux version
async fn restart(_args: &RestartArgs, sink: &mut dyn Sink) -> Outcome {
    fail(
        sink,
        Outcome::LocalError,
        "`iservice restart` needs the Linux service's control socket; on Windows it is not available yet".to_owned(),
    )
}

/// Stops `name` if it belongs to `uid` and waits for its end; its config, to start again.
pub async fn stop_own<T: Transport>(
    client: &mut ControlClient<T>,
    name: &str,
    uid: u32,
    sink: &mut dyn Sink,
) -> Result<PathBuf, Outcome> {
    let connection = match client.status(name).await {
        Ok(c) => c,
        Err(e) => return Err(fail(sink, outcome_of(&e), e.to_string())),
    };
    if connection.uid != uid {
        return Err(fail(
            sink,
            Outcome::Forbidden,
            format!(
                "{name} belongs to {} (uid {}): only its owner can restart it, because it would start again with your identity and credentials; an administrator may stop it with `iservice stop {name}`",
                connection.user, connection.uid
            ),
        ));
    }
    let names = match client.stop(Some(name)).await {
        Ok(names) => names,
        Err(e) => return Err(fail(sink, outcome_of(&e), e.to_string())),
    };
    match wait_exited(client, &names, EXIT_WAIT).await {
        Ok(exited) if exited.len() == names.len() => {}
        Ok(_) => {
            return Err(fail(
                sink,
                Outcome::OpenvpnFailed,
                format!(
                    "{name}'s openvpn (process {}) did not exit within {} s of being asked to; try again later, or `iservice status {name}`",
                    connection.pid,
                    EXIT_WAIT.as_secs()
                ),
            ))
        }
        Err(e) => return Err(fail(sink, outcome_of(&e), e.to_string())),
    }
    sink.event(
        Duration::ZERO,
        &Event::Restarting {
            name: name.to_owned(),
            config: connection.config.clone(),
        },
    );
    Ok(PathBuf::from(connection.config))
}
