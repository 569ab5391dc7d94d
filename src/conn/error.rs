use std::sync::Arc;
use std::time::Duration;

use crate::codec::{CodecError, ErrorCode};
use crate::retry::Class;
#[cfg(test)]
use crate::retry::{classify, RetryAction};

/// Connection-layer failures. Clone, so one failure reaches every waiter.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConnError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: Arc<std::io::Error>,
    },
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("{api} request to {addr} timed out after {after:?}")]
    RequestTimeout {
        addr: String,
        api: &'static str,
        after: Duration,
    },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: Arc<std::io::Error>,
    },
    #[error("connection to {addr} was closed")]
    Closed { addr: String },
    #[error("{addr} sent a {size}-byte response; the limit (receive.message.max.bytes) is {max}")]
    FrameTooLarge { addr: String, size: i64, max: usize },
    #[error("{addr} sent a response with unknown correlation id {id}")]
    UnknownCorrelation { addr: String, id: i32 },
    #[error("protocol error talking to {addr}: {source}")]
    Codec { addr: String, source: CodecError },
    #[error("{addr} supports {api} versions {broker:?}, the client needs {min}..={max}")]
    UnsupportedVersion {
        addr: String,
        api: &'static str,
        broker: Option<(i16, i16)>,
        min: i16,
        max: i16,
    },
    #[error("{addr} refused ApiVersions: {code}")]
    Handshake { addr: String, code: ErrorCode },
    /// A failed TLS handshake or SASL login; never retried.
    #[error("authentication with {mechanism} to {addr} failed: {message}")]
    Authentication {
        addr: String,
        mechanism: &'static str,
        message: String,
    },
}

impl ConnError {
    /// Whether the peer sent bytes that are not Kafka protocol.
    pub(crate) fn is_protocol(&self) -> bool {
        self.class() == Class::Protocol
    }

    pub(crate) fn class(&self) -> Class {
        match self {
            ConnError::Connect { .. }
            | ConnError::ConnectTimeout { .. }
            | ConnError::Io { .. }
            | ConnError::Closed { .. } => Class::Network,
            ConnError::RequestTimeout { .. } => Class::Timeout,
            ConnError::Codec {
                source: CodecError::Encode { .. },
                ..
            } => Class::Encode,
            ConnError::FrameTooLarge { .. }
            | ConnError::UnknownCorrelation { .. }
            | ConnError::Codec { .. } => Class::Protocol,
            ConnError::UnsupportedVersion { .. } | ConnError::Handshake { .. } => {
                Class::Unsupported
            }
            ConnError::Authentication { .. } => Class::Authentication,
        }
    }

    /// The broker address the error concerns.
    pub(crate) fn addr(&self) -> &str {
        match self {
            ConnError::Connect { addr, .. }
            | ConnError::ConnectTimeout { addr, .. }
            | ConnError::RequestTimeout { addr, .. }
            | ConnError::Io { addr, .. }
            | ConnError::Closed { addr }
            | ConnError::FrameTooLarge { addr, .. }
            | ConnError::UnknownCorrelation { addr, .. }
            | ConnError::Codec { addr, .. }
            | ConnError::UnsupportedVersion { addr, .. }
            | ConnError::Handshake { addr, .. }
            | ConnError::Authentication { addr, .. } => addr,
        }
    }

    #[cfg(test)]
    pub(crate) fn retry_action(&self) -> RetryAction {
        classify(self.class())
    }

    /// Whether this is a failed login (TLS or SASL): a config problem, the
    /// same on every broker, that loops must surface instead of retrying.
    pub(crate) fn is_auth(&self) -> bool {
        matches!(self, ConnError::Authentication { .. })
    }
}
