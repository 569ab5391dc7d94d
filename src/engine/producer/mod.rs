//! Producer engine: the accumulator plus a sender task that drains ready
//! batches into one ProduceRequest per broker (the per-broker sink).
//!
//! ```text
//! send() ──append──▶ Accumulator ◀──drain── sender task ──▶ sink::produce (per broker)
//!    ▲ waits on buffer memory (backpressure)        │           │
//!    └───────────── Reply callbacks ◀───────────────┴─ responses┘
//! ```

pub(crate) mod accumulator;
mod sink;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::backoff::Backoff;
use crate::cluster::wire::OutRecord;
use crate::cluster::Compression;
use crate::cluster::{msg, versions, Cluster, ClusterError, ErrorCode, Topics};
use crate::engine::tasks::Tasks;
use crate::metrics::{ProducerMetrics, ProducerStats};
use crate::retry::{retry, RetryAction, RetryPolicy};
use crate::types::TopicPartition;
pub(crate) use accumulator::{record_size, Delivered, Handler, Reply};
use accumulator::{Accumulator, Batch, Limits, Taken};

/// Engine settings derived from the producer config.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    /// -1 (all), 0 or 1.
    pub acks: i16,
    pub idempotent: bool,
    pub linger: Duration,
    pub batch_size: usize,
    pub buffer_memory: usize,
    pub max_in_flight: usize,
    pub delivery_timeout: Duration,
    pub retries: u32,
    pub compression: Compression,
    pub max_request_size: usize,
}

#[derive(Debug, Clone, Copy)]
struct ProducerId {
    id: i64,
    epoch: i16,
}

pub(crate) struct ProducerEngine {
    pub(crate) cluster: Arc<Cluster>,
    cfg: EngineConfig,
    acc: Mutex<Accumulator>,
    memory: Arc<Semaphore>,
    wake: Arc<Notify>,
    progress: Notify,
    flushing: AtomicUsize,
    closed: AtomicBool,
    pid: Mutex<Option<ProducerId>>,
    needs_bump: AtomicBool,
    broker_in_flight: Mutex<HashMap<i32, usize>>,
    sinks: Mutex<HashMap<i32, tokio::sync::mpsc::Sender<Vec<Batch>>>>,
    pub(crate) tasks: Tasks,
    pub(crate) stats: ProducerStats,
}

