//! Blocking work off the event loop, bounded in time and per user.
//!
//! The service runs its sessions on one runtime thread. Anything that can block on something
//! a user controls — `realpath`/`lstat` of a path the user names (a hung NFS, autofs or FUSE
//! mount), a user-database lookup (a slow LDAP or SSSD), a `fork` whose child enters the
//! user's working directory — runs on a blocking thread instead, and the session waits for it
//! at most [`LIMIT`]. A job that runs over is abandoned: the session answers with an error and
//! ends, and the thread finishes (or stays stuck) on its own.
//!
//! Abandoned jobs still hold a thread, so a user with [`MAX_ABANDONED_PER_USER`] abandoned
//! jobs still running gets no new ones until some finish: one user's stuck mount can tie up
//! only a few threads, and never delays another user's requests. (Jobs in time are bounded by
//! the session limits: a session waits for one job at a time.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a session waits for one blocking job.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Abandoned blocking jobs one user may have still running.
pub const MAX_ABANDONED_PER_USER: usize = 4;

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
    /// The user's abandoned jobs still run.
    #[error("{abandoned} earlier requests of this user were abandoned and still wait for a file system or the user database; try again when they are answered")]
    Busy {
        /// The user's abandoned jobs still running.
        abandoned: usize,
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

/// Abandoned jobs still running, per user.
type Abandoned = Arc<Mutex<HashMap<u32, usize>>>;

/// Runs blocking jobs for users (see the module's text).
#[derive(Debug, Default)]
pub struct Offload {
    abandoned: Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Abandoned,
    Finished,
}

/// One job of a user. The session keeps a [`Ticket`] to abandon it; the job's thread keeps
/// the [`Job`], which counts the job off when it really ends.
#[derive(Debug)]
pub struct Job {
    uid: u32,
    state: Arc<Mutex<State>>,
    abandoned: Abandoned,
}

/// The session's side of a [`Job`].
#[derive(Debug)]
pub struct Ticket {
    uid: u32,
    state: Arc<Mutex<State>>,
    abandoned: Abandoned,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ticket {
    /// The session stops waiting: until its thread ends, the job counts against the user.
    pub fn abandon(&self) {
        let mut state = lock(&self.state);
        if *state == State::Running {
            *state = State::Abandoned;
            *lock(&self.abandoned).entry(self.uid).or_insert(0) += 1;
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if *state == State::Abandoned {
            let mut map = lock(&self.abandoned);
            if let Some(n) = map.get_mut(&self.uid) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.uid);
                }
            }
        }
        *state = State::Finished;
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
        let (ticket, counted) = self.admit(uid)?;
        let handle = tokio::task::spawn_blocking(move || {
            let _counted = counted;
            job()
        });
        match tokio::time::timeout(limit, handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(OffloadError::Failed { what, source }),
            Err(_) => {
                ticket.abandon();
                Err(OffloadError::TimedOut { what, limit })
            }
        }
    }

    /// A job of `uid` that the caller runs itself on a blocking thread (the [`Job`] goes
    /// there; the [`Ticket`] stays to abandon it); refused while the user has
    /// [`MAX_ABANDONED_PER_USER`] abandoned jobs running.
    pub fn admit(&self, uid: u32) -> Result<(Ticket, Job), OffloadError> {
        let abandoned = self.abandoned(uid);
        if abandoned >= MAX_ABANDONED_PER_USER {
            return Err(OffloadError::Busy { abandoned });
        }
        let state = Arc::new(Mutex::new(State::Running));
        let ticket = Ticket {
            uid,
            state: Arc::clone(&state),
            abandoned: Arc::clone(&self.abandoned),
        };
        let job = Job {
            uid,
            state,
            abandoned: Arc::clone(&self.abandoned),
        };
        Ok((ticket, job))
    }

    /// Abandoned jobs of `uid` still running.
    pub fn abandoned(&self, uid: u32) -> usize {
        lock(&self.abandoned).get(&uid).copied().unwrap_or(0)
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
            offload.abandoned(7),
            1,
            "the abandoned job still holds its thread"
        );
        // Another user is not affected.
        assert_eq!(offload.run(8, "x", LIMIT, || 5).await.unwrap(), 5);
        release.send(()).unwrap();
        for _ in 0..200 {
            if offload.abandoned(7) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the finished job was not counted off");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_user_cannot_hold_more_than_a_few_stuck_threads() {
        let offload = Offload::default();
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        for _ in 0..MAX_ABANDONED_PER_USER {
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
            matches!(r, Err(OffloadError::Busy { abandoned }) if abandoned == MAX_ABANDONED_PER_USER),
            "{r:?}"
        );
        assert_eq!(offload.run(9, "x", LIMIT, || 1).await.unwrap(), 1);
        for _ in 0..MAX_ABANDONED_PER_USER {
            release.send(()).unwrap();
        }
    }

    /// Jobs in time do not count: a user may start many sessions at once.
    #[tokio::test(flavor = "current_thread")]
    async fn many_jobs_in_time_of_one_user_are_fine() {
        let offload = Arc::new(Offload::default());
        let mut all = Vec::new();
        for i in 0..32u32 {
            let offload = Arc::clone(&offload);
            all.push(tokio::spawn(async move {
                offload
                    .run(7, "x", LIMIT, move || {
                        std::thread::sleep(Duration::from_millis(50));
                        i
                    })
                    .await
            }));
        }
        for (i, job) in all.into_iter().enumerate() {
            assert_eq!(job.await.unwrap().unwrap(), i as u32);
        }
        assert_eq!(offload.abandoned(7), 0);
    }
}
