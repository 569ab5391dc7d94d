//! The public error type. Each internal layer has its own error enum; they
//! are converted here, at the API boundary, into [`Error`]. Conversions keep
//! the layer error as the [`source`](std::error::Error::source), and
//! retriability comes from the one classification in [`crate::retry`].

use std::sync::Arc;
use std::time::Duration;

pub use crate::engine::ErrorCode;
use crate::engine::{ClusterError, ConnError};
pub use crate::retry::RetryAction;
use crate::retry::{classify, Class};

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying cause of an [`Error`], as reported by a lower layer.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Every failure the public API reports. Variant fields are self-describing;
/// the message of each names where it came from, and `source()` gives the
/// lower-level cause where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// An invalid or unknown configuration key or value.
    #[error("invalid config `{key}`: {message}")]
    Config { key: String, message: String },
    /// An invalid argument to an API call (e.g. a negative offset).
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },
    /// A broker could not be reached or its connection broke.
    #[error("{message}")]
    Connection {
        broker: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// An operation ran out of time; it did not take effect.
    #[error("{operation} timed out after {after:?}{}", last.as_deref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    Timeout {
        operation: String,
        after: Duration,
        #[source]
        last: Option<Box<Error>>,
    },
    /// A record was not acknowledged within `delivery.timeout.ms`. It may
    /// have been written: resending can duplicate it.
    #[error("{what} was not acknowledged within {after:?} (delivery.timeout.ms); it may have been written{}", last.as_deref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    DeliveryTimeout {
        what: String,
        after: Duration,
        #[source]
        last: Option<Box<Error>>,
    },
    /// The peer sent bytes that are not valid Kafka protocol.
    #[error("protocol error from {broker}: {message}")]
    Protocol {
        broker: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// The client could not encode a request (an oversized field, or a bug).
    #[error("{message}")]
    Encode {
        message: String,
        #[source]
        source: Cause,
    },
    /// Fetched records fail their checks (CRC, decompression, size limit).
    /// The partition stops at `offset`; seek past it to skip the batch.
    #[error("records of {topic}-{partition} at offset {offset} cannot be read: {message}; seek past offset {offset} to skip them")]
    CorruptRecords {
        topic: String,
        partition: i32,
        offset: i64,
        message: String,
        #[source]
        source: Cause,
    },
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
    NoBrokerAvailable {
        tried: Vec<String>,
        #[source]
        last: Option<Cause>,
    },
    /// The topic does not exist.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("partition {topic}-{partition} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    /// The consumer group does not exist (no members, no committed offsets).
    #[error("group `{0}` does not exist")]
    UnknownGroup(String),
    /// The partition currently has no leader.
    #[error("partition {topic}-{partition} has no leader right now")]
    LeaderNotAvailable { topic: String, partition: i32 },
    /// A broker id (a leader or coordinator) is not in the metadata yet.
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    /// The client, producer or consumer was closed.
    #[error("closed")]
    Closed,
    /// A background task of the client failed (a panic or an unrecoverable
    /// error); the client cannot continue and must be recreated.
    #[error("the {task} task failed: {message}")]
    Background { task: String, message: String },
    /// No committed offset and `auto.offset.reset=none`.
    #[error("no committed offset for {topic}-{partition} and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    /// A record larger than `max.request.size` or `buffer.memory` (`max`),
    /// or than the topic's `max.message.bytes` (`max` is `None`: the broker
    /// refused it).
    #[error("record of {size} bytes exceeds {}", crate::engine::too_large_limit(*max))]
    RecordTooLarge { size: usize, max: Option<usize> },
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
    fn class(&self) -> Class {
        match self {
            Error::Config { .. } | Error::InvalidArgument { .. } | Error::RecordTooLarge { .. } => {
                Class::Invalid
            }
            Error::Connection { .. } | Error::NoBrokerAvailable { .. } => Class::Network,
            Error::Timeout { .. } => Class::Timeout,
            Error::Authentication { .. } => Class::Authentication,
            Error::DeliveryTimeout { .. } => Class::DeliveryTimeout,
            Error::Protocol { .. } => Class::Protocol,
            Error::Encode { .. } => Class::Encode,
            Error::CorruptRecords { .. } => Class::CorruptData,
            Error::UnsupportedVersion(_) => Class::Unsupported,
            Error::Broker { code, .. } => Class::Broker(code.0),
            Error::UnknownTopic(_) | Error::UnknownPartition { .. } | Error::UnknownGroup(_) => {
                Class::Missing
            }
            Error::LeaderNotAvailable { .. } | Error::UnknownBroker(_) => Class::Routing,
            Error::Closed | Error::Background { .. } | Error::NoOffset { .. } => Class::Final,
            Error::File { .. } => Class::Invalid,
        }
    }

    /// What a caller can do about this error (the same decision the
    /// client's own retry loops make).
    pub fn retry_action(&self) -> RetryAction {
        classify(self.class())
    }

    /// A short label for counting errors by kind: the broker error code's
    /// name (`NotLeaderOrFollower`), else the failure class (`network`,
    /// `timeout`, `delivery_timeout`, `closed`, ...).
    pub fn kind(&self) -> String {
        self.class().kind()
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

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            message: message.into(),
        }
    }
}