impl ProducerEngine {
    /// Starts the sender; tagged records report to `handler`.
    pub(crate) fn start(
        cluster: Arc<Cluster>,
        cfg: EngineConfig,
        handler: Option<Handler>,
    ) -> Arc<ProducerEngine> {
        let limits = Limits {
            batch_size: cfg.batch_size,
            linger: cfg.linger,
            max_in_flight: cfg.max_in_flight,
            idempotent: cfg.idempotent,
            compressed: cfg.compression != Compression::None,
            max_batch_bytes: cfg.max_request_size,
        };
        let engine = Arc::new(ProducerEngine {
            cluster,
            memory: Arc::new(Semaphore::new(cfg.buffer_memory)),
            acc: Mutex::new(Accumulator::new(limits).with_handler(handler)),
            cfg,
            wake: Arc::new(Notify::new()),
            progress: Notify::new(),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            pid: Mutex::new(None),
            needs_bump: AtomicBool::new(false),
            broker_in_flight: Mutex::new(HashMap::new()),
            sinks: Mutex::new(HashMap::new()),
            tasks: Tasks::default(),
            stats: ProducerStats::default(),
        });
        engine
            .tasks
            .spawn("producer sender", sender_loop(Arc::downgrade(&engine)));
        engine
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub(crate) fn metrics(&self) -> ProducerMetrics {
        let s = &self.stats;
        let (in_flight_requests, request_latency) = self.cluster.request_metrics();
        let total = self.cfg.buffer_memory as u64;
        let free = if self.memory.is_closed() {
            total
        } else {
            self.memory.available_permits() as u64
        };
        ProducerMetrics {
            records_sent: s.records_sent.load(Ordering::Relaxed),
            bytes_sent: s.bytes_sent.load(Ordering::Relaxed),
            batches_sent: s.batches_sent.load(Ordering::Relaxed),
            records_failed: s.records_failed.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            errors: s.errors.snapshot(),
            buffer_bytes_used: total.saturating_sub(free),
            buffer_bytes_total: total,
            waiting_senders: s.waiting_senders.load(Ordering::Relaxed),
            in_flight_requests,
            request_latency,
            throttle: self.cluster.throttle_metrics(),
        }
    }

    /// Counts a batch's final outcome (before its callbacks run).
    fn count(&self, batch: &Batch, result: &Result<(i64, i64), ClusterError>) {
        let n = batch.len() as u64;
        let s = &self.stats;
        match result {
            Ok(_) => {
                let bytes = batch.body.payload();
                s.records_sent.fetch_add(n, Ordering::Relaxed);
                s.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                s.batches_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                s.records_failed.fetch_add(n, Ordering::Relaxed);
                s.errors.add(e.kind(), n);
            }
        }
    }

    pub(super) fn acc(&self) -> MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A metadata snapshot that knows `topic`, waiting up to `max_block`.
    /// The hot path (fresh cache) allocates nothing and reads no clock.
    pub(crate) async fn partition_meta(
        &self,
        topic: &str,
        max_block: Duration,
    ) -> Result<Arc<crate::cluster::Metadata>, ClusterError> {
        match self.cached_meta(topic) {
            Some(m) => Ok(m),
            // Boxed: the wait is rare, and inline it would make every
            // send's future (moved once per record) several times larger.
            None => Box::pin(self.wait_for_meta(topic, max_block)).await,
        }
    }

    /// The cached metadata if it routes `topic`. A known topic is routed
    /// from the cache even when it is stale: the sender refreshes it on its
    /// next drain (as Java's sender does), so a slow broker never blocks send().
    pub(crate) fn cached_meta(&self, topic: &str) -> Option<Arc<crate::cluster::Metadata>> {
        let cached = self.cluster.cached();
        routable(&cached, topic)?;
        Some(cached)
    }

    /// The cached metadata, whatever topics it knows, without counting a
    /// reference (read once per record).
    pub(crate) fn cached(&self) -> arc_swap::Guard<Arc<crate::cluster::Metadata>> {
        self.cluster.peek()
    }

    async fn wait_for_meta(
        &self,
        topic: &str,
        max_block: Duration,
    ) -> Result<Arc<crate::cluster::Metadata>, ClusterError> {
        let names = [topic.to_owned()];
        let c = self.cluster.config();
        let policy = RetryPolicy::within(c.retry_backoff, c.retry_backoff_max, max_block);
        let result = retry(
            policy,
            || async {
                let m = self.cluster.metadata(Topics::Some(&names)).await?;
                match m.topics.get(topic) {
                    Some(t) if !t.partitions.is_empty() => Ok(m),
                    // Auto-creation may still be under way: keep asking.
                    _ => Err(ClusterError::UnknownTopic(topic.to_owned())),
                }
            },
            |e| match e {
                ClusterError::UnknownTopic(_) => RetryAction::RefreshMetadataAndRetry,
                e => e.retry_action(),
            },
            |_, _| self.cluster.invalidate(),
        )
        .await;
        match result {
            Ok(m) => Ok(m),
            Err(crate::retry::Exhausted::Failed(e)) => Err(e),
            Err(crate::retry::Exhausted::GaveUp { last, .. }) => Err(ClusterError::Timeout {
                what: format!("waiting for metadata of topic `{topic}` (max.block.ms)"),
                after: max_block,
                last: Some(Box::new(
                    last.unwrap_or_else(|| ClusterError::UnknownTopic(topic.to_owned())),
                )),
            }),
        }
    }

    /// Appends now if buffer memory is free; otherwise hands the reply back
    /// for [`append`](Self::append) to wait with. Never blocks, reads no
    /// clock unless a batch opens.
    pub(crate) fn try_append(
        &self,
        tp: &TopicPartition,
        record: &OutRecord,
        reply: Reply,
    ) -> Result<Option<Reply>, ClusterError> {
        let permits = self.permits_for(record, reply.footprint())?;
        // Without a timer; the semaphore is fair, so this never overtakes a
        // sender already waiting.
        match Taken::try_take(&self.memory, permits) {
            Some(taken) => {
                self.queue(tp, record, reply, taken)?;
                Ok(None)
            }
            None if self.memory.is_closed() => Err(ClusterError::Closed),
            None => Ok(Some(reply)),
        }
    }

    /// Appends, waiting up to `max_block` for buffer memory (backpressure).
    /// What else the producer keeps for the record until it completes (its
    /// reply) counts against buffer.memory too, so the bound covers what is held.
    pub(crate) async fn append(
        &self,
        tp: TopicPartition,
        record: OutRecord,
        reply: Reply,
        max_block: Duration,
    ) -> Result<(), ClusterError> {
        let permits = self.permits_for(&record, reply.footprint())?;
        let deadline = Instant::now() + max_block;
        let permit = match self.wait_for_memory(permits, deadline, max_block).await {
            Ok(p) => p,
            Err(e) => return Err(e),
        };
        self.queue(&tp, &record, reply, Taken::from_owned(&self.memory, permit))
    }

    /// Buffer memory the record takes (its bytes and what its reply holds),
    /// or why it cannot be queued.
    fn permits_for(&self, record: &OutRecord, held: usize) -> Result<u32, ClusterError> {
        if let Some(e) = self.tasks.fatal() {
            return Err(e);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(ClusterError::Closed);
        }
        let size = record_size(record);
        if size > self.cfg.buffer_memory || size > self.cfg.max_request_size {
            return Err(ClusterError::RecordTooLarge {
                size,
                max: Some(self.cfg.buffer_memory.min(self.cfg.max_request_size)),
            });
        }
        // Capped so a record that fits alone still gets in.
        let permits = size.saturating_add(held).min(self.cfg.buffer_memory);
        Ok(u32::try_from(permits).unwrap_or(u32::MAX))
    }

    fn queue(
        &self,
        tp: &TopicPartition,
        record: &OutRecord,
        reply: Reply,
        permit: Taken<'_>,
    ) -> Result<(), ClusterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ClusterError::Closed);
        }
        let (was_empty, full) = self.acc().append(tp, record, reply, permit, Instant::now);
        // The sender sleeps until the linger deadline; wake it for new or full batches.
        if was_empty || full {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn wait_for_memory(
        &self,
        permits: u32,
        deadline: Instant,
        max_block: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ClusterError> {
        // Counted while it waits (backpressure); the guard makes it cancel-safe.
        let _waiting = Waiting::new(&self.stats.waiting_senders);
        match tokio::time::timeout_at(
            deadline.into(),
            self.memory.clone().acquire_many_owned(permits),
        )
        .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ClusterError::Closed),
            Err(_) => Err(ClusterError::Timeout {
                what: format!(
                    "waiting for buffer memory (buffer.memory={} bytes is full; max.block.ms)",
                    self.cfg.buffer_memory
                ),
                after: max_block,
                last: None,
            }),
        }
    }

    /// Waits until every record appended before this call is finished and
    /// its callback has run. `Ok(false)` if `deadline` passed first; the
    /// fatal error if a background task failed.
    pub(crate) async fn flush(&self, deadline: Option<Instant>) -> Result<bool, ClusterError> {
        let mark = self.acc().next_id();
        self.flushing.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        let done = loop {
            let progressed = self.progress.notified();
            let failed = self.tasks.failed.notified();
            if let Some(e) = self.tasks.fatal() {
                break Err(e);
            }
            if !self.acc().has_incomplete_before(mark) {
                break Ok(true);
            }
            let wait = async {
                tokio::select! {
                    _ = progressed => {}
                    _ = failed => {}
                }
            };
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d.into(), wait).await.is_err() {
                        break Ok(!self.acc().has_incomplete_before(mark));
                    }
                }
                None => wait.await,
            }
        };
        self.flushing.fetch_sub(1, Ordering::AcqRel);
        done
    }

    /// Stops accepting records, sends what is buffered until `deadline`, then
    /// fails the rest and stops the background tasks. Returns how many
    /// records were not delivered.
    pub(crate) async fn close(&self, deadline: Instant) -> usize {
        self.closed.store(true, Ordering::Release);
        let _ = self.flush(Some(deadline)).await;
        let left = self.acc().drain_all();
        let undelivered: usize = left.iter().map(|b| b.len()).sum();
        self.fail_all(left, ClusterError::Closed);
        self.memory.close();
        self.wake.notify_one();
        self.progress.notify_waiters();
        // Sinks end once their queues close; the sender once it sees `closed`.
        self.sinks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let left = deadline.saturating_duration_since(Instant::now());
        self.tasks.join(left.max(Duration::from_secs(1))).await;
        undelivered
    }

    /// Completes batches with `err` (callbacks first, then flush bookkeeping).
    fn fail_all(&self, batches: Vec<Batch>, err: ClusterError) {
        for b in batches {
            let id = b.id;
            let err = Err(err.clone());
            self.count(&b, &err);
            b.complete(err);
            self.acc().done(id);
        }
        self.progress.notify_waiters();
    }

    /// Fails every buffered (not yet sent) record with `err`.
    fn fail_buffered(&self, err: &ClusterError) {
        let left = self.acc().drain_all();
        self.fail_all(left, err.clone());
    }

    fn producer_id(&self) -> Option<ProducerId> {
        *self.pid.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The producer id and epoch in use, once the broker assigned them.
    pub(crate) fn id_and_epoch(&self) -> Option<(i64, i16)> {
        self.producer_id().map(|p| (p.id, p.epoch))
    }

    fn retry_at(&self, attempts: u32) -> Instant {
        let c = self.cluster.config();
        let mut b = Backoff::new(c.retry_backoff, c.retry_backoff_max);
        let mut d = Duration::ZERO;
        for _ in 0..=attempts.min(16) {
            d = b.next_delay();
        }
        Instant::now() + d
    }

    /// Finishes a batch for good: callbacks run before flushers are told,
    /// so every callback has run when `flush()` returns (as in Java).
    fn finish(&self, batch: Batch, result: Result<(i64, i64), ClusterError>) {
        if result.is_err() && batch.sequence.is_some() {
            // The broker may or may not have this sequence now: start over
            // under a new epoch (KIP-360) before sending more.
            self.needs_bump.store(true, Ordering::Release);
        }
        let id = batch.id;
        self.acc().settle(&batch, result.is_ok());
        self.count(&batch, &result);
        batch.complete(result);
        self.acc().done(id);
        self.progress.notify_waiters();
        self.wake.notify_one();
    }

    /// A batch the broker refused as too large: split it and send the halves
    /// (only a single record that is too large fails).
    fn split_or_fail(&self, batch: Batch, err: ClusterError) {
        if batch.sequence.is_some() {
            // Its sequences never reached the log: renumber under a new epoch.
            self.needs_bump.store(true, Ordering::Release);
        }
        match batch.split() {
            Ok((a, b)) => {
                tracing::debug!(tp = %a.tp, records = a.len() + b.len(), "batch too large; splitting");
                self.acc().requeue_split(a, b);
                self.wake.notify_one();
            }
            Err(single) => {
                let size = single.bytes;
                tracing::debug!(tp = %single.tp, size, error = %err, "record too large for the topic");
                self.finish(
                    single,
                    Err(ClusterError::RecordTooLarge { size, max: None }),
                );
            }
        }
    }

    /// Retries a batch, or fails it when out of retries or time.
    fn retry_or_fail(&self, batch: Batch, err: ClusterError) {
        let expired = batch.created.elapsed() >= self.cfg.delivery_timeout;
        if expired || batch.attempts >= self.cfg.retries {
            let err = if expired {
                self.delivery_timeout(&batch, Some(err))
            } else {
                err
            };
            return self.finish(batch, Err(err));
        }
        let at = self.retry_at(batch.attempts);
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        self.stats.errors.add(err.kind(), 1);
        tracing::debug!(tp = %batch.tp, attempt = batch.attempts + 1, error = %err, "retrying batch");
        self.acc().requeue(batch, err, at);
        self.wake.notify_one();
    }

    fn delivery_timeout(&self, batch: &Batch, last: Option<ClusterError>) -> ClusterError {
        ClusterError::DeliveryTimeout {
            what: format!(
                "delivering {} record(s) to {} (delivery.timeout.ms)",
                batch.len(),
                batch.tp
            ),
            after: self.cfg.delivery_timeout,
            last: last.or_else(|| batch.last_error.clone()).map(Box::new),
        }
    }
}

