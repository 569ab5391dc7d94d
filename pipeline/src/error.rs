//! The handler's outcome types and the pipeline's own errors.

use std::borrow::Cow;
use std::fmt;

use kafka_ingest::TopicPartition;

use crate::offset_map::MapError;

/// What a handler returns: `Ok(())`, or a [`HandlerError`] that says
/// whether another attempt can help.
pub type HandlerResult = Result<(), HandlerError>;

/// How the pipeline treats a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FailureKind {
    /// Try again (in place with backoff, then the retry topics, then the DLQ).
    Retryable,
    /// Another attempt cannot help (bad data, unknown schema): DLQ at once.
    Fatal,
}

/// A failed handler attempt. Its class and message go into the dead
/// letter's `kafka_dlt-exception-fqcn` and `-message` headers.
#[derive(Debug)]
pub struct HandlerError {
    kind: FailureKind,
    class: Cow<'static, str>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HandlerError {
    /// A retryable failure caused by `e` (class: its type name).
    pub fn retryable<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        Self::from_error(FailureKind::Retryable, e)
    }

    /// A fatal failure caused by `e` (class: its type name).
    pub fn fatal<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        Self::from_error(FailureKind::Fatal, e)
    }

    /// A failure described by a class name and a message, without a source.
    pub fn new(
        kind: FailureKind,
        class: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        HandlerError {
            kind,
            class: class.into(),
            message: message.into(),
            source: None,
        }
    }

    fn from_error<E: std::error::Error + Send + Sync + 'static>(kind: FailureKind, e: E) -> Self {
        HandlerError {
            kind,
            class: Cow::Borrowed(std::any::type_name::<E>()),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    /// Retryable or fatal.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether no retry should be attempted.
    pub fn is_fatal(&self) -> bool {
        self.kind == FailureKind::Fatal
    }

    /// The error's class (type name) for the DLQ headers.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The error's message for the DLQ headers.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Retryable => "retryable",
            FailureKind::Fatal => "fatal",
        };
        write!(f, "{kind} {}: {}", self.class, self.message)
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Schema registry and Avro errors: decoding and schema errors (an unknown
/// schema id, data that does not resolve) are fatal; an unreachable or
/// failing registry is retryable.
impl From<kafka_ingest::schema_registry::Error> for HandlerError {
    fn from(e: kafka_ingest::schema_registry::Error) -> Self {
        if e.is_retriable() {
            HandlerError::retryable(e)
        } else {
            HandlerError::fatal(e)
        }
    }
}

/// Maps any error into a [`HandlerError`]: `do_io().await.retryable()?`.
pub trait ResultExt<T> {
    /// A failure here is worth retrying.
    fn retryable(self) -> Result<T, HandlerError>;
    /// A failure here is final: straight to the DLQ.
    fn fatal(self) -> Result<T, HandlerError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, HandlerError> {
        self.map_err(HandlerError::retryable)
    }

    fn fatal(self) -> Result<T, HandlerError> {
        self.map_err(HandlerError::fatal)
    }
}

/// Why the pipeline could not be built or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid setting.
    #[error("invalid pipeline setting `{what}`: {message}")]
    Config {
        /// The setting.
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A Kafka call failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What the pipeline was doing.
        context: String,
        /// The client's error.
        #[source]
        source: kafka_ingest::Error,
    },
    /// The committed metadata of a partition is not a valid offset map.
    #[error("committed offset map of {partition} rejected: {source}")]
    OffsetMap {
        /// The partition.
        partition: TopicPartition,
        /// Why.
        #[source]
        source: MapError,
    },
}

impl Error {
    pub(crate) fn config(what: &'static str, message: impl Into<String>) -> Error {
        Error::Config {
            what,
            message: message.into(),
        }
    }

    pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(kafka_ingest::Error) -> Error {
        let context = context.into();
        move |source| Error::Kafka { context, source }
    }
}

/// Result alias for the pipeline.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_name_the_error_type_and_keep_the_source() {
        let e = "x".parse::<i32>().fatal().unwrap_err();
        assert!(e.is_fatal());
        assert_eq!(e.class(), "core::num::error::ParseIntError");
        assert!(std::error::Error::source(&e).is_some());
        assert!(e
            .to_string()
            .starts_with("fatal core::num::error::ParseIntError: "));
        let unknown_id = kafka_ingest::schema_registry::Error::SchemaNotFound {
            what: "id 7".into(),
        };
        assert!(HandlerError::from(unknown_id).is_fatal());
    }
}
