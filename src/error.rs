//! The public error type. Each internal layer has its own error enum; they
//! are converted here, at the API boundary, into [`Error`].

use std::time::Duration;

pub use crate::engine::ErrorCode;
use crate::engine::{ClusterError, ConnError};

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a caller can recover from an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAction {
    /// Retrying cannot help (bad config, authorization, invalid request...).
    NoRetry,
    /// Retry after a backoff; the client reconnects or re-routes by itself.
    Retry,
    /// Retry after refreshing metadata (leadership moved, topic appeared).
    RefreshMetadataAndRetry,
}

/// Every failure the public API reports. Variant fields are self-describing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// An invalid or unknown configuration key or value.
    #[error("invalid config `{key}`: {message}")]
    Config { key: String, message: String },
    /// A broker could not be reached or its connection broke.
    #[error("{message}")]
    Connection { broker: String, message: String },
    /// An operation ran out of time.
    #[error("{operation} timed out after {after:?}")]
    Timeout { operation: String, after: Duration },
    /// The peer sent bytes that are not valid Kafka protocol.
    #[error("protocol error from {broker}: {message}")]
    Protocol { broker: String, message: String },
    /// The broker speaks no version of an API we need.
    #[error("{0}")]
    UnsupportedVersion(String),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        context: String,
        code: ErrorCode,
        message: Option<String>,
    },
    /// None of the bootstrap or known brokers answered.
    #[error("no broker reachable; tried: {}", tried.join("; "))]
    NoBrokerAvailable { tried: Vec<String> },
    /// The topic does not exist.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("partition {topic}-{partition} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    /// The partition currently has no leader.
    #[error("partition {topic}-{partition} has no leader right now")]
    LeaderNotAvailable { topic: String, partition: i32 },
    /// The client, producer or consumer was closed.
    #[error("closed")]
    Closed,
    /// No committed offset and `auto.offset.reset=none`.
    #[error("no committed offset for {topic}-{partition} and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    /// A record larger than `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes exceeds the limit of {max} bytes (buffer.memory / max.request.size)")]
    RecordTooLarge { size: usize, max: usize },
    /// A TLS handshake or SASL login was refused (wrong credentials, an
    /// untrusted or wrong-host certificate, a missing client certificate).
    /// Never retried: fix the configuration.
    #[error("authentication with {mechanism} to {broker} failed: {message}")]
    Authentication {
        mechanism: String,
        broker: String,
        message: String,
    },
    /// Reading a file (config, schema) failed.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    /// What a caller can do about this error.
    pub fn retry_action(&self) -> RetryAction {
        match self {
            Error::Connection { .. } | Error::Timeout { .. } | Error::NoBrokerAvailable { .. } => {
                RetryAction::Retry
            }
            Error::LeaderNotAvailable { .. } => RetryAction::RefreshMetadataAndRetry,
            Error::Broker { code, .. } if crate::engine::codes::needs_metadata_refresh(code.0) => {
                RetryAction::RefreshMetadataAndRetry
            }
            Error::Broker { code, .. } if code.is_retriable() => RetryAction::Retry,
            _ => RetryAction::NoRetry,
        }
    }

    /// Whether retrying can help.
    pub fn is_retriable(&self) -> bool {
        self.retry_action() != RetryAction::NoRetry
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl From<ConnError> for Error {
    fn from(e: ConnError) -> Self {
        let message = e.to_string();
        match e {
            ConnError::Connect { addr, .. }
            | ConnError::Io { addr, .. }
            | ConnError::Closed { addr } => Error::Connection {
                broker: addr,
                message,
            },
            ConnError::ConnectTimeout { addr, after } => Error::Timeout {
                operation: format!("connecting to {addr}"),
                after,
            },
            ConnError::RequestTimeout { addr, api, after } => Error::Timeout {
                operation: format!("{api} request to {addr}"),
                after,
            },
            ConnError::FrameTooLarge { addr, .. }
            | ConnError::UnknownCorrelation { addr, .. }
            | ConnError::Codec { addr, .. } => Error::Protocol {
                broker: addr,
                message,
            },
            ConnError::UnsupportedVersion { .. } => Error::UnsupportedVersion(message),
            ConnError::Handshake { addr, code } => Error::Broker {
                context: format!("ApiVersions handshake with {addr}"),
                code,
                message: None,
            },
            ConnError::Authentication {
                addr,
                mechanism,
                message,
            } => Error::Authentication {
                mechanism: mechanism.to_owned(),
                broker: addr,
                message,
            },
        }
    }
}

impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Conn(c) => c.into(),
            // Every address answered with bytes that are not Kafka: say so.
            ClusterError::NoBrokerAvailable {
                tried,
                last: Some(last),
            } if last.is_protocol() => {
                let broker = last.addr().to_owned();
                Error::Protocol {
                    broker,
                    message: tried.join("; "),
                }
            }
            ClusterError::NoBrokerAvailable { tried, .. } => Error::NoBrokerAvailable { tried },
            ClusterError::UnknownTopic(t) => Error::UnknownTopic(t),
            ClusterError::UnknownPartition { topic, partition } => {
                Error::UnknownPartition { topic, partition }
            }
            ClusterError::LeaderNotAvailable { topic, partition } => {
                Error::LeaderNotAvailable { topic, partition }
            }
            ClusterError::UnknownBroker(id) => Error::Connection {
                broker: id.to_string(),
                message: format!("broker {id} is not in the cluster metadata"),
            },
            ClusterError::Broker {
                context,
                code,
                message,
            } => Error::Broker {
                context,
                code,
                message,
            },
            ClusterError::Timeout { what, after, last } => match last.map(|l| Error::from(*l)) {
                // A protocol failure is the real story, not the clock.
                Some(e @ (Error::Protocol { .. } | Error::Authentication { .. })) => e,
                Some(e) => Error::Timeout {
                    operation: format!("{what} (last error: {e})"),
                    after,
                },
                None => Error::Timeout {
                    operation: what,
                    after,
                },
            },
            ClusterError::Closed => Error::Closed,
            ClusterError::RecordTooLarge { size, max } => Error::RecordTooLarge { size, max },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_actions_follow_codes() {
        let b = |c| Error::Broker {
            context: "x".into(),
            code: ErrorCode(c),
            message: None,
        };
        assert_eq!(b(6).retry_action(), RetryAction::RefreshMetadataAndRetry);
        assert_eq!(b(7).retry_action(), RetryAction::Retry, "REQUEST_TIMED_OUT");
        assert_eq!(
            b(36).retry_action(),
            RetryAction::NoRetry,
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(Error::Closed.retry_action(), RetryAction::NoRetry);
        assert!(
            b(36).to_string().contains("TopicAlreadyExists"),
            "{}",
            b(36)
        );
    }
}