/// Holds one count of a gauge while alive.
struct Waiting<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Waiting<'a> {
    fn new(g: &'a std::sync::atomic::AtomicU64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Waiting(g)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `topic`'s metadata if it has partitions to route to.
pub(crate) fn routable<'a>(
    meta: &'a crate::cluster::Metadata,
    topic: &str,
) -> Option<&'a crate::cluster::TopicMeta> {
    meta.topics.get(topic).filter(|t| !t.partitions.is_empty())
}

async fn sender_loop(engine: std::sync::Weak<ProducerEngine>) -> Result<(), ClusterError> {
    let mut refresh_after = Instant::now();
    loop {
        let Some(e) = engine.upgrade() else {
            return Ok(());
        };
        if e.closed.load(Ordering::Acquire) && e.acc().is_empty() {
            return Ok(());
        }
        if e.cfg.idempotent && !ensure_producer_id(&e).await {
            let wake = e.wake.clone();
            drop(e);
            let _ = tokio::time::timeout(Duration::from_millis(100), wake.notified()).await;
            continue;
        }
        // Expire batches that waited past delivery.timeout.ms.
        let expired = e.acc().expire(Instant::now(), e.cfg.delivery_timeout);
        for b in expired {
            if b.sequence.is_some() {
                e.needs_bump.store(true, Ordering::Release);
            }
            let err = Err(e.delivery_timeout(&b, None));
            let id = b.id;
            e.count(&b, &err);
            b.complete(err);
            e.acc().done(id);
            e.progress.notify_waiters();
        }
        let next_wake = drain(&e, &mut refresh_after);
        let wake = e.wake.clone();
        // Don't keep the engine alive while idle: dropping every handle ends the loop.
        drop(e);
        let sleep = next_wake.map_or(Duration::from_millis(250), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let _ = tokio::time::timeout(sleep.min(Duration::from_millis(250)), wake.notified()).await;
    }
}

/// Takes ready batches, groups them by leader and starts one request per
/// broker with room in flight. Returns when to look again.
fn drain(e: &Arc<ProducerEngine>, refresh_after: &mut Instant) -> Option<Instant> {
    let now = Instant::now();
    let flush_all = e.flushing.load(Ordering::Acquire) > 0 || e.closed.load(Ordering::Acquire);
    let meta = e.cluster.cached();
    let pid = e.producer_id().filter(|_| e.cfg.idempotent);
    let mut acc = e.acc();
    let (ready, mut wake) = acc.ready(now, flush_all);
    let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    let mut missing_leader = false;
    for tp in ready {
        match crate::cluster::leader_of(&meta, &tp.topic, tp.partition) {
            Ok(l) => by_leader.entry(l).or_default().push(tp),
            Err(_) => missing_leader = true,
        }
    }
    let mut in_flight = e.broker_in_flight.lock().unwrap_or_else(|p| p.into_inner());
    let mut requests = Vec::new();
    for (leader, tps) in by_leader {
        let n = in_flight.entry(leader).or_default();
        if *n >= e.cfg.max_in_flight {
            continue;
        }
        let mut batches = Vec::new();
        let mut size = 0;
        for tp in tps {
            if !batches.is_empty() && size >= e.cfg.max_request_size {
                break;
            }
            if let Some(b) = acc.take(&tp, pid.map(|p| (p.id, p.epoch))) {
                size += b.wire_estimate();
                batches.push(b);
            }
        }
        if !batches.is_empty() {
            *n += 1;
            requests.push((leader, batches));
        }
    }
    drop(in_flight);
    drop(acc);
    let mut sinks = e.sinks.lock().unwrap_or_else(|p| p.into_inner());
    for (leader, batches) in requests {
        let tx = sinks
            .entry(leader)
            .or_insert_with(|| sink::spawn(e, leader));
        // Capacity equals max in flight, which `broker_in_flight` enforces.
        if let Err(err) = tx.try_send(batches) {
            let batches = match err {
                tokio::sync::mpsc::error::TrySendError::Full(b)
                | tokio::sync::mpsc::error::TrySendError::Closed(b) => b,
            };
            sinks.remove(&leader);
            if let Some(n) = e
                .broker_in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&leader)
            {
                *n = n.saturating_sub(1);
            }
            for b in batches {
                e.retry_or_fail(b, ClusterError::Closed);
            }
        }
    }
    drop(sinks);
    // Leaderless partitions, or leadership known to have moved (NOT_LEADER
    // invalidates the cache): refresh, at most once per retry.backoff.
    if missing_leader || e.cluster.is_stale(&meta) {
        if now >= *refresh_after {
            *refresh_after = now + e.cluster.config().retry_backoff;
            let e2 = e.clone();
            e.tasks.spawn("producer metadata refresh", async move {
                if let Err(err) = e2.cluster.refresh(Topics::All).await {
                    // A refused login will not heal: fail what waits for a leader
                    // (later sends get the error from their own metadata lookup).
                    if err.is_auth() {
                        e2.fail_buffered(&err);
                    }
                }
                e2.wake.notify_one();
                Ok(())
            });
        }
        let t = *refresh_after;
        wake = Some(wake.map_or(t, |w| w.min(t)));
    }
    wake
}

