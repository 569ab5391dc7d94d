use std::time::Duration;

use crate::conn::{wire::CodecError, ConnError, ErrorCode};
use crate::retry::{classify, Class, RetryAction};
use crate::types::TopicPartition;

/// Failures of the cluster layer: routing, metadata and broker error codes.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ClusterError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("no broker reachable; tried: {}", tried.join("; "))]
    NoBrokerAvailable {
        tried: Vec<String>,
        last: Option<ConnError>,
    },
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("partition {topic}-{partition} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("group `{0}` does not exist")]
    UnknownGroup(String),
    #[error("partition {topic}-{partition} has no leader right now")]
    LeaderNotAvailable { topic: String, partition: i32 },
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    #[error("{context}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        context: String,
        code: ErrorCode,
        message: Option<String>,
    },
    #[error("{what} did not complete within {after:?}{}", last.as_deref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    Timeout {
        what: String,
        after: Duration,
        last: Option<Box<ClusterError>>,
    },
    /// A record's delivery timed out after it may have reached the broker.
    #[error("{what} was not acknowledged within {after:?} (delivery.timeout.ms); it may have been written{}", last.as_deref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    DeliveryTimeout {
        what: String,
        after: Duration,
        last: Option<Box<ClusterError>>,
    },
    #[error("closed before the operation completed")]
    Closed,
    /// The client could not encode a request or record batch.
    #[error("cannot encode {what}: {source}")]
    Encode { what: String, source: CodecError },
    /// Fetched records of a partition fail their checks; the partition stops
    /// at `offset` until the application seeks past it.
    #[error("records of {tp} at offset {offset} cannot be read: {source}; seek past offset {offset} to skip them")]
    CorruptRecords {
        tp: TopicPartition,
        offset: i64,
        source: CodecError,
    },
    /// A background task ended abnormally (a panic or an unrecoverable error).
    #[error("the {task} task failed: {message}")]
    Background { task: &'static str, message: String },
    /// `max` is `None` when the limit is the topic's `max.message.bytes`.
    #[error("record of {size} bytes exceeds {}", too_large_limit(*max))]
    RecordTooLarge { size: usize, max: Option<usize> },
}

impl ClusterError {
    pub(crate) fn broker(
        context: impl Into<String>,
        code: ErrorCode,
        message: Option<String>,
    ) -> Self {
        ClusterError::Broker {
            context: context.into(),
            code,
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// Whether this is a refused TLS or SASL login (never retried).
    pub(crate) fn is_auth(&self) -> bool {
        match self {
            ClusterError::Conn(e) => e.is_auth(),
            ClusterError::Timeout { last: Some(l), .. } => l.is_auth(),
            _ => false,
        }
    }

    pub(crate) fn class(&self) -> Class {
        match self {
            ClusterError::Conn(e) => e.class(),
            ClusterError::NoBrokerAvailable { last: Some(l), .. } if l.is_protocol() => {
                Class::Protocol
            }
            ClusterError::NoBrokerAvailable { .. } => Class::Network,
            ClusterError::UnknownTopic(_)
            | ClusterError::UnknownPartition { .. }
            | ClusterError::UnknownGroup(_) => Class::Missing,
            ClusterError::LeaderNotAvailable { .. } | ClusterError::UnknownBroker(_) => {
                Class::Routing
            }
            ClusterError::Broker { code, .. } => Class::Broker(code.0),
            ClusterError::Timeout { .. } => Class::Timeout,
            ClusterError::DeliveryTimeout { .. } => Class::DeliveryTimeout,
            ClusterError::Closed | ClusterError::Background { .. } => Class::Final,
            ClusterError::RecordTooLarge { .. } => Class::Invalid,
            ClusterError::Encode { .. } => Class::Encode,
            ClusterError::CorruptRecords { .. } => Class::CorruptData,
        }
    }

    pub(crate) fn retry_action(&self) -> RetryAction {
        classify(self.class())
    }

    /// A short label for metrics (see [`Class::kind`]).
    pub(crate) fn kind(&self) -> String {
        self.class().kind()
    }

    /// Whether trying again, perhaps after a metadata refresh, may succeed.
    pub(crate) fn is_retriable(&self) -> bool {
        self.retry_action() != RetryAction::NoRetry
    }
}

/// The limit a too-large record exceeded, in words.
pub(crate) fn too_large_limit(max: Option<usize>) -> String {
    match max {
        Some(m) => format!("the limit of {m} bytes (buffer.memory / max.request.size)"),
        None => "the topic's max.message.bytes (the broker refused it)".to_owned(),
    }
}
