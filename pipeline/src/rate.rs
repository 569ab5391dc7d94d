//! Token-bucket rate limits: records/s and bytes/s, global and per
//! partition. A limited partition is paused until its tokens are back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_ingest::TopicPartition;

/// A rate with its burst size.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rate {
    /// Tokens per second (records or bytes); 0 stops everything.
    pub per_second: f64,
    /// Bucket size: how much may pass at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    /// `n` per second with a burst of a tenth of a second's worth (at least 1).
    pub fn per_second(n: f64) -> Rate {
        Rate {
            per_second: n.max(0.0),
            burst: (n / 10.0).max(1.0),
        }
    }

    /// Sets the burst size.
    pub fn burst(mut self, burst: f64) -> Rate {
        self.burst = burst.max(1.0);
        self
    }
}

/// Every limit; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RateLimits {
    /// Records per second over all partitions.
    pub records: Option<Rate>,
    /// Bytes (key + value + headers) per second over all partitions.
    pub bytes: Option<Rate>,
    /// Records per second for each partition.
    pub partition_records: Option<Rate>,
    /// Bytes per second for each partition.
    pub partition_bytes: Option<Rate>,
}

#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate.per_second).min(self.rate.burst);
        self.at = now;
    }

    /// How long until `cost` may pass (zero: now); `None`: never (rate 0).
    fn wait(&self, cost: f64) -> Option<Duration> {
        // A cost above the burst passes once the bucket is full (then owes).
        let need = cost.min(self.rate.burst);
        if self.tokens >= need {
            return Some(Duration::ZERO);
        }
        if self.rate.per_second <= 0.0 {
            return None;
        }
        // Wake for a tenth of the bucket at once, not one token at a time.
        let want = need.max(self.rate.burst / 10.0).min(self.rate.burst);
        Some(Duration::from_secs_f64(
            (want - self.tokens) / self.rate.per_second,
        ))
    }
}

/// Which limit is out of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// A global limit: every partition waits.
    Global,
    /// This partition's own limit.
    Partition,
}

/// The buckets of one pipeline.
#[derive(Debug, Default)]
pub struct Limiter {
    limits: RateLimits,
    records: Option<Bucket>,
    bytes: Option<Bucket>,
    parts: HashMap<TopicPartition, (Option<Bucket>, Option<Bucket>)>,
}

fn bucket(rate: Option<Rate>, now: Instant) -> Option<Bucket> {
    rate.map(|r| Bucket::new(r, now))
}

impl Limiter {
    /// Buckets for `limits`, full.
    pub fn new(limits: RateLimits, now: Instant) -> Limiter {
        Limiter {
            limits,
            records: bucket(limits.records, now),
            bytes: bucket(limits.bytes, now),
            parts: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Replaces the limits while running; buckets keep their tokens (capped).
    pub fn set(&mut self, limits: RateLimits, now: Instant) {
        fn swap(b: &mut Option<Bucket>, rate: Option<Rate>, now: Instant) {
            *b = match (b.take(), rate) {
                (Some(mut old), Some(rate)) => {
                    old.refill(now);
                    old.rate = rate;
                    old.tokens = old.tokens.min(rate.burst);
                    Some(old)
                }
                (None, Some(rate)) => Some(Bucket::new(rate, now)),
                (_, None) => None,
            };
        }
        swap(&mut self.records, limits.records, now);
        swap(&mut self.bytes, limits.bytes, now);
        for (r, b) in self.parts.values_mut() {
            swap(r, limits.partition_records, now);
            swap(b, limits.partition_bytes, now);
        }
        self.limits = limits;
    }

    /// Drops a partition's buckets (revoked).
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.parts.remove(tp);
    }

    /// Takes one record of `bytes` for `tp`, or says which limit waits and
    /// for how long (`None`: until the limits change).
    pub fn try_take(
        &mut self,
        tp: &TopicPartition,
        bytes: usize,
        now: Instant,
    ) -> Result<(), (Limited, Option<Duration>)> {
        let limits = self.limits;
        let (pr, pb) = self.parts.entry(tp.clone()).or_insert_with(|| {
            (
                bucket(limits.partition_records, now),
                bucket(limits.partition_bytes, now),
            )
        });
        let cost = bytes as f64;
        let check = |b: &mut Option<Bucket>, cost: f64| -> Option<Option<Duration>> {
            let b = b.as_mut()?;
            b.refill(now);
            match b.wait(cost) {
                Some(d) if d.is_zero() => None,
                w => Some(w),
            }
        };
        let global = [check(&mut self.records, 1.0), check(&mut self.bytes, cost)];
        if let Some(w) = longest(global) {
            return Err((Limited::Global, w));
        }
        if let Some(w) = longest([check(pr, 1.0), check(pb, cost)]) {
            return Err((Limited::Partition, w));
        }
        for (b, c) in [
            (&mut self.records, 1.0),
            (&mut self.bytes, cost),
            (pr, 1.0),
            (pb, cost),
        ] {
            if let Some(b) = b.as_mut() {
                b.tokens -= c;
            }
        }
        Ok(())
    }
}

/// The longest of the waits that are needed (`None` inside: forever).
fn longest(waits: [Option<Option<Duration>>; 2]) -> Option<Option<Duration>> {
    waits.into_iter().flatten().reduce(|a, b| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// Drives the limiter on a fake clock; returns records passed in `secs`.
    fn passed(limiter: &mut Limiter, secs: f64, bytes: usize) -> usize {
        let start = Instant::now();
        let mut now = start;
        let mut n = 0;
        while now < start + Duration::from_secs_f64(secs) {
            match limiter.try_take(&tp(), bytes, now) {
                Ok(()) => n += 1,
                Err((_, Some(w))) => now += w.max(Duration::from_micros(1)),
                Err((_, None)) => return n,
            }
        }
        n
    }

    #[test]
    fn records_per_second_hold_within_a_burst() {
        let mut l = Limiter::new(
            RateLimits {
                records: Some(Rate::per_second(1000.0)),
                ..Default::default()
            },
            Instant::now(),
        );
        let n = passed(&mut l, 20.0, 10);
        assert!((20_000..=20_100 + 1).contains(&n), "{n}");
    }

    #[test]
    fn bytes_per_partition_and_live_changes() {
        let now = Instant::now();
        let mut l = Limiter::new(
            RateLimits {
                partition_bytes: Some(Rate::per_second(10_000.0)),
                ..Default::default()
            },
            now,
        );
        let n = passed(&mut l, 10.0, 100);
        assert!((1000..=1011).contains(&n), "{n}");
        l.set(
            RateLimits {
                partition_bytes: Some(Rate::per_second(0.0)),
                ..Default::default()
            },
            now,
        );
        assert_eq!(passed(&mut l, 1.0, 100), 0, "rate 0 stops");
        l.set(RateLimits::default(), now);
        assert!(l.try_take(&tp(), 1 << 30, now).is_ok(), "unlimited");
    }

    #[test]
    fn a_record_larger_than_the_burst_passes_when_full() {
        let now = Instant::now();
        let mut l = Limiter::new(
            RateLimits {
                bytes: Some(Rate::per_second(100.0)),
                ..Default::default()
            },
            now,
        );
        assert!(l.try_take(&tp(), 1000, now).is_ok());
        let Err((Limited::Global, Some(w))) = l.try_take(&tp(), 1000, now) else {
            panic!("must wait")
        };
        assert!(w > Duration::from_secs(9), "{w:?}: repays its debt first");
    }
}
