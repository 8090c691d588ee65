//! Blocking work off the event loop, bounded in time and per user.
//!
//! The service runs its sessions on one runtime thread. Anything that can block on something
//! a user controls — `realpath`/`lstat` of a path the user names (a hung NFS, autofs or FUSE
//! mount), a user-database lookup (a slow LDAP or SSSD), a `fork` whose child enters the
//! user's working directory — runs on a blocking thread instead, and the session waits for it
//! at most [`LIMIT`]. A job that runs over is abandoned: the session answers with an error and
//! ends, and the thread finishes (or stays stuck) on its own.
//!
//! Abandoned jobs still hold a thread, so each user may have at most [`MAX_PENDING_PER_USER`]
//! jobs in flight, counted until they really end: one user's stuck mount can tie up only a
//! few threads, and never delays another user's requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a session waits for one blocking job.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Blocking jobs one user may have in flight, abandoned ones included.
pub const MAX_PENDING_PER_USER: usize = 4;

/// Why a blocking job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    /// The job did not finish in time; it was abandoned.
    #[error("{what} did not finish within {} s (a file system or user database that does not answer); the request was abandoned", limit.as_secs())]
    TimedOut {
        /// What the job was doing.
        what: &'static str,
        /// The time it had.
        limit: Duration,
    },
    /// The user already has too many jobs in flight.
    #[error("{pending} earlier requests of this user are still waiting for a file system or the user database; try again when they are answered")]
    Busy {
        /// The user's jobs in flight.
        pending: usize,
    },
    /// The job ended without giving its answer (it panicked; see the log).
    #[error("{what} ended without an answer; see the service log")]
    Ended {
        /// What the job was doing.
        what: &'static str,
    },
    /// The job panicked or the runtime is shutting down.
    #[error("{what} failed: {source}")]
    Failed {
        /// What the job was doing.
        what: &'static str,
        /// Why.
        source: tokio::task::JoinError,
    },
}

/// Runs blocking jobs for users, at most [`MAX_PENDING_PER_USER`] each.
#[derive(Debug, Default)]
pub struct Offload {
    pending: Arc<Mutex<HashMap<u32, usize>>>,
}

/// A user's job in flight; it counts until the job's thread is done with it.
#[derive(Debug)]
pub struct Pending {
    uid: u32,
    pending: Arc<Mutex<HashMap<u32, usize>>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

impl Offload {
    /// Runs `job` for `uid` on a blocking thread and waits for it at most `limit`.
    pub async fn run<T, F>(
        &self,
        uid: u32,
        what: &'static str,
        limit: Duration,
        job: F,
    ) -> Result<T, OffloadError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let pending = self.admit(uid)?;
        let handle = tokio::task::spawn_blocking(move || {
            let _pending = pending;
            job()
        });
        match tokio::time::timeout(limit, handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(OffloadError::Failed { what, source }),
            Err(_) => Err(OffloadError::TimedOut { what, limit }),
        }
    }

    /// Counts a job of `uid` that the caller runs itself on a blocking thread; it counts
    /// until the returned guard is dropped there.
    pub fn admit(&self, uid: u32) -> Result<Pending, OffloadError> {
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(uid).or_insert(0);
        if *n >= MAX_PENDING_PER_USER {
            return Err(OffloadError::Busy { pending: *n });
        }
        *n += 1;
        Ok(Pending {
            uid,
            pending: Arc::clone(&self.pending),
        })
    }

    /// Jobs in flight for `uid`.
    pub fn pending(&self, uid: u32) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&uid)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_job_is_abandoned_in_time_and_still_counts_until_it_ends() {
        let offload = Offload::default();
        let (release, wait) = mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let r = offload
            .run(7, "a lookup", Duration::from_millis(50), move || {
                let _ = wait.recv();
            })
            .await;
        assert!(matches!(r, Err(OffloadError::TimedOut { .. })), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            offload.pending(7),
            1,
            "the abandoned job still holds its thread"
        );
        // Another user is not affected.
        assert_eq!(offload.run(8, "x", LIMIT, || 5).await.unwrap(), 5);
        release.send(()).unwrap();
        for _ in 0..200 {
            if offload.pending(7) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the finished job was not counted off");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_user_cannot_hold_more_than_a_few_threads() {
        let offload = Offload::default();
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        for _ in 0..MAX_PENDING_PER_USER {
            let wait = Arc::clone(&wait);
            let r = offload
                .run(7, "a lookup", Duration::from_millis(10), move || {
                    let _ = wait.lock().unwrap().recv();
                })
                .await;
            assert!(matches!(r, Err(OffloadError::TimedOut { .. })));
        }
        let r = offload.run(7, "a lookup", LIMIT, || ()).await;
        assert!(
            matches!(r, Err(OffloadError::Busy { pending }) if pending == MAX_PENDING_PER_USER),
            "{r:?}"
        );
        assert_eq!(offload.run(9, "x", LIMIT, || 1).await.unwrap(), 1);
        for _ in 0..MAX_PENDING_PER_USER {
            release.send(()).unwrap();
        }
    }
}
