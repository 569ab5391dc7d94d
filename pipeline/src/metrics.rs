//! A plain snapshot of the pipeline's counters and gauges.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::pause::Reason;

/// Counters since start and gauges at the time of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Records received from the consumer (each delivery counted).
    pub received: u64,
    /// Records whose handler succeeded.
    pub processed: u64,
    /// Handler calls (every attempt).
    pub attempts: u64,
    /// In-place retries scheduled.
    pub retried: u64,
    /// Per retry-tier topic.
    pub tiers: Vec<TierMetrics>,
    /// Records forwarded to a DLQ.
    pub dead_lettered: u64,
    /// Of those, after a fatal error.
    pub fatal: u64,
    /// Records skipped because the committed offset map marked them done.
    pub skipped: u64,
    /// Handlers and forwards running now.
    pub in_flight: usize,
    /// Bytes received and not finished (queued, running, waiting).
    pub buffered_bytes: usize,
    /// Records received and not finished.
    pub buffered_records: usize,
    /// The most `buffered_bytes` ever reached.
    pub max_buffered_bytes: usize,
    /// Assigned partitions paused, by reason (a partition may count under several).
    pub paused: BTreeMap<Reason, usize>,
    /// Partitions held by an open DLQ breaker.
    pub breaker_open: usize,
    /// Total time partitions spent waiting for rate-limit tokens, in ms
    /// (a global wait counts once).
    pub throttled_ms: u64,
    /// Records delivered but not covered by the last commit.
    pub commit_lag: i64,
    /// Successful commits.
    pub commits: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// Assigned partitions (source and tier topics).
    pub assigned: usize,
}

/// One retry tier.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TierMetrics {
    /// The tier topic.
    pub topic: String,
    /// Its delay in ms.
    pub delay_ms: u64,
    /// Records forwarded into it.
    pub forwarded: u64,
    /// Records read back from it and attempted.
    pub attempted: u64,
    /// How late attempts started after their due time, in ms.
    pub lateness_ms_p50: u64,
    /// 99th percentile lateness.
    pub lateness_ms_p99: u64,
    /// Worst lateness.
    pub lateness_ms_max: u64,
    /// Attempts that started before their due time (must stay 0).
    pub early: u64,
}

/// Lateness of one tier, as a histogram.
#[derive(Debug, Clone)]
pub(crate) struct Lateness {
    hist: Histogram<u64>,
    pub early: u64,
}

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            // Auto-resizing, 2 significant digits: valid for every input.
            hist: Histogram::new(2).expect("2 significant digits is a valid precision"),
            early: 0,
        }
    }
}

impl Lateness {
    pub fn record(&mut self, late_ms: i64) {
        if late_ms < 0 {
            self.early += 1;
            return;
        }
        // `record` resizes the histogram; `saturating_record` would clamp
        // every value at the initial range (2047 ms).
        let _ = self.hist.record(late_ms as u64);
    }

    pub fn fill(&self, t: &mut TierMetrics) {
        t.lateness_ms_p50 = self.hist.value_at_quantile(0.5);
        t.lateness_ms_p99 = self.hist.value_at_quantile(0.99);
        t.lateness_ms_max = self.hist.max();
        t.early = self.early;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_beyond_the_initial_range_is_kept() {
        let mut l = Lateness::default();
        l.record(5_000);
        l.record(-1);
        let mut t = TierMetrics::default();
        l.fill(&mut t);
        assert!(t.lateness_ms_max >= 4_990, "{t:?}");
        assert_eq!(t.early, 1);
    }
}
