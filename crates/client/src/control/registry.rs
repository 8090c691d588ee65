//! [`Registry`] over the control socket: the connection's name and openvpn's last lines,
//! found by openvpn's process id.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::connect::registry::{Lookup, Registry};

use super::State;

/// Asks the service's control socket at `path`.
#[derive(Debug, Clone)]
pub struct ControlRegistry {
    /// The control socket.
    pub path: PathBuf,
    /// How long each answer may take.
    pub timeout: Duration,
    /// How long to wait for openvpn's output to end before taking the tail anyway.
    pub settle: Duration,
}

impl ControlRegistry {
    /// The registry of the control socket at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            timeout: Duration::from_secs(5),
            settle: Duration::from_secs(2),
        }
    }

    async fn tail(&self, pid: u32, lines: u32) -> Option<Vec<String>> {
        let mut client = super::connect(&self.path, self.timeout).await.ok()?;
        let deadline = Instant::now() + self.settle;
        loop {
            let connection = client.find_by_pid(pid).await.ok()??;
            let (tail, ended) = client.log_tail(&connection.name, lines).await.ok()?;
            // openvpn's last words reach the service's log just before or after its exit is
            // known; wait for the end of its output, briefly.
            if ended || (connection.state == State::Exited && !tail.is_empty()) {
                return Some(tail);
            }
            if Instant::now() >= deadline {
                return Some(tail);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Registry for ControlRegistry {
    fn name_of(&self, pid: u32) -> Lookup<'_, String> {
        Box::pin(async move {
            let mut client = super::connect(&self.path, self.timeout).await.ok()?;
            client.find_by_pid(pid).await.ok()?.map(|c| c.name)
        })
    }

    fn log_tail(&self, pid: u32, lines: u32) -> Lookup<'_, Vec<String>> {
        Box::pin(self.tail(pid, lines))
    }
}
