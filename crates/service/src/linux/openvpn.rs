//! A session's running openvpn, wherever it runs: forked by the service ([`super::launch`],
//! when the service was started by hand) or in a systemd unit of its own
//! ([`super::systemd`], when it runs under systemd).

use std::process::ExitStatus;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWrite;
use tokio::process::Child;

use super::systemd::SessionUnit;

/// openvpn's stdin: a pipe (forked) or the unit's socket (systemd).
pub type Stdin = Box<dyn AsyncWrite + Unpin + Send>;

/// The running openvpn.
#[derive(Debug)]
pub enum Openvpn {
    /// Forked by the service.
    Child(Child),
    /// In its session unit.
    Unit(SessionUnit),
}

impl Openvpn {
    /// Its pid (0 if unknown).
    pub fn pid(&self) -> u32 {
        match self {
            Self::Child(c) => c.id().unwrap_or(0),
            Self::Unit(u) => u.pid(),
        }
    }

    /// Its stdin, once.
    pub fn take_stdin(&mut self) -> Option<Stdin> {
        match self {
            Self::Child(c) => c.stdin.take().map(|s| Box::new(s) as Stdin),
            Self::Unit(u) => u.take_stdin().map(|s| Box::new(s) as Stdin),
        }
    }

    /// Waits for it to exit (cancel-safe).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Self::Child(c) => c.wait().await,
            Self::Unit(u) => u.wait().await,
        }
    }

    /// Asks it to end (SIGTERM): it then runs its down sequence.
    pub async fn terminate(&self) {
        match self {
            Self::Child(c) => {
                if let Some(pid) = c.id() {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                }
            }
            Self::Unit(u) => u.signal(libc::SIGTERM).await,
        }
    }

    /// Kills it (SIGKILL), waits until it is gone and returns how it ended.
    pub async fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        match self {
            Self::Child(c) => {
                let _ = c.start_kill();
                c.wait().await.ok()
            }
            Self::Unit(u) => {
                u.signal(libc::SIGKILL).await;
                u.wait().await.ok()
            }
        }
    }

    /// Lets go of what is left once openvpn has exited: a unit is stopped (ending whatever
    /// its scripts left running) and forgotten.
    pub async fn release(&self) {
        if let Self::Unit(u) = self {
            u.release().await;
        }
    }
}
