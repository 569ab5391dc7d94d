//! Errors of the registry client, the Avro serde and the JSON bridge.

use std::time::Duration;

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure of [`super`]'s API. Registry error codes are mapped to
/// their own variants; [`Error::code`] gives the raw code back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// An invalid or unknown configuration key or value.
    #[error("invalid schema registry config `{key}`: {message}")]
    Config { key: String, message: String },
    /// 40401: the subject does not exist (or was deleted).
    #[error("subject `{subject}` not found in the schema registry")]
    SubjectNotFound { subject: String },
    /// 40402: the subject has no such version.
    #[error("version {version} of subject `{subject}` not found in the schema registry")]
    VersionNotFound { subject: String, version: String },
    /// 40403: no schema with this id, or the schema is not registered under the subject.
    #[error("schema not found in the schema registry: {what}")]
    SchemaNotFound { what: String },
    /// 409: the registry refused the schema under the subject's compatibility level.
    #[error("schema is incompatible with subject `{subject}` (registry says: {message})")]
    IncompatibleSchema { subject: String, message: String },
    /// 42201: the registry could not parse the schema.
    #[error("the schema registry rejected the schema as invalid: {message}")]
    InvalidSchema { message: String },
    /// 401/403 (40101, 40301): credentials missing, wrong or not allowed.
    #[error(
        "schema registry refused access (HTTP {status}); check basic.auth.* / bearer.auth.*: {message}"
    )]
    Unauthorized { status: u16, message: String },
    /// Any other error answer of the registry.
    #[error("schema registry error during {operation} (HTTP {status}, code {code}): {message}")]
    Registry {
        operation: String,
        status: u16,
        code: i32,
        message: String,
    },
    /// The registry could not be reached (after the configured retries).
    #[error("schema registry at {url} is unreachable during {operation}: {message}")]
    Connection {
        url: String,
        operation: String,
        message: String,
    },
    /// A registry request ran out of time.
    #[error("schema registry request {operation} timed out after {after:?}")]
    Timeout { operation: String, after: Duration },
    /// The registry answered with something this client does not understand.
    #[error("unexpected answer from the schema registry to {operation}: {message}")]
    InvalidResponse { operation: String, message: String },
    /// An Avro schema (given by the application or fetched) does not parse.
    #[error("invalid Avro schema{}: {message}", context.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    SchemaParse {
        context: Option<String>,
        message: String,
    },
    /// The bytes are not in the Confluent wire format.
    #[error("not Confluent wire format: {0}")]
    WireFormat(String),
    /// The Avro body does not decode with its writer schema.
    #[error("cannot decode Avro data{}: {message}", id.map(|i| format!(" written with schema id {i}")).unwrap_or_default())]
    Decode { id: Option<u32>, message: String },
    /// The writer's data cannot be read with the reader schema.
    #[error("data{} cannot be read with the reader schema: {message}", id.map(|i| format!(" written with schema id {i}")).unwrap_or_default())]
    Resolution { id: Option<u32>, message: String },
    /// The value to serialize does not conform to the writer schema; nothing was encoded.
    #[error("value does not conform to schema `{schema}`: {message}")]
    NotConforming { schema: String, message: String },
    /// A JSON text does not match the schema (JSON bridge).
    #[error("JSON does not match the schema: {0}")]
    Json(String),
    /// The subject name strategy cannot name a subject for this schema.
    #[error("{0}")]
    SubjectName(String),
}

impl Error {
    /// The registry's error code (40401, 409, 42201...) when this error came
    /// from a registry answer.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::SubjectNotFound { .. } => Some(40401),
            Error::VersionNotFound { .. } => Some(40402),
            Error::SchemaNotFound { .. } => Some(40403),
            Error::IncompatibleSchema { .. } => Some(409),
            Error::InvalidSchema { .. } => Some(42201),
            Error::Unauthorized { status, .. } => Some(if *status == 403 { 40301 } else { 40101 }),
            Error::Registry { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same call later can help.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connection { .. } | Error::Timeout { .. } => true,
            Error::Registry { status, .. } => *status >= 500 && *status != 501,
            _ => false,
        }
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Names the schema id in a decode or resolution error.
    pub(crate) fn with_id(self, id: u32) -> Error {
        match self {
            Error::Decode { message, .. } => Error::Decode {
                id: Some(id),
                message,
            },
            Error::Resolution { message, .. } => Error::Resolution {
                id: Some(id),
                message,
            },
            e => e,
        }
    }

    pub(crate) fn parse(context: Option<String>, e: impl std::fmt::Display) -> Error {
        Error::SchemaParse {
            context,
            message: e.to_string(),
        }
    }
}
