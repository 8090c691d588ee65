//! openvpn's stdout and stderr: one pipe per session, read by the service into the session's
//! [`LogRing`](super::ring::LogRing) in the [`Registry`].
//!
//! The write end is openvpn's fd 1 and 2 (forked: `launch.rs`; under systemd: the unit's
//! `StandardOutputFileDescriptor`/`StandardErrorFileDescriptor`). The read end is read on the
//! event loop a bounded chunk at a time, yielding after each, so that a session that floods
//! its output gets its turn like any other and costs a bounded buffer (the ring drops its
//! oldest lines). When the ring's reader cannot keep up, the pipe fills and only that
//! openvpn waits.

#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use super::registry::Registry;

/// Bytes read from the pipe at once.
const CHUNK: usize = 16 * 1024;
/// How long a session that ended waits for the rest of openvpn's output (a script's child
/// may keep the pipe open for ever; it is not read after this).
pub const DRAIN: Duration = Duration::from_millis(500);

/// A new output pipe: `(read end, write end)`, both close-on-exec.
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Reads the pipe into the session's log until it ends.
pub struct Reader {
    task: JoinHandle<()>,
    id: u64,
    registry: Arc<Registry>,
}

impl Reader {
    /// Starts reading `read` (the pipe's read end) into session `id`'s log.
    pub fn start(registry: Arc<Registry>, id: u64, read: OwnedFd) -> std::io::Result<Self> {
        let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
        let reg = Arc::clone(&registry);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => reg.output(id, &buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!("reading openvpn's output: {e}");
                        break;
                    }
                }
                // Others' turn, even when this pipe is always ready.
                tokio::task::yield_now().await;
            }
            reg.output_ended(id);
        });
        Ok(Self { task, id, registry })
    }

    /// openvpn has exited: waits (at most [`DRAIN`]) for the rest of its output, then stops
    /// reading.
    pub async fn finish(mut self) {
        if tokio::time::timeout(DRAIN, &mut self.task).await.is_err() {
            self.task.abort();
            self.registry.output_ended(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::registry::{Started, Viewer};
    use tokio_util::sync::CancellationToken;

    fn registry() -> Arc<Registry> {
        let r = Arc::new(Registry::default());
        r.register(
            Started {
                id: 1,
                uid: 1000,
                user: "u".into(),
                config: "/c/a.conf".into(),
                pid: 5,
                stop: CancellationToken::new(),
            },
            1,
        );
        r
    }

    fn log(r: &Registry) -> (Vec<String>, bool) {
        let me = Viewer {
            uid: 1000,
            name: "u".into(),
            admin: false,
        };
        let (lines, ended) = r.log(&me, "a", 0, 100, 1).unwrap();
        (lines.lines, ended)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_openvpn_writes_reaches_the_log_and_its_end_is_seen() {
        let r = registry();
        let (read, write) = pipe().unwrap();
        let reader = Reader::start(Arc::clone(&r), 1, read).unwrap();
        let mut file = std::fs::File::from(write);
        std::io::Write::write_all(&mut file, b"one\ntwo\nlast without newline").unwrap();
        drop(file);
        reader.finish().await;
        r.exited(1, Some(1), None, 1);
        let (lines, ended) = log(&r);
        assert_eq!(lines, ["one", "two", "last without newline"]);
        assert!(ended);
        assert_eq!(r.last_line(1).as_deref(), Some("last without newline"));
    }

    /// A script's child may keep the pipe open after openvpn exited: the session does not
    /// wait for it longer than [`DRAIN`].
    #[tokio::test(flavor = "current_thread")]
    async fn a_pipe_kept_open_is_given_up_after_the_drain_time() {
        let r = registry();
        let (read, write) = pipe().unwrap();
        let reader = Reader::start(Arc::clone(&r), 1, read).unwrap();
        let started = tokio::time::Instant::now();
        reader.finish().await;
        assert!(started.elapsed() < DRAIN * 4, "{:?}", started.elapsed());
        r.exited(1, Some(0), None, 1);
        assert!(log(&r).1, "the output counts as ended");
        drop(write);
    }
}