/// Gets a producer id (or bumps the epoch) when needed. Returns false if
/// producing must wait.
async fn ensure_producer_id(e: &Arc<ProducerEngine>) -> bool {
    let current = e.producer_id();
    let bump = e.needs_bump.load(Ordering::Acquire);
    if current.is_some() && !bump {
        return true;
    }
    if bump && e.acc().in_flight() > 0 {
        return false; // bump only once nothing is in flight
    }
    match init_producer_id(e, current.filter(|_| bump)).await {
        Ok(pid) => {
            tracing::debug!(producer_id = pid.id, epoch = pid.epoch, "producer id");
            *e.pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(pid);
            if bump {
                e.acc().reset_sequences();
                e.needs_bump.store(false, Ordering::Release);
            }
            true
        }
        Err(err) if err.is_retriable() => {
            tracing::debug!(error = %err, "InitProducerId failed; will retry");
            false
        }
        Err(err) => {
            tracing::warn!(error = %err, "InitProducerId failed for good");
            e.tasks.set_fatal(err.clone());
            e.fail_buffered(&err);
            false
        }
    }
}

async fn init_producer_id(
    e: &ProducerEngine,
    bump: Option<ProducerId>,
) -> Result<ProducerId, ClusterError> {
    let conn = e.cluster.any_broker().await?;
    let version = conn.version(versions::INIT_PRODUCER_ID)?;
    // KIP-360: v3+ can bump the epoch of an existing id instead of a new id.
    let (id, epoch) = match bump {
        Some(p) if version >= 3 => (p.id, p.epoch),
        _ => (-1, -1),
    };
    let req = msg::InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(msg::ProducerId(id))
        .with_producer_epoch(epoch);
    let (resp, _) = conn.send(&req, versions::INIT_PRODUCER_ID).await?;
    if let Some(code) = ErrorCode::check(resp.error_code) {
        return Err(ClusterError::broker("InitProducerId", code, None));
    }
    Ok(ProducerId {
        id: resp.producer_id.0,
        epoch: resp.producer_epoch,
    })
}
