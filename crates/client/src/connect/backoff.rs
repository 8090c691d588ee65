//! How often to knock on openvpn's management port while openvpn starts: soon at first
//! (openvpn opens the port a few milliseconds after it starts, and every millisecond of
//! waiting is a millisecond added to the connect time), then less often, so that a slow
//! openvpn costs a bounded number of attempts.

use std::time::Duration;

/// Exponential back-off from [`Backoff::FIRST`], doubling up to [`Backoff::CAP`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(1);
    /// The longest wait: a port that opens is found at most this late.
    pub const CAP: Duration = Duration::from_millis(20);

    /// A back-off at its start.
    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The wait before the next attempt (each call doubles the one after, up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::CAP);
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
    fn starts_at_one_millisecond_doubles_and_stops_at_the_cap() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 20, 20, 20]);
    }

    #[test]
    fn a_slow_openvpn_costs_a_bounded_number_of_attempts() {
        // 30 s (the default management timeout) of waiting: about 1,500 attempts, not the
        // 30,000 a fixed 1 ms would make.
        let mut b = Backoff::new();
        let mut waited = Duration::ZERO;
        let mut attempts = 0u32;
        while waited < Duration::from_secs(30) {
            waited += b.next_delay();
            attempts += 1;
        }
        assert!(attempts <= 1_510, "{attempts}");
    }
}
