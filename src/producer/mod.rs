//! The producer: batching, idempotent sequencing, compression, backpressure.
//!
//! ```no_run
//! # async fn demo() -> kafka_ingest::Result<()> {
//! use kafka_ingest::{Producer, ProducerRecord};
//! let producer = Producer::builder().bootstrap("127.0.0.1:9092").set("linger.ms", "10").build().await?;
//! let delivery = producer.send(ProducerRecord::new("events").key("k").value("v")).await?;
//! let meta = delivery.await?; // acknowledged by every in-sync replica
//! println!("{}-{}@{}", meta.topic, meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

mod config;
mod partitioner;
mod send;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

pub use config::{Acks, ProducerConfig};
pub use partitioner::{murmur2, partition_for_key, DefaultPartitioner, Partitioner};
pub use send::Enqueue;

use crate::client::cluster_config;
use crate::config::{property_setters, Pending, Settable};
use crate::engine::producer::{EngineConfig, ProducerEngine};
use crate::engine::Cluster;
use crate::error::{Error, Result};

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic name.
    pub topic: String,
    /// Explicit partition; otherwise the partitioner chooses.
    pub partition: Option<i32>,
    /// Key (null when `None`).
    pub key: Option<Bytes>,
    /// Value (null, a tombstone, when `None`).
    pub value: Option<Bytes>,
    /// Headers in order; keys may repeat.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; now when `None`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with null key and value.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared by the records of a batch).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset; -1 with `acks=0` (or an old duplicate the broker no longer maps).
    pub offset: i64,
    /// Create time, or the broker's append time for LogAppendTime topics.
    pub timestamp: i64,
}

/// Resolves once the broker acknowledged (or finally rejected) the record.
/// Dropping it does not cancel the send.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// The producer-wide delivery handler: each record sent with
/// [`Producer::send_tagged`] reports its outcome and its tag here.
pub type DeliveryHandler = dyn Fn(Result<RecordMetadata>, u64) + Send + Sync;

/// What [`Producer::close`] could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReport {
    /// Records failed because the close deadline passed first.
    pub undelivered: usize,
}

struct Inner {
    engine: Arc<ProducerEngine>,
    config: ProducerConfig,
    partitioner: Arc<dyn Partitioner>,
    /// Whether a delivery handler takes tagged records.
    tagged: bool,
}

/// An asynchronous Kafka producer. Cheap to clone; clones share buffers.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    // Seconds and millis apart: `as_millis` divides a u128, per record.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs() as i64 * 1000 + i64::from(d.subsec_millis())
    })
}

impl Producer {
    /// Starts a builder with default settings.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// Creates a producer from a config (validated first).
    pub async fn new(config: ProducerConfig) -> Result<Producer> {
        Self::with_parts(config, None, None).await
    }

    async fn with_parts(
        config: ProducerConfig,
        partitioner: Option<Arc<dyn Partitioner>>,
        handler: Option<Arc<DeliveryHandler>>,
    ) -> Result<Producer> {
        config.validate()?;
        let mut cc = cluster_config(&config.client);
        cc.auto_create_topics = true;
        let cluster = Cluster::new(cc);
        // Fail fast on a bad bootstrap, as Client::connect does.
        cluster
            .retrying("Metadata", || {
                cluster.refresh(crate::engine::Topics::Some(&[]))
            })
            .await?;
        let engine = ProducerEngine::start(
            cluster,
            EngineConfig {
                acks: config.acks.wire(),
                idempotent: config.idempotent(),
                linger: config.linger,
                batch_size: config.batch_size,
                buffer_memory: config.buffer_memory,
                max_in_flight: if config.idempotent() {
                    config.max_in_flight.min(5)
                } else {
                    config.max_in_flight
                },
                delivery_timeout: config.delivery_timeout,
                retries: config.retries,
                compression: config.compression,
                max_request_size: config.max_request_size,
            },
            handler.clone().map(send::handler_to),
        );
        let partitioner =
            partitioner.unwrap_or_else(|| Arc::new(DefaultPartitioner::new(config.batch_size)));
        Ok(Producer {
            inner: Arc::new(Inner {
                engine,
                config,
                partitioner,
                tagged: handler.is_some(),
            }),
        })
    }

    /// The validated config.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    #[cfg(feature = "unstable-internals")]
    pub(crate) fn engine_tasks(&self) -> &crate::engine::tasks::Tasks {
        &self.inner.engine.tasks
    }

