//! Session limits: a total cap and a per-user cap, instead of upstream's fixed 63.
//!
//! Generic over who a session belongs to: a uid on Linux, a user SID on Windows.
//!
//! A slot is taken when a client connects (so silent clients count while they wait for their
//! 2 s timeout) and given back when its [`Slot`] is dropped, whatever ends the session.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// All `max_sessions` slots are taken.
    #[error("the service already runs {limit} sessions, its limit (max_sessions)")]
    Total {
        /// The limit.
        limit: usize,
    },
    /// This user already holds `max_sessions_per_user` slots.
    #[error("this user already has {limit} sessions, the per-user limit (max_sessions_per_user)")]
    PerUser {
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug)]
struct Counts<K> {
    total: usize,
    per_user: HashMap<K, usize>,
}

/// Shared session counters, per user `K`.
#[derive(Debug)]
pub struct Limits<K = u32> {
    max_total: usize,
    max_per_user: usize,
    counts: Arc<Mutex<Counts<K>>>,
}

impl<K> Clone for Limits<K> {
    fn clone(&self) -> Self {
        Self {
            max_total: self.max_total,
            max_per_user: self.max_per_user,
            counts: Arc::clone(&self.counts),
        }
    }
}

/// A held session slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq = u32> {
    user: K,
    counts: Arc<Mutex<Counts<K>>>,
}

impl<K: Hash + Eq + Clone> Limits<K> {
    /// Limits with the given caps.
    pub fn new(max_total: usize, max_per_user: usize) -> Self {
        Self {
            max_total,
            max_per_user,
            counts: Arc::new(Mutex::new(Counts {
                total: 0,
                per_user: HashMap::new(),
            })),
        }
    }

    /// Takes a slot for `user`, or says which limit is reached.
    pub fn acquire(&self, user: K) -> Result<Slot<K>, LimitError> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(LimitError::Total {
                limit: self.max_total,
            });
        }
        let mine = counts.per_user.get(&user).copied().unwrap_or(0);
        if mine >= self.max_per_user {
            return Err(LimitError::PerUser {
                limit: self.max_per_user,
            });
        }
        counts.total += 1;
        counts.per_user.insert(user.clone(), mine + 1);
        Ok(Slot {
            user,
            counts: Arc::clone(&self.counts),
        })
    }

    /// Slots in use, all users together.
    pub fn in_use(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(n) = counts.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_then_total() {
        let limits = Limits::new(3, 2);
        let a1 = limits.acquire(1).unwrap();
        let _a2 = limits.acquire(1).unwrap();
        assert_eq!(
            limits.acquire(1).unwrap_err(),
            LimitError::PerUser { limit: 2 }
        );
        let _b1 = limits.acquire(2).unwrap();
        assert_eq!(
            limits.acquire(3).unwrap_err(),
            LimitError::Total { limit: 3 }
        );
        drop(a1);
        assert_eq!(limits.in_use(), 2);
        let _a3 = limits.acquire(1).unwrap();
        assert_eq!(
            limits.acquire(2).unwrap_err(),
            LimitError::Total { limit: 3 }
        );
    }

    #[test]
    fn any_key_type() {
        let limits: Limits<String> = Limits::new(4, 1);
        let _a = limits.acquire("S-1-5-21-1".to_owned()).unwrap();
        assert_eq!(
            limits.acquire("S-1-5-21-1".to_owned()).unwrap_err(),
            LimitError::PerUser { limit: 1 }
        );
        let _b = limits.acquire("S-1-5-21-2".to_owned()).unwrap();
        assert_eq!(limits.in_use(), 2);
    }

    #[test]
    fn slots_come_back() {
        let limits = Limits::new(2, 2);
        for _ in 0..100 {
            let _s = limits.acquire(7).unwrap();
            let _t = limits.acquire(7).unwrap();
        }
        assert_eq!(limits.in_use(), 0);
    }
}
