//! A scripted transport for tests: it records what the client sends and replies with
//! prepared messages, optionally after a delay.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Transport;

/// One step of the script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Deliver these bytes as one message.
    Message(Vec<u8>),
    /// Wait this long before the next step.
    Delay(Duration),
    /// Report that the service closed the connection.
    Close,
    /// Fail with this I/O error kind.
    Fail(io::ErrorKind),
}

/// A fake service connection.
#[derive(Debug, Clone, Default)]
pub struct ScriptedTransport {
    script: Arc<Mutex<VecDeque<Step>>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ScriptedTransport {
    /// A transport that plays `steps` in order; once they run out it stays silent.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            script: Arc::new(Mutex::new(steps.into_iter().collect())),
            sent: Arc::default(),
        }
    }

    /// Every message sent so far.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.sent.lock().expect("not poisoned").clone()
    }
}

impl Transport for ScriptedTransport {
    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.sent
            .lock()
            .expect("not poisoned")
            .push(message.to_vec());
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let step = self.script.lock().expect("not poisoned").pop_front();
            match step {
                Some(Step::Message(bytes)) => return Ok(Some(bytes)),
                Some(Step::Delay(d)) => tokio::time::sleep(d).await,
                Some(Step::Close) => return Ok(None),
                Some(Step::Fail(kind)) => return Err(kind.into()),
                None => std::future::pending::<()>().await,
            }
        }
    }
}
