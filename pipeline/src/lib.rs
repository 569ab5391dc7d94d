//! Ingestion middleware over [`kafka_ingest`]'s public API: bounded
//! buffering with pause/resume by reason, token-bucket rate limits,
//! key-ordered concurrency, safe commits with an offset map in the commit
//! metadata, in-place retries with backoff and jitter, retry topics, a DLQ
//! with Spring-compatible provenance headers and a DLQ breaker.
//!
//! ```no_run
//! use std::time::Duration;
//! use kafka_ingest::{Consumer, Producer};
//! use kafka_ingest_pipeline::*;
//!
//! # async fn handle(_: Record) -> HandlerResult { Ok(()) }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let consumer = Consumer::builder().bootstrap("127.0.0.1:9092").set("group.id", "billing");
//! let producer = Producer::builder().bootstrap("127.0.0.1:9092").build().await?;
//! let pipeline = Pipeline::builder(consumer, producer)
//!     .topics(["orders"])
//!     .ordering(Ordering::Key)            // Key | Partition | Unordered
//!     .max_in_flight(16)                  // handlers running at once
//!     .rate_limit(Rate::per_second(5_000.0))
//!     .buffer(BufferLimits { max_bytes: 64 << 20, high: 0.8, low: 0.5 })
//!     .retry(Retry::exponential(Duration::from_millis(100), Duration::from_secs(30))
//!         .jitter(Jitter::Full)
//!         .max_attempts(3))
//!     .retry_topics(["1s", "10s"])        // tiers; then the DLQ
//!     .dead_letter_topic("{topic}-dlt")
//!     .build()?;
//! let control = pipeline.handle();        // shutdown(), metrics(), pause(), ...
//! let metrics = pipeline.run(|rec| async move { handle(rec).await }).await?;
//! # Ok(()) }
//! ```
//!
//! A handler returns `Ok(())`, a retryable or a fatal [`HandlerError`]
//! (map your errors with [`ResultExt`]). Schema registry decoding errors
//! convert to fatal ones: straight to the DLQ, never retried.

#![warn(missing_docs, missing_debug_implementations)]

mod backoff;
mod breaker;
mod config;
mod core;
mod error;
pub mod headers;
mod lanes;
mod metrics;
pub mod offset_map;
mod pause;
mod rate;
mod record;
mod run;
pub mod tracker;

pub use backoff::{Jitter, Retry};
pub use breaker::DlqLimit;
pub use config::{
    parse_duration, BufferLimits, InvalidMetadata, Ordering, PartitionLimits, PipelineBuilder,
};
pub use error::{Error, FailureKind, HandlerError, HandlerResult, Result, ResultExt};
pub use metrics::{Metrics, TierMetrics};
pub use offset_map::{MapError, OffsetMap};
pub use pause::{Reason, Reasons};
pub use rate::{Limited, Limiter, Rate, RateLimits};
pub use record::{At, Event, Record};
pub use run::{Pipeline, PipelineHandle};
