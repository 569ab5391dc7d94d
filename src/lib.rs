#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations)]

// Layers, bottom up; each imports only the one below (see DESIGN.md).
mod codec;
mod conn;
mod cluster;
mod engine;

mod admin;
mod backoff;
mod client;
pub mod config;
mod error;
pub mod producer;
pub mod schema_registry;
mod types;

pub use admin::Admin;
pub use backoff::Backoff;
pub use client::{Client, ClientBuilder};
pub use codec::compression::Compression;
pub use config::ClientConfig;
pub use error::{Error, ErrorCode, Result, RetryAction};
pub use producer::{Acks, DeliveryFuture, Producer, ProducerBuilder, ProducerConfig, ProducerRecord, RecordMetadata};
pub use types::*;