    /// Broker throttling (KIP-219) this client has honoured so far
    /// (also in [`metrics`](Self::metrics)).
    pub fn throttle_metrics(&self) -> crate::metrics::ThrottleMetrics {
        self.inner.engine.cluster.throttle_metrics()
    }

    /// A snapshot of this producer's counters and gauges.
    pub fn metrics(&self) -> crate::metrics::ProducerMetrics {
        self.inner.engine.metrics()
    }

    /// Whether this producer runs idempotently.
    pub fn is_idempotent(&self) -> bool {
        self.inner.engine.config().idempotent
    }

    /// The producer id and epoch the broker assigned (InitProducerId), once
    /// an idempotent producer has sent; `None` before that or when not
    /// idempotent. The epoch grows when the producer restarts its sequences.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        self.inner
            .engine
            .id_and_epoch()
            .filter(|_| self.is_idempotent())
    }

    /// Queues a record. Waits (up to `max.block.ms`) while the buffer is
    /// full or the topic's metadata is unknown, then returns a future of the
    /// broker's acknowledgement.
    pub fn send(&self, record: ProducerRecord) -> Enqueue<'_, DeliveryFuture> {
        let (tx, rx) = oneshot::channel();
        let reply = send::reply_to(move |r| {
            let _ = tx.send(r);
        });
        Enqueue::new(self, record, reply, DeliveryFuture { rx })
    }

    /// Queues a record and calls `callback` with its outcome (fire and
    /// forget). When this returns an error the callback is not called: the
    /// error is the record's outcome.
    pub fn send_with_callback<F>(&self, record: ProducerRecord, callback: F) -> Enqueue<'_, ()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        Enqueue::new(self, record, send::reply_to(callback), ())
    }

    /// Queues a record whose outcome goes, with `tag`, to the handler set
    /// with [`ProducerBuilder::delivery_handler`]: like
    /// [`send_with_callback`](Self::send_with_callback) but with nothing
    /// allocated per record (librdkafka's delivery report with an opaque).
    /// Fails with [`Error::InvalidArgument`] if the producer has no handler.
    pub fn send_tagged(&self, record: ProducerRecord, tag: u64) -> Enqueue<'_, ()> {
        if !self.inner.tagged {
            return Enqueue::refused(
                self,
                Error::InvalidArgument {
                    message: "send_tagged needs a producer built with \
                              ProducerBuilder::delivery_handler"
                        .into(),
                },
            );
        }
        Enqueue::new(
            self,
            record,
            crate::engine::producer::Reply::tagged(tag),
            (),
        )
    }

    /// Sends everything buffered now and waits until every record sent
    /// before the call has its outcome and its callback has run.
    ///
    /// Fails only if a background task of the producer failed (the error
    /// says which); the records' own failures go to their callbacks.
    /// Cancel-safe: dropping the future stops the wait, not the sends.
    pub async fn flush(&self) -> Result<()> {
        self.inner.engine.flush(None).await?;
        Ok(())
    }

    /// Stops accepting records, delivers what is buffered within `timeout`,
    /// fails the rest (each with [`Error::Closed`]), and stops the background
    /// tasks. Every callback has run when it returns.
    pub async fn close(&self, timeout: Duration) -> CloseReport {
        let undelivered = self.inner.engine.close(Instant::now() + timeout).await;
        self.inner.engine.cluster.close();
        CloseReport { undelivered }
    }
}

/// Builds a [`Producer`]; keeps the first config error until `build()`.
#[derive(Default)]
pub struct ProducerBuilder {
    pending: Pending<ProducerConfig>,
    partitioner: Option<Arc<dyn Partitioner>>,
    handler: Option<Arc<DeliveryHandler>>,
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("pending", &self.pending)
            .field("partitioner", &self.partitioner)
            .field("delivery_handler", &self.handler.is_some())
            .finish()
    }
}

impl ProducerBuilder {
    property_setters!();

    /// Replaces the whole config.
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.pending.config = config;
        self
    }

    /// Uses a custom partitioner.
    pub fn partitioner(mut self, p: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(p);
        self
    }

    /// Sets the handler that every record sent with
    /// [`Producer::send_tagged`] reports to, once, with its tag. It runs on
    /// the producer's background task, like callbacks: keep it short.
    pub fn delivery_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(Result<RecordMetadata>, u64) + Send + Sync + 'static,
    {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Validates, connects and starts the sender.
    pub async fn build(self) -> Result<Producer> {
        Producer::with_parts(self.pending.finish()?, self.partitioner, self.handler).await
    }
}

impl Settable for ProducerConfig {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        ProducerConfig::set(self, key, value)
    }
}
