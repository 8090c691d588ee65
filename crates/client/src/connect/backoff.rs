//! How often to knock on openvpn's management port while openvpn starts. openvpn opens the
//! port a few milliseconds after it starts, and every millisecond between that and our next
//! attempt is added to the connect time; an attempt on a closed loopback port costs a few
//! microseconds. So: every millisecond for the first [`Backoff::EAGER`], then doubling up
//! to [`Backoff::CAP`], so that a slow openvpn costs a bounded number of attempts.

use std::time::Duration;

/// Waits of 1 ms for a while, then doubling up to a cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    waited: Duration,
    next: Duration,
}

impl Backoff {
    /// The wait while openvpn is expected to open its port any moment.
    pub const FIRST: Duration = Duration::from_millis(1);
    /// How long attempts stay [`Backoff::FIRST`] apart.
    pub const EAGER: Duration = Duration::from_millis(200);
    /// The longest wait: a port that opens later is found at most this late.
    pub const CAP: Duration = Duration::from_millis(20);

    /// A back-off at its start.
    pub fn new() -> Self {
        Self {
            waited: Duration::ZERO,
            next: Self::FIRST,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.waited += delay;
        if self.waited >= Self::EAGER {
            self.next = (self.next * 2).min(Self::CAP);
        }
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_millisecond_at_first_then_doubling_up_to_the_cap() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..210).map(|_| b.next_delay().as_millis()).collect();
        assert!(ms[..200].iter().all(|&d| d == 1), "{ms:?}");
        assert_eq!(ms[199..206], [1, 2, 4, 8, 16, 20, 20]);
    }

    #[test]
    fn a_slow_openvpn_costs_a_bounded_number_of_attempts() {
        // 30 s (the default management timeout) of waiting: about 1,700 attempts, not the
        // 30,000 a fixed 1 ms would make.
        let mut b = Backoff::new();
        let mut waited = Duration::ZERO;
        let mut attempts = 0u32;
        while waited < Duration::from_secs(30) {
            waited += b.next_delay();
            attempts += 1;
        }
        assert!(attempts <= 1_700, "{attempts}");
    }
}
