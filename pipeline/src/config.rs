//! Pipeline settings and the builder.

use std::sync::Arc;
use std::time::Duration;

use kafka_ingest::{ConsumerBuilder, Producer};

use crate::backoff::Retry;
use crate::breaker::DlqLimit;
use crate::error::{Error, Result};
use crate::rate::{Rate, RateLimits};
use crate::record::Event;
use crate::Pipeline;

/// Which records may run at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Ordering {
    /// One at a time per key, keys in parallel (records without a key run
    /// unordered). Every key's records run in offset order, retries included.
    #[default]
    Key,
    /// One at a time per partition.
    Partition,
    /// Any order, up to `max_in_flight` at once.
    Unordered,
}

/// Bounds on records received and not yet finished (queued, running or
/// waiting to retry). At `high × max_bytes` every partition is paused;
/// below `low × max_bytes` they resume. Fetching also stops while one more
/// poll (`max.poll.records` × the largest record seen) would not fit, so
/// the buffer stays within `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BufferLimits {
    /// Bytes (key + value + headers) over all partitions.
    pub max_bytes: usize,
    /// Pause at this share of the limit.
    pub high: f64,
    /// Resume at this share.
    pub low: f64,
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits {
            max_bytes: 64 << 20,
            high: 0.8,
            low: 0.5,
        }
    }
}

/// Per-partition bounds, with the same watermarks as [`BufferLimits`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PartitionLimits {
    /// Bytes of one partition (default: a quarter of `max_bytes`).
    pub max_bytes: Option<usize>,
    /// Records of one partition.
    pub max_records: usize,
}

impl Default for PartitionLimits {
    fn default() -> Self {
        PartitionLimits {
            max_bytes: None,
            max_records: 10_000,
        }
    }
}

/// What to do when committed metadata is not a valid offset map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum InvalidMetadata {
    /// Stop the pipeline with [`Error::OffsetMap`].
    #[default]
    Fail,
    /// Raise [`Event::MetadataIgnored`] and process from the committed
    /// offset as if the map were empty.
    Ignore,
}

pub(crate) type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Everything the pipeline was built with.
#[derive(Clone)]
pub(crate) struct Config {
    pub topics: Vec<String>,
    pub ordering: Ordering,
    pub max_in_flight: usize,
    pub rate: RateLimits,
    pub buffer: BufferLimits,
    pub partition: PartitionLimits,
    pub retry: Retry,
    /// Retry tier delays, in order.
    pub tiers: Vec<Duration>,
    pub tier_name: String,
    pub dlq_name: String,
    pub dlq_limit: Option<DlqLimit>,
    pub commit_interval: Duration,
    pub revoke_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub poll_timeout: Duration,
    pub on_event: Option<EventFn>,
    pub invalid_metadata: InvalidMetadata,
    pub max_metadata_bytes: Option<usize>,
    pub create_topics: bool,
    pub seed: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("topics", &self.topics)
            .field("ordering", &self.ordering)
            .field("max_in_flight", &self.max_in_flight)
            .field("tiers", &self.tiers)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            topics: Vec::new(),
            ordering: Ordering::Key,
            max_in_flight: 16,
            rate: RateLimits::default(),
            buffer: BufferLimits::default(),
            partition: PartitionLimits::default(),
            retry: Retry::default(),
            tiers: Vec::new(),
            tier_name: "{topic}-retry-{ms}".into(),
            dlq_name: "{topic}-dlt".into(),
            dlq_limit: None,
            commit_interval: Duration::from_secs(1),
            revoke_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            poll_timeout: Duration::from_millis(100),
            on_event: None,
            invalid_metadata: InvalidMetadata::Fail,
            max_metadata_bytes: None,
            create_topics: true,
            seed: 0x5eed,
        }
    }
}

impl Config {
    /// The name of tier `i` of `topic`.
    pub fn tier_topic(&self, topic: &str, i: usize) -> String {
        self.tier_name
            .replace("{topic}", topic)
            .replace("{ms}", &self.tiers[i].as_millis().to_string())
    }

    /// The DLQ of `topic`.
    pub fn dlq_topic(&self, topic: &str) -> String {
        self.dlq_name.replace("{topic}", topic)
    }

    /// Byte limit of one partition.
    pub fn partition_max_bytes(&self) -> usize {
        self.partition
            .max_bytes
            .unwrap_or((self.buffer.max_bytes / 4).max(64 << 10))
            .min(self.buffer.max_bytes)
    }
}

/// Parses `500ms`, `1s`, `10s`, `2m`, `1h` or a plain number of ms.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Builds a [`Pipeline`]; keeps the first error until [`build`](Self::build).
pub struct PipelineBuilder {
    consumer: ConsumerBuilder,
    producer: Producer,
    cfg: Config,
    error: Option<Error>,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    pub(crate) fn new(consumer: ConsumerBuilder, producer: Producer) -> Self {
        PipelineBuilder {
            consumer,
            producer,
            cfg: Config::default(),
            error: None,
        }
    }

    fn fail(mut self, e: Error) -> Self {
        self.error.get_or_insert(e);
        self
    }