fn cause(e: impl std::error::Error + Send + Sync + 'static) -> Cause {
    Arc::new(e)
}

impl From<ConnError> for Error {
    fn from(e: ConnError) -> Self {
        let message = e.to_string();
        let broker = e.addr().to_owned();
        match &e {
            ConnError::ConnectTimeout { addr, after } => Error::Timeout {
                operation: format!("connecting to {addr}"),
                after: *after,
                last: None,
            },
            ConnError::RequestTimeout { addr, api, after } => Error::Timeout {
                operation: format!("{api} request to {addr}"),
                after: *after,
                last: None,
            },
            ConnError::UnsupportedVersion { .. } => Error::UnsupportedVersion(message),
            ConnError::Handshake { addr, code } => Error::Broker {
                context: format!("ApiVersions handshake with {addr}"),
                code: *code,
                message: None,
            },
            ConnError::Authentication {
                addr,
                mechanism,
                message: why,
            } => Error::Authentication {
                mechanism: (*mechanism).to_owned(),
                broker: addr.clone(),
                message: why.clone(),
            },
            _ => match e.class() {
                Class::Encode => Error::Encode {
                    message,
                    source: cause(e),
                },
                Class::Protocol => Error::Protocol {
                    broker,
                    message,
                    source: Some(cause(e)),
                },
                _ => Error::Connection {
                    broker,
                    message,
                    source: Some(cause(e)),
                },
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
            } if last.is_protocol() => Error::Protocol {
                broker: last.addr().to_owned(),
                message: tried.join("; "),
                source: Some(cause(last)),
            },
            ClusterError::NoBrokerAvailable { tried, last } => Error::NoBrokerAvailable {
                tried,
                last: last.map(cause),
            },
            ClusterError::UnknownTopic(t) => Error::UnknownTopic(t),
            ClusterError::UnknownGroup(g) => Error::UnknownGroup(g),
            ClusterError::UnknownPartition { topic, partition } => {
                Error::UnknownPartition { topic, partition }
            }
            ClusterError::LeaderNotAvailable { topic, partition } => {
                Error::LeaderNotAvailable { topic, partition }
            }
            ClusterError::UnknownBroker(id) => Error::UnknownBroker(id),
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
                last => Error::Timeout {
                    operation: what,
                    after,
                    last: last.map(Box::new),
                },
            },
            ClusterError::DeliveryTimeout { what, after, last } => Error::DeliveryTimeout {
                what,
                after,
                last: last.map(|l| Box::new(Error::from(*l))),
            },
            ClusterError::Closed => Error::Closed,
            ClusterError::RecordTooLarge { size, max } => Error::RecordTooLarge { size, max },
            e @ ClusterError::Encode { .. } => Error::Encode {
                message: e.to_string(),
                source: cause(e),
            },
            ClusterError::CorruptRecords { tp, offset, source } => Error::CorruptRecords {
                message: source.to_string(),
                topic: tp.topic,
                partition: tp.partition,
                offset,
                source: cause(source),
            },
            ClusterError::Background { task, message } => Error::Background {
                task: task.to_owned(),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

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

    #[test]
    fn conversions_keep_the_cause_and_agree_with_the_layer_below() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let conn = ConnError::Io {
            addr: "b:9092".into(),
            source: Arc::new(io),
        };
        let cluster = ClusterError::Conn(conn.clone());
        let public = Error::from(cluster.clone());
        assert!(matches!(public, Error::Connection { .. }));
        assert_eq!(public.retry_action(), cluster.retry_action());
        // Error -> ConnError -> io::Error.
        let conn_cause = public.source().expect("conn cause");
        assert!(conn_cause.to_string().contains("b:9092"));
        let io_cause = conn_cause.source().expect("io cause");
        assert!(io_cause.to_string().contains("reset by peer"));

        let enc = ConnError::Codec {
            addr: "b:9092".into(),
            source: crate::conn::wire::CodecError::Encode {
                api: "Produce",
                version: 9,
                reason: "too big".into(),
            },
        };
        let public = Error::from(enc.clone());
        assert!(matches!(public, Error::Encode { .. }), "{public:?}");
        assert_eq!(public.retry_action(), RetryAction::NoRetry);
        assert_eq!(enc.retry_action(), RetryAction::NoRetry);

        let unknown_broker = ClusterError::UnknownBroker(7);
        assert_eq!(
            Error::from(unknown_broker.clone()).retry_action(),
            unknown_broker.retry_action()
        );
        assert_eq!(
            unknown_broker.retry_action(),
            RetryAction::RefreshMetadataAndRetry
        );

        let delivery = ClusterError::DeliveryTimeout {
            what: "delivering 1 record(s) to t-0".into(),
            after: Duration::from_secs(1),
            last: None,
        };
        assert_eq!(Error::from(delivery).retry_action(), RetryAction::NoRetry);
    }
}
