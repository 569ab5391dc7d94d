//! Client metrics: plain snapshot structs read from the client's counters.
//!
//! [`Producer::metrics`](crate::Producer::metrics) and
//! [`Consumer::metrics`](crate::Consumer::metrics) copy atomic counters into
//! these structs; reading them costs a few loads and takes no lock on the
//! send or fetch path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::types::TopicPartition;

/// Broker throttling (KIP-219) seen by one client's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleMetrics {
    /// Responses whose `throttle_time_ms` asked the client to hold back.
    pub throttled_responses: u64,
    /// Sum of the throttle times the brokers asked for, in ms; the client
    /// sent nothing more on those connections for that long.
    pub throttle_time_ms_total: u64,
}

/// Upper bounds of the latency buckets, in seconds (Prometheus-style
/// cumulative buckets; the last, `+Inf`, is implied by `count`).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Histogram {
    /// `(upper bound in s, observations ≤ it)`, cumulative, one per bucket.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Sum of the observations in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// The upper bound of the bucket holding the `q` quantile (0..=1), in
    /// seconds; `None` when empty or beyond the last bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= rank)
            .map(|(b, _)| *b)
    }
}

/// Lock-free recorder behind a [`Histogram`].
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Recorder {
    pub(crate) fn record(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        let mut total = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| {
                total += n.load(Relaxed);
                (*b, total)
            })
            .collect();
        Histogram {
            buckets,
            count: self.count.load(Relaxed),
            sum_seconds: self.sum_us.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// Request-level counters shared by all connections of one client.
#[derive(Debug, Default)]
pub(crate) struct RequestStats {
    /// Requests written whose response has not arrived (or failed) yet.
    pub in_flight: AtomicI64,
    /// Time from queueing a request to its response.
    pub latency: Recorder,
}

/// Errors counted by kind (an error code's name such as
/// `NotLeaderOrFollower`, or a client-side class such as `timeout`).
#[derive(Debug, Default)]
pub(crate) struct ErrorCounts(Mutex<BTreeMap<String, u64>>);

impl ErrorCounts {
    pub(crate) fn add(&self, kind: String, n: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(kind).or_default() += n;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a producer did since it started, and its state now.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records acknowledged by the broker.
    pub records_sent: u64,
    /// Key and value bytes of those records.
    pub bytes_sent: u64,
    /// Record batches acknowledged.
    pub batches_sent: u64,
    /// Records that failed for good (their callbacks got an error).
    pub records_failed: u64,
    /// Batch retries (each resend of a batch counts once).
    pub retries: u64,
    /// Failed records and retried batches by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Buffer memory held by queued and in-flight records, in bytes: their
    /// encoded size plus what the producer keeps for each (its callback).
    pub buffer_bytes_used: u64,
    /// `buffer.memory`.
    pub buffer_bytes_total: u64,
    /// `send` calls waiting for buffer memory now (backpressure).
    pub waiting_senders: u64,
    /// Requests of this client awaiting a response now.
    pub in_flight_requests: u64,
    /// Request round trips of this client (every API).
    pub request_latency: Histogram,
    /// Broker throttling honoured (KIP-219).
    pub throttle: ThrottleMetrics,
}

/// One assigned partition's position against its high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// Next offset `poll` hands out, if known.
    pub position: Option<i64>,
    /// High watermark from the latest fetch response (-1 before the first).
    pub high_watermark: i64,
    /// `high_watermark - position` (0 when either is unknown).
    pub lag: i64,
}

/// What a consumer did since it started, and its state now.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ConsumerMetrics {
    /// Records returned by `poll`.
    pub records_fetched: u64,
    /// Key and value bytes of those records.
    pub bytes_fetched: u64,
    /// Fetch requests answered.
    pub fetch_requests: u64,
    /// Of those, incremental fetch-session requests (KIP-227), which name
    /// only partitions added or moved on since the previous fetch.
    pub incremental_fetches: u64,
    /// Partitions named in fetch requests, summed over requests.
    pub fetch_partitions_sent: u64,
    /// Failed fetches and partition errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Requests of this client awaiting a response now.
    pub in_flight_requests: u64,
    /// Request round trips of this client (every API).
    pub request_latency: Histogram,
    /// Group rebalances this consumer took part in (assignments applied).
    pub rebalances: u64,
    /// Successful offset commits.
    pub commits: u64,
    /// Failed offset commits.
    pub commit_failures: u64,
    /// Offset commit round trips.
    pub commit_latency: Histogram,
    /// Per assigned partition.
    pub lag: Vec<PartitionLag>,
    /// Broker throttling honoured (KIP-219).
    pub throttle: ThrottleMetrics,
}

/// Counters of a producer engine.
#[derive(Debug, Default)]
pub(crate) struct ProducerStats {
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub records_failed: AtomicU64,
    pub retries: AtomicU64,
    pub waiting_senders: AtomicU64,
    pub errors: ErrorCounts,
}

/// Counters of a consumer.
#[derive(Debug, Default)]
pub(crate) struct ConsumerStats {
    pub records_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub fetch_requests: AtomicU64,
    pub incremental_fetches: AtomicU64,
    pub fetch_partitions_sent: AtomicU64,
    pub rebalances: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub commit_latency: Recorder,
    pub errors: ErrorCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_buckets_are_cumulative() {
        let r = Recorder::default();
        r.record(Duration::from_micros(300));
        r.record(Duration::from_millis(3));
        r.record(Duration::from_millis(3));
        r.record(Duration::from_secs(60));
        let h = r.snapshot();
        assert_eq!(h.count, 4);
        assert_eq!(h.buckets[0], (0.0005, 1));
        assert_eq!(h.buckets[3], (0.005, 3));
        assert_eq!(h.buckets.last().map(|b| b.1), Some(3));
        assert_eq!(h.quantile_bound(0.5), Some(0.005));
        assert_eq!(h.quantile_bound(1.0), None);
        assert!((h.sum_seconds - 60.0063).abs() < 1e-9);
    }
}