    /// The source topics to consume.
    pub fn topics<S: AsRef<str>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.cfg.topics = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }

    /// Which records may run at once (default [`Ordering::Key`]).
    pub fn ordering(mut self, o: Ordering) -> Self {
        self.cfg.ordering = o;
        self
    }

    /// Handlers running at once (default 16).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        if n == 0 {
            return self.fail(Error::config("max_in_flight", "must be at least 1"));
        }
        self.cfg.max_in_flight = n;
        self
    }

    /// A global records/s limit.
    pub fn rate_limit(mut self, r: Rate) -> Self {
        self.cfg.rate.records = Some(r);
        self
    }

    /// Every rate limit at once (records and bytes, global and per partition).
    pub fn rate_limits(mut self, r: RateLimits) -> Self {
        self.cfg.rate = r;
        self
    }

    /// Bytes buffered over all partitions, with watermarks.
    pub fn buffer(mut self, b: BufferLimits) -> Self {
        if b.max_bytes == 0 || !(0.0 < b.low && b.low < b.high && b.high <= 1.0) {
            return self.fail(Error::config(
                "buffer",
                "needs max_bytes > 0 and 0 < low < high <= 1",
            ));
        }
        self.cfg.buffer = b;
        self
    }

    /// Bytes and records buffered per partition.
    pub fn partition_limits(mut self, p: PartitionLimits) -> Self {
        if p.max_records == 0 || p.max_bytes == Some(0) {
            return self.fail(Error::config("partition_limits", "limits must be positive"));
        }
        self.cfg.partition = p;
        self
    }

    /// The in-place retry policy.
    pub fn retry(mut self, r: Retry) -> Self {
        self.cfg.retry = r;
        self
    }

    /// Retry tiers after the in-place attempts, by delay (`"1s"`, `"10s"`,
    /// `"500ms"`); each tier makes one attempt when the record is due.
    pub fn retry_topics<S: AsRef<str>>(mut self, delays: impl IntoIterator<Item = S>) -> Self {
        let mut out = Vec::new();
        for d in delays {
            match parse_duration(d.as_ref()) {
                Some(d) => out.push(d),
                None => {
                    let msg = format!("`{}` is not a delay like 500ms, 1s or 2m", d.as_ref());
                    return self.fail(Error::config("retry_topics", msg));
                }
            }
        }
        self.cfg.tiers = out;
        self
    }

    /// Tier topic names; `{topic}` and `{ms}` are replaced (default
    /// `{topic}-retry-{ms}`, as Spring names them).
    pub fn retry_topic_name(mut self, template: &str) -> Self {
        self.cfg.tier_name = template.to_owned();
        self
    }

    /// The DLQ topic; `{topic}` is replaced (default `{topic}-dlt`).
    pub fn dead_letter_topic(mut self, template: &str) -> Self {
        self.cfg.dlq_name = template.to_owned();
        self
    }

    /// The DLQ breaker (off by default).
    pub fn dlq_limit(mut self, limit: DlqLimit) -> Self {
        self.cfg.dlq_limit = Some(limit);
        self
    }

    /// How often completed prefixes are committed (default 1 s).
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.cfg.commit_interval = d;
        self
    }

    /// How long a revoked partition's work may run before it is cancelled
    /// (default 10 s).
    pub fn revoke_timeout(mut self, d: Duration) -> Self {
        self.cfg.revoke_timeout = d;
        self
    }

    /// How long shutdown waits for running work (default 30 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.cfg.shutdown_timeout = d;
        self
    }

    /// Called for every [`Event`] (default: logged with `tracing`).
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.cfg.on_event = Some(Arc::new(f));
        self
    }

    /// What to do with committed metadata that is not our offset map.
    pub fn invalid_metadata(mut self, p: InvalidMetadata) -> Self {
        self.cfg.invalid_metadata = p;
        self
    }

    /// A lower bound than the broker's `offset.metadata.max.bytes` for the
    /// offset map (the broker's value, read with DescribeConfigs, always applies).
    pub fn max_metadata_bytes(mut self, n: usize) -> Self {
        self.cfg.max_metadata_bytes = Some(n);
        self
    }

    /// Whether missing tier and DLQ topics are created (default true), with
    /// the source topic's partition count and replication factor.
    pub fn create_topics(mut self, yes: bool) -> Self {
        self.cfg.create_topics = yes;
        self
    }

    /// Seeds the backoff jitter (runs are then repeatable).
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }

    /// Checks the settings. Connecting happens in [`Pipeline::run`].
    pub fn build(self) -> Result<Pipeline> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.cfg.topics.is_empty() {
            return Err(Error::config("topics", "name at least one source topic"));
        }
        if !self.producer.is_idempotent() {
            return Err(Error::config(
                "producer",
                "forwards to retry topics and the DLQ need an idempotent producer (enable.idempotence=true, acks=all)",
            ));
        }
        if !self.cfg.tiers.is_empty() && !self.cfg.tier_name.contains("{ms}") {
            return Err(Error::config(
                "retry_topic_name",
                "must contain {ms} so each tier has its own topic",
            ));
        }
        Ok(Pipeline::new(self.consumer, self.producer, self.cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_names() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), None);
        let cfg = Config {
            tiers: vec![Duration::from_secs(1), Duration::from_secs(10)],
            ..Config::default()
        };
        assert_eq!(cfg.tier_topic("orders", 1), "orders-retry-10000");
        assert_eq!(cfg.dlq_topic("orders"), "orders-dlt");
    }
}
