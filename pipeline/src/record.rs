//! What the handler receives, and the events the pipeline reports.

use std::sync::Arc;
use std::time::Duration;

use kafka_ingest::{ConsumerRecord, TopicPartition};

use crate::headers::Provenance;

/// A record handed to the handler: the consumed record plus its attempt
/// number and origin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Record {
    pub(crate) inner: Arc<ConsumerRecord>,
    pub(crate) attempt: u32,
    pub(crate) origin: Arc<Provenance>,
    pub(crate) tier: Option<usize>,
}

impl Record {
    /// The record as consumed (from the source topic or a retry tier).
    pub fn record(&self) -> &ConsumerRecord {
        &self.inner
    }

    /// This attempt's number, from 1, counting every earlier attempt in
    /// place and in the retry tiers.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Where the record was first consumed (its source topic, partition
    /// and offset, also for records read back from a retry tier).
    pub fn origin(&self) -> &Provenance {
        &self.origin
    }

    /// The retry tier it was read from (0 = the first), or `None` for the
    /// source topic.
    pub fn tier(&self) -> Option<usize> {
        self.tier
    }
}

impl std::ops::Deref for Record {
    type Target = ConsumerRecord;
    fn deref(&self) -> &ConsumerRecord {
        &self.inner
    }
}

/// A record's place, for events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// Where it was consumed.
    pub partition: TopicPartition,
    /// Its offset there.
    pub offset: i64,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.partition, self.offset)
    }
}

/// Something the application may want to log or alert on. Delivered to
/// the [`on_event`](crate::PipelineBuilder::on_event) callback, outside
/// the pipeline's locks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// An attempt failed; the record is retried in place after `delay`.
    Retrying {
        /// The record.
        at: At,
        /// The attempt that failed.
        attempt: u32,
        /// Backoff before the next attempt.
        delay: Duration,
        /// The failure.
        error: String,
    },
    /// The record was forwarded (and acknowledged) to a retry tier.
    Forwarded {
        /// The record.
        at: At,
        /// The attempt that failed.
        attempt: u32,
        /// The tier topic.
        topic: String,
        /// The failure.
        error: String,
    },
    /// The record was forwarded (and acknowledged) to the DLQ.
    DeadLettered {
        /// The record.
        at: At,
        /// Its origin.
        origin: At,
        /// The attempt that failed.
        attempt: u32,
        /// The DLQ topic.
        topic: String,
        /// Whether the failure was fatal (else retries ran out).
        fatal: bool,
        /// The failure.
        error: String,
    },
    /// A forward failed; it is tried again after a backoff.
    ForwardFailed {
        /// The record.
        at: At,
        /// The destination.
        topic: String,
        /// The producer's error.
        error: String,
    },
    /// The DLQ breaker tripped: the partition is paused until reset.
    BreakerOpen {
        /// The partition.
        partition: TopicPartition,
    },
    /// The offset map reached its threshold: the partition takes no new
    /// work until it shrinks (or, past the limit, it is not committed).
    OffsetMapFull {
        /// The partition.
        partition: TopicPartition,
        /// The encoded size.
        bytes: usize,
        /// `offset.metadata.max.bytes`.
        limit: usize,
    },
    /// A commit failed (it is tried again on the next interval).
    CommitFailed {
        /// The error.
        error: String,
    },
    /// Committed metadata was not a valid offset map and is ignored
    /// (with `InvalidMetadata::Ignore`): completed records may be redone.
    MetadataIgnored {
        /// The partition.
        partition: TopicPartition,
        /// Why it was rejected.
        error: String,
    },
}

/// One log line per event: `retry ...` for retries in place and forwards
/// to a tier, `dead letter ...` for the DLQ.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Retrying { at, attempt, delay, error } => {
                write!(f, "retry {at}: attempt {attempt} failed ({error}); again in {delay:?}")
            }
            Event::Forwarded { at, attempt, topic, error } => {
                write!(f, "retry {at}: attempt {attempt} failed ({error}); forwarded to {topic}")
            }
            Event::DeadLettered { at, origin, attempt, topic, error, .. } => write!(
                f,
                "dead letter {at} (origin {origin}) after attempt {attempt}: {error}; sent to {topic}"
            ),
            Event::ForwardFailed { at, topic, error } => {
                write!(f, "forward of {at} to {topic} failed: {error}; trying again")
            }
            Event::BreakerOpen { partition } => {
                write!(f, "DLQ breaker open: {partition} paused until reset")
            }
            Event::OffsetMapFull { partition, bytes, limit } => write!(
                f,
                "offset map of {partition} is {bytes} of {limit} bytes: taking no new work"
            ),
            Event::CommitFailed { error } => write!(f, "commit failed: {error}"),
            Event::MetadataIgnored { partition, error } => {
                write!(f, "committed offset map of {partition} ignored: {error}")
            }
        }
    }
}
