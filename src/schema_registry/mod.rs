//! Confluent Schema Registry client, Avro serde and an offline compatibility checker.
//!
//! - [`SchemaRegistryClient`]: the REST API of any Confluent-compatible
//!   registry (Confluent, Apicurio's ccompat API, Redpanda, Karapace), with
//!   id and subject caches, retries on connection errors and 5xx, basic auth
//!   and timeouts.
//! - [`AvroSerializer`] / [`AvroDeserializer`]: Avro in the Confluent wire
//!   format (magic byte 0, big-endian schema id, Avro body) for keys and
//!   values, generic [`apache_avro::types::Value`]s or serde types; the
//!   deserializer resolves the writer's schema into the reader's.
//! - [`compat`]: Avro's schema resolution rules and Confluent's seven
//!   compatibility levels, offline, with a path for every incompatibility.
//! - [`json`]: Avro values to and from JSON text.
//!
//! ```no_run
//! # async fn demo() -> kafka_ingest::schema_registry::Result<()> {
//! use kafka_ingest::schema_registry::*;
//! let config = SchemaRegistryConfig::new("http://127.0.0.1:8081/apis/ccompat/v7");
//! let client = SchemaRegistryClient::new(&config)?;
//! let v1 = r#"{"type":"record","name":"Reading","fields":[{"name":"value","type":"double"}]}"#;
//! let ser = AvroSerializer::new(client.clone(), &config, RecordPart::Value, v1)?;
//! let bytes = ser.serialize_json("readings", r#"{"value": 1.5}"#).await?;
//! let de = AvroDeserializer::new(client);
//! assert_eq!(de.deserialize_json(&bytes).await?, r#"{"value":1.5}"#);
//! # Ok(()) }
//! ```

mod avro;
mod cache;
mod client;
pub mod compat;
mod config;
mod decode;
mod error;
pub mod json;
mod names;
mod resolve;
pub mod wire;

/// The Avro library this module speaks (`Schema`, `types::Value`), re-exported so versions match.
pub use apache_avro;
pub use avro::{
    check_value, decode_datum, encode_datum, parse_schema, AvroDeserializer, AvroSerializer,
};
pub use client::{CompatibilityCheck, RegisteredSchema, SchemaRegistryClient, Version};
pub use compat::CompatibilityLevel;
pub use config::{RecordPart, SchemaRegistryConfig, SubjectNameStrategy, DEFAULT_URL};
pub use error::{Error, Result};
