use std::time::Duration;

use crate::conn::{ConnError, ErrorCode};

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
    #[error("closed before the operation completed")]
    Closed,
    #[error("record of {size} bytes exceeds the limit of {max} bytes (buffer.memory / max.request.size)")]
    RecordTooLarge { size: usize, max: usize },
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

    /// Whether trying again, perhaps after a metadata refresh, may succeed.
    pub(crate) fn is_retriable(&self) -> bool {
        match self {
            ClusterError::Conn(e) => e.is_retriable(),
            ClusterError::NoBrokerAvailable { .. } | ClusterError::LeaderNotAvailable { .. } => {
                true
            }
            ClusterError::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }
}
