//! Exponential backoff with jitter. Pure; the caller sleeps.

use std::time::Duration;

/// Doubles from `initial` up to `max`, each step randomised by ±20%
/// (as the Java client does for `reconnect.backoff.ms` and `retry.backoff.ms`).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff that starts at `initial` and never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(self.attempt.min(31)));
        self.attempt = self.attempt.saturating_add(1);
        let base = base.min(self.max);
        let jitter = 0.8 + fastrand::f64() * 0.4;
        base.mul_f64(jitter).min(self.max)
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        let d: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(40) && d[0] <= Duration::from_millis(60));
        assert!(d[3] >= Duration::from_millis(320) && d[3] <= Duration::from_millis(480));
        assert!(d.iter().all(|x| *x <= Duration::from_millis(1000)));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(60));
    }
}
