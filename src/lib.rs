#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations)]

// Layers, bottom up; each imports only the one below (see DESIGN.md).
// (unstable-internals re-exports codec items that document little.)
mod cluster;
#[cfg_attr(feature = "unstable-internals", allow(missing_docs))]
mod codec;
mod conn;
mod engine;

mod admin;
mod backoff;
mod client;
pub mod config;
pub mod consumer;
mod error;
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod internals;
pub mod metrics;
pub mod producer;
pub mod retry;
pub mod schema_registry;
pub mod security;
mod topic_name;
mod types;

pub use admin::Admin;
pub use backoff::Backoff;
pub use client::{Client, ClientBuilder};
pub use config::ClientConfig;
pub use consumer::{
    Consumer, ConsumerBuilder, ConsumerConfig, ConsumerRecord, OffsetReset, RebalanceListener,
    Strategy,
};
pub use engine::Compression;
pub use error::{Error, ErrorCode, Result, RetryAction};
pub use producer::{
    Acks, DeliveryFuture, DeliveryHandler, Enqueue, Producer, ProducerBuilder, ProducerConfig,
    ProducerRecord, RecordMetadata,
};
pub use topic_name::{validate_topic_name, MAX_TOPIC_NAME_LEN};
pub use types::*;
