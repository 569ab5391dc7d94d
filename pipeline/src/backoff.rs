//! In-place retry policy: exponential backoff with jitter, a cap, a
//! maximum number of attempts and a maximum elapsed time.

use std::time::Duration;

/// How a backoff delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Jitter {
    /// Exactly `initial × multiplier^(n-1)`, capped.
    #[default]
    None,
    /// Uniform between `initial` and the exponential delay.
    Full,
    /// Uniform between half the exponential delay (at least `initial`) and it.
    Equal,
    /// Uniform between `initial` and three times the previous delay, capped
    /// ("decorrelated jitter").
    Decorrelated,
}

/// The in-place retry policy. Every delay lies in `[initial, max_delay]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Retry {
    /// First delay.
    pub initial: Duration,
    /// Cap on any delay.
    pub max_delay: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Randomisation.
    pub jitter: Jitter,
    /// Attempts in place, the first one included, before the record moves
    /// on to the next retry tier (or the DLQ).
    pub max_attempts: u32,
    /// No retry is scheduled that would start later than this after the
    /// first attempt.
    pub max_elapsed: Option<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::exponential(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Retry {
    /// Doubling delays from `initial` up to `max_delay`; 3 attempts.
    pub fn exponential(initial: Duration, max_delay: Duration) -> Retry {
        Retry {
            initial,
            max_delay: max_delay.max(initial),
            multiplier: 2.0,
            jitter: Jitter::None,
            max_attempts: 3,
            max_elapsed: None,
        }
    }

    /// One attempt in place: failures move on at once.
    pub fn none() -> Retry {
        Retry {
            max_attempts: 1,
            ..Retry::default()
        }
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Retry {
        self.jitter = jitter;
        self
    }

    /// Sets the attempts in place (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Retry {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the longest time from the first attempt to the last retry.
    pub fn max_elapsed(mut self, d: Duration) -> Retry {
        self.max_elapsed = Some(d);
        self
    }

    /// Sets the growth factor (at least 1).
    pub fn multiplier(mut self, m: f64) -> Retry {
        self.multiplier = m.max(1.0);
        self
    }

    /// The delay before attempt `failed + 1`, after `failed` failures
    /// (`prev`: the delay used before the last attempt, for decorrelated jitter).
    pub fn delay(&self, failed: u32, prev: Duration, rng: &mut fastrand::Rng) -> Duration {
        let (lo, cap) = (self.initial, self.max_delay);
        let exp = lo
            .mul_f64(
                self.multiplier
                    .powi(failed.saturating_sub(1).min(64) as i32),
            )
            .min(cap);
        let between = |rng: &mut fastrand::Rng, a: Duration, b: Duration| {
            let (a, b) = (a.as_nanos() as u64, b.as_nanos().max(a.as_nanos()) as u64);
            Duration::from_nanos(rng.u64(a..=b))
        };
        match self.jitter {
            Jitter::None => exp,
            Jitter::Full => between(rng, lo, exp),
            Jitter::Equal => between(rng, (exp / 2).max(lo), exp),
            Jitter::Decorrelated => between(rng, lo, prev.max(lo).saturating_mul(3).min(cap)),
        }
    }

    /// Whether to retry after `attempts` attempts, the next one starting
    /// `since_first + delay` after the first.
    pub fn allows(&self, attempts: u32, since_first: Duration, delay: Duration) -> bool {
        attempts < self.max_attempts
            && self
                .max_elapsed
                .is_none_or(|max| since_first + delay <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jitter_stays_within_initial_and_cap() {
        let (lo, cap) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut rng = fastrand::Rng::with_seed(7);
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let r = Retry::exponential(lo, cap).jitter(jitter);
            let mut prev = lo;
            for failed in 1..40 {
                let d = r.delay(failed, prev, &mut rng);
                assert!(d >= lo && d <= cap, "{jitter:?} {failed}: {d:?}");
                prev = d;
            }
        }
        let r = Retry::exponential(lo, cap);
        let got: Vec<_> = (1..=6)
            .map(|n| r.delay(n, lo, &mut rng).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 2000]);
    }

    #[test]
    fn seeded_jitter_is_deterministic() {
        let r = Retry::default().jitter(Jitter::Decorrelated);
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..10)
                .map(|n| r.delay(n, Duration::ZERO, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
    }

    #[test]
    fn attempts_and_elapsed_bound_retries() {
        let r = Retry::default()
            .max_attempts(3)
            .max_elapsed(Duration::from_secs(1));
        assert!(r.allows(1, Duration::ZERO, Duration::from_millis(100)));
        assert!(!r.allows(3, Duration::ZERO, Duration::ZERO));
        assert!(!r.allows(1, Duration::from_millis(950), Duration::from_millis(100)));
    }
}
