//! Per-partition batch queues. Pure bookkeeping: no IO, no clocks read
//! (callers pass `now`), so every rule here is unit-testable.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cluster::wire::{BatchBody, OutRecord};
use crate::cluster::ClusterError;
use crate::types::{FastMap, TopicPartition};

/// Where one record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Shared by the batch's records: no copy per record.
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
}

/// Called exactly once per queued record with its outcome. If it is dropped
/// uncalled once queued (a background task died, the producer was dropped),
/// it reports [`ClusterError::Closed`], so no record goes unreported. Dropped
/// before it was queued (the send failed or was cancelled), it is not called:
/// the send's own result says what happened.
pub(crate) struct Reply {
    how: How,
    queued: bool,
}

enum How {
    Callback(Option<Callback>),
    /// For the engine-wide [`Handler`]: no allocation per record.
    Tag(u64),
}

type Callback = Box<dyn FnOnce(Result<Delivered, ClusterError>) + Send>;

/// Receives the outcome of every tagged record, with its tag.
pub(crate) type Handler = Arc<dyn Fn(Result<Delivered, ClusterError>, u64) + Send + Sync>;

impl Reply {
    pub(crate) fn new(f: Callback) -> Self {
        Reply {
            how: How::Callback(Some(f)),
            queued: false,
        }
    }

    /// A reply through the engine's handler.
    pub(crate) fn tagged(tag: u64) -> Self {
        Reply {
            how: How::Tag(tag),
            queued: false,
        }
    }

    /// Heap bytes the reply holds while its record waits: the boxed
    /// callback (plus the allocator's header) and its slot in the batch.
    pub(crate) fn footprint(&self) -> usize {
        let boxed = match &self.how {
            How::Callback(f) => f.as_ref().map_or(0, |f| std::mem::size_of_val(&**f)) + 16,
            How::Tag(_) => 0,
        };
        boxed + std::mem::size_of::<Reply>()
    }

    pub(crate) fn call(mut self, r: Result<Delivered, ClusterError>, handler: Option<&Handler>) {
        match &mut self.how {
            How::Callback(f) => {
                if let Some(f) = f.take() {
                    f(r);
                }
            }
            How::Tag(tag) => {
                if let Some(h) = handler {
                    h(r, *tag);
                }
            }
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let How::Callback(f) = &mut self.how {
            if let Some(f) = f.take().filter(|_| self.queued) {
                f(Err(ClusterError::Closed));
            }
        }
    }
}

/// Most reply slots reserved when a batch opens.
const MAX_EXPECTED: usize = 4096;

/// A batch's replies in record order, and the handler its tagged ones
/// report to (also when the batch is dropped uncompleted).
pub(crate) struct Replies {
    list: Vec<Reply>,
    handler: Option<Handler>,
}

impl Replies {
    /// Room for `expected` replies up front: a batch's list grown by
    /// doubling copied itself ~10 times and left up to half its slots idle.
    fn new(first: Reply, handler: Option<Handler>, expected: usize) -> Self {
        let mut list = Vec::with_capacity(expected.clamp(1, MAX_EXPECTED));
        list.push(first);
        Replies { list, handler }
    }

    fn push(&mut self, r: Reply) {
        self.list.push(r);
    }

    fn split_off(&mut self, at: usize) -> Replies {
        Replies {
            list: self.list.split_off(at),
            handler: self.handler.clone(),
        }
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        for r in self.list.drain(..) {
            if r.queued {
                r.call(Err(ClusterError::Closed), self.handler.as_ref());
            }
        }
    }
}

/// Buffer memory taken for one record and not yet in a batch; dropped
/// unused, it goes back. Borrowing the semaphore (no `Arc` count per record)
/// is what makes it cheaper than an owned permit on the send path.
pub(crate) struct Taken<'a> {
    sem: &'a Arc<Semaphore>,
    n: usize,
}

impl<'a> Taken<'a> {
    /// `n` bytes now, or `None` if the buffer lacks them.
    pub(crate) fn try_take(sem: &'a Arc<Semaphore>, n: u32) -> Option<Self> {
        let p = sem.try_acquire_many(n).ok()?;
        p.forget();
        Some(Taken { sem, n: n as usize })
    }

    /// What a wait for memory obtained.
    pub(crate) fn from_owned(sem: &'a Arc<Semaphore>, p: OwnedSemaphorePermit) -> Self {
        let n = p.num_permits();
        p.forget();
        Taken { sem, n }
    }

    fn into_count(self) -> usize {
        let n = self.n;
        std::mem::forget(self);
        n
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(self.n);
    }
}

/// Buffer memory a batch holds until it is dropped.
pub(crate) struct Held {
    sem: Arc<Semaphore>,
    n: usize,
}

impl Held {
    fn new(t: Taken<'_>) -> Self {
        Held {
            sem: t.sem.clone(),
            n: t.into_count(),
        }
    }

    fn merge(&mut self, t: Taken<'_>) {
        self.n += t.into_count();
    }

    /// Gives back `n` bytes (at most all) the batch no longer holds.
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.n);
        self.n -= n;
        self.sem.add_permits(n);
    }

    /// Moves `n` bytes (at most all) into a new holding.
    fn split(&mut self, n: usize) -> Held {
        let n = n.min(self.n);
        self.n -= n;
        Held {
            sem: self.sem.clone(),
            n,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.sem.add_permits(self.n);
    }
}

/// Producer id, epoch and first sequence of a batch, fixed at first send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sequenced {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

pub(crate) struct Batch {
    /// Creation order; split batches keep their parent's id.
    pub id: u64,
    /// Index of the first record within the batch `id` was created as, so
    /// split halves keep their place in the partition's order.
    pub first_index: u32,
    pub tp: TopicPartition,
    /// Records encoded as they were appended (no second pass at send time).
    pub body: BatchBody,
    pub replies: Replies,
    pub bytes: usize,
    /// Record bytes (before compression) the batch takes before it is full:
    /// batch.size over the topic's estimated compression ratio.
    pub limit: usize,
    /// Wire bytes expected per record byte, fixed when the batch opened:
    /// the topic's estimated ratio with Java's margin (1 uncompressed).
    pub ratio: f32,
    pub created: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    pub sequence: Option<Sequenced>,
    pub last_error: Option<ClusterError>,
    /// Buffer memory held until the batch is dropped.
    pub _permit: Option<Held>,
}

impl Batch {
    /// Completes every record, consuming the batch (and freeing its memory).
    pub(crate) fn complete(mut self, result: Result<(i64, i64), ClusterError>) {
        let replies = std::mem::take(&mut self.replies.list);
        let handler = self.replies.handler.as_ref();
        let stamps = self.body.timestamps();
        let topic: std::sync::Arc<str> = self.tp.topic.as_str().into();
        for (i, (reply, created)) in replies.into_iter().zip(stamps).enumerate() {
            let outcome = match &result {
                Ok((base, append_time)) => Ok(Delivered {
                    topic: topic.clone(),
                    partition: self.tp.partition,
                    offset: if *base >= 0 { base + i as i64 } else { -1 },
                    timestamp: if *append_time >= 0 {
                        *append_time
                    } else {
                        created
                    },
                }),
                Err(e) => Err(e.clone()),
            };
            reply.call(outcome, handler);
        }
    }

    /// Splits a batch the broker refused as too large into two halves that
    /// keep the order (MESSAGE_TOO_LARGE; as Java does). `Err` for a single
    /// record, which cannot be split. A batch sent compressed is unpacked
    /// first: for that moment it holds more than its buffer memory counts.
    pub(crate) fn split(mut self) -> Result<(Batch, Batch), Batch> {
        let n = self.body.len();
        if n < 2 {
            return Err(self);
        }
        let mid = n / 2;
        let Ok(body) = self.body.split_off(mid) else {
            return Err(self);
        };
        let replies = self.replies.split_off(mid);
        // The estimate moves with the records, in proportion to their encoded size.
        let total = (self.body.bytes() + body.bytes()).max(1);
        let bytes = self.bytes * body.bytes() / total;
        let permit = self._permit.as_mut().map(|p| p.split(bytes));
        self.bytes = self.bytes.saturating_sub(bytes);
        self.sequence = None;
        let second = Batch {
            id: self.id,
            first_index: self.first_index + mid as u32,
            tp: self.tp.clone(),
            body,
            replies,
            bytes,
            limit: self.limit,
            ratio: self.ratio,
            created: self.created,
            attempts: self.attempts,
            retry_at: self.retry_at,
            sequence: None,
            last_error: self.last_error.clone(),
            _permit: permit,
        };
        Ok((self, second))
    }

    /// Records in the batch.
    pub(crate) fn len(&self) -> usize {
        self.body.len()
    }

    /// No room for another record the size of its average one: sent now
    /// rather than after linger.ms, as the next record would not fit anyway
    /// (and with the sticky partitioner, none comes: it moved on).
    fn is_full(&self) -> bool {
        // bytes + bytes / n > limit, without a division on the append path.
        let n = self.len().max(1);
        self.bytes.saturating_mul(n + 1) > self.limit.saturating_mul(n)
    }

    /// Bytes the batch will likely take on the wire, once compressed.
    pub(crate) fn wire_estimate(&self) -> usize {
        (self.bytes as f32 * self.ratio) as usize
    }

    fn order(&self) -> (u64, u32) {
        (self.id, self.first_index)
    }

    pub(crate) fn end_sequence(&self) -> Option<i32> {
        self.sequence
            .map(|s| s.base_sequence.wrapping_add(self.len() as i32 - 1))
    }
}

#[derive(Default)]
pub(crate) struct PartitionQueue {
    /// Batches not in flight, oldest (lowest sequence) first.
    pub batches: VecDeque<Batch>,
    pub in_flight: usize,
    pub next_sequence: i32,
    /// Last sequence the broker acknowledged, or -1.
    pub last_acked: i32,
    /// After a failure, send one batch at a time until the retried ones are
    /// through, so sequences reach the broker in order.
    pub retrying: bool,
    /// Whether the last batch taken held at least a chunk of records.
    pub busy: bool,
    /// Records in the last batch taken.
    pub last_len: usize,
}

/// Limits the accumulator enforces.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub batch_size: usize,
    pub linger: Duration,
    pub max_in_flight: usize,
    pub idempotent: bool,
    /// Whether batches are compressed: then batch.size counts the estimated
    /// compressed bytes, as in Java's producer.
    pub compressed: bool,
    /// Record bytes one batch holds at most however well it compresses
    /// (max.request.size): they wait uncompressed until sent.
    pub max_batch_bytes: usize,
}

/// Largest piece a compressed batch's records are kept in: the last, partly
/// filled one of each batch is memory buffer.memory does not count.
const CHUNK: usize = 16 * 1024;

impl Limits {
    /// Uncompressed, a batch is one batch.size buffer; compressed, it may
    /// hold many times that, in small chunks.
    fn chunk(&self) -> usize {
        match self.compressed {
            true => self.batch_size.min(CHUNK),
            false => self.batch_size,
        }
    }
}

/// Java's margin over the estimated compressed size.
const ESTIMATE_MARGIN: f32 = 1.05;
/// Java's steps for the per-topic estimate: it worsens fast, improves slowly.
const RATIO_WORSE_STEP: f32 = 0.05;
const RATIO_BETTER_STEP: f32 = 0.005;

pub(crate) struct Accumulator {
    pub limits: Limits,
    pub parts: FastMap<TopicPartition, PartitionQueue>,
    next_id: u64,
    /// Unfinished batch ids, with how many pieces (after splits) are left.
    incomplete: BTreeMap<u64, u32>,
    /// Estimated compressed/uncompressed size per topic (absent: 1.0).
    ratios: FastMap<String, f32>,
    /// Where tagged records report (cloned once per batch).
    handler: Option<Handler>,
}

/// Wire bytes expected per record byte for a batch of `topic` opened now,
/// and the record bytes it may hold.
fn batch_limit(l: &Limits, ratios: &FastMap<String, f32>, topic: &str) -> (f32, usize) {
    if !l.compressed {
        return (1.0, l.batch_size);
    }
    let ratio = ratios.get(topic).copied().unwrap_or(1.0) * ESTIMATE_MARGIN;
    let fits = l.batch_size.saturating_sub(BatchBody::HEADER_BYTES) as f32 / ratio;
    let most = l.max_batch_bytes.max(l.batch_size);
    (ratio, (fits as usize).clamp(1, most))
}

/// Per-record size estimate used for batching and buffer accounting.
pub(crate) fn record_size(r: &OutRecord) -> usize {
    let h: usize = r
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 4)
        .sum();
    r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + h + 21
}

impl Accumulator {
    pub(crate) fn new(limits: Limits) -> Self {
        Accumulator {
            limits,
            parts: FastMap::default(),
            next_id: 0,
            incomplete: BTreeMap::new(),
            ratios: FastMap::default(),
            handler: None,
        }
    }

    /// Sets where tagged records report.
    pub(crate) fn with_handler(mut self, handler: Option<Handler>) -> Self {
        self.handler = handler;
        self
    }

    /// Learns from a batch just compressed (Java's CompressionRatioEstimator):
    /// a worse ratio is taken at once (at least one step), a better one
    /// approached one small step per batch.
    pub(crate) fn observe_ratio(&mut self, topic: &str, observed: f32) {
        if !observed.is_finite() || observed <= 0.0 {
            return;
        }
        let current = self.ratios.entry_ref(topic).or_insert(1.0);
        *current = if observed > *current {
            observed.max(*current + RATIO_WORSE_STEP)
        } else {
            observed.max(*current - RATIO_BETTER_STEP)
        };
    }

    /// Adds a record to the partition's open batch, or opens a new one.
    /// Returns whether the partition had no batch before and whether this
    /// record made a batch full, which tell the sender to look. Only the
    /// change is reported: a sender held back by max.in.flight is woken by
    /// responses, not by every record that queues behind a full batch.
    pub(crate) fn append(
        &mut self,
        tp: &TopicPartition,
        record: &OutRecord,
        reply: Reply,
        permit: Taken<'_>,
        // Read only when a batch opens: most records join an open one.
        now: impl FnOnce() -> Instant,
    ) -> (bool, bool) {
        let mut reply = reply;
        reply.queued = true;
        let size = record_size(record);
        // One lookup; the key is cloned only when the partition is new.
        let q = self.parts.entry_ref(tp).or_insert_with(|| PartitionQueue {
            last_acked: -1,
            ..Default::default()
        });
        let was_empty = q.batches.is_empty();
        let mut rolled_over = false;
        let mut expected = q.last_len;
        if let Some(b) = q.batches.back_mut() {
            let open = b.attempts == 0 && b.sequence.is_none();
            if open && b.bytes + size <= b.limit && b.body.accepts(record.timestamp) {
                b.body.push(record);
                b.replies.push(reply);
                b.bytes += size;
                if let Some(p) = b._permit.as_mut() {
                    p.merge(permit);
                }
                return (was_empty, b.is_full());
            }
            rolled_over = open;
            expected = b.len();
        }
        let (ratio, limit) = batch_limit(&self.limits, &self.ratios, &tp.topic);
        let id = self.next_id;
        self.next_id += 1;
        self.incomplete.insert(id, 1);
        // A partition that just filled a batch, or whose last batch outgrew a
        // chunk, will likely fill this one: give it a whole chunk at once, so
        // the allocator sees one size. Otherwise grow by doubling, as a full
        // chunk for every quiet partition would hold more memory than
        // buffer.memory counts. Chunks are small so the last, partly filled
        // one of each batch wastes little.
        let chunk = self.limits.chunk();
        let busy = rolled_over || q.busy;
        let capacity = if busy { chunk } else { size.saturating_mul(8) };
        let mut body = BatchBody::chunked(capacity, chunk);
        body.push(record);
        let expected = if busy { expected } else { 1 };
        let replies = Replies::new(reply, self.handler.clone(), expected);
        q.batches.push_back(Batch {
            id,
            first_index: 0,
            tp: tp.clone(),
            body,
            replies,
            bytes: size,
            limit,
            ratio,
            created: now(),
            attempts: 0,
            retry_at: None,
            sequence: None,
            last_error: None,
            _permit: Some(Held::new(permit)),
        });
        (was_empty, rolled_over)
    }

    /// Partitions whose front batch may be sent now, and when to look again.
    pub(crate) fn ready(
        &self,
        now: Instant,
        flush_all: bool,
    ) -> (Vec<TopicPartition>, Option<Instant>) {
        let mut ready = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        for (tp, q) in &self.parts {
            let Some(front) = q.batches.front() else {
                continue;
            };
            if q.retrying || front.attempts > 0 {
                // A retried batch goes alone: outstanding responses first.
                if q.in_flight > 0 {
                    continue;
                }
                match front.retry_at {
                    Some(t) if t > now => at(t),
                    _ => ready.push(tp.clone()),
                }
                continue;
            }
            // Until the broker has acknowledged one batch under this producer
            // epoch it accepts any first sequence, so a retried first batch could
            // land behind a later one: send one at a time until then.
            let max_in_flight = if q.last_acked < 0 {
                1
            } else {
                self.limits.max_in_flight
            };
            if self.limits.idempotent && q.in_flight >= max_in_flight {
                continue;
            }
            let full = q.batches.len() > 1 || front.is_full();
            let lingered = front.created + self.limits.linger;
            if full || flush_all || lingered <= now {
                ready.push(tp.clone());
            } else {
                at(lingered);
            }
        }
        (ready, wake)
    }

    /// Takes the front batch of `tp` for sending, assigning its sequence.
    pub(crate) fn take(
        &mut self,
        tp: &TopicPartition,
        producer: Option<(i64, i16)>,
    ) -> Option<Batch> {
        let q = self.parts.get_mut(tp)?;
        let mut b = q.batches.pop_front()?;
        q.busy = b.bytes >= self.limits.chunk();
        q.last_len = b.len();
        if let (Some((producer_id, epoch)), None) = (producer, b.sequence) {
            b.sequence = Some(Sequenced {
                producer_id,
                epoch,
                base_sequence: q.next_sequence,
            });
            q.next_sequence = wrap_add(q.next_sequence, b.len());
        }
        q.in_flight += 1;
        Some(b)
    }

    /// Puts a failed batch back, in creation order (which is sequence
    /// order), for another attempt.
    pub(crate) fn requeue(&mut self, mut batch: Batch, error: ClusterError, retry_at: Instant) {
        batch.attempts += 1;
        batch.retry_at = Some(retry_at);
        batch.last_error = Some(error);
        let Some(q) = self.parts.get_mut(&batch.tp) else {
            return batch.complete(Err(ClusterError::Closed));
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        q.retrying = true;
        let order = batch.order();
        let pos = q
            .batches
            .iter()
            .position(|b| b.order() > order)
            .unwrap_or(q.batches.len());
        q.batches.insert(pos, batch);
    }

    /// Puts back the two halves of a split batch (no attempt is counted:
    /// the broker wrote nothing of it).
    pub(crate) fn requeue_split(&mut self, first: Batch, second: Batch) {
        if let Some(n) = self.incomplete.get_mut(&first.id) {
            *n += 1;
        }
        let Some(q) = self.parts.get_mut(&first.tp) else {
            first.complete(Err(ClusterError::Closed));
            return second.complete(Err(ClusterError::Closed));
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        q.retrying = true;
        for mut b in [second, first] {
            // Counted as a retry so `ready` sends it one at a time, in order.
            b.attempts = b.attempts.max(1);
            b.retry_at = None;
            let order = b.order();
            let pos = q
                .batches
                .iter()
                .position(|x| x.order() > order)
                .unwrap_or(q.batches.len());
            q.batches.insert(pos, b);
        }
    }

    /// Records that a sent batch's outcome is known (delivered or failed
    /// for good). Its callbacks run next; [`done`](Self::done) follows them.
    pub(crate) fn settle(&mut self, batch: &Batch, acked: bool) {
        if let Some(q) = self.parts.get_mut(&batch.tp) {
            q.in_flight = q.in_flight.saturating_sub(1);
            if acked {
                if let Some(end) = batch.end_sequence() {
                    // Responses may be settled late; never move backwards.
                    if q.last_acked < 0 || seq_after(end, q.last_acked) {
                        q.last_acked = end;
                    }
                }
            }
            if q.retrying && q.batches.iter().all(|b| b.attempts == 0) {
                q.retrying = false;
            }
        }
    }

    /// Marks batch `id` (one piece of it, after splits) finished, once its
    /// callbacks have run: flush waits for this.
    pub(crate) fn done(&mut self, id: u64) {
        if let Some(n) = self.incomplete.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.incomplete.remove(&id);
            }
        }
    }

    /// Removes batches older than `timeout` that are not in flight. The
    /// caller completes them, then calls [`done`](Self::done) for each.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.parts.values_mut() {
            while q
                .batches
                .front()
                .is_some_and(|b| now.duration_since(b.created) >= timeout)
            {
                if let Some(b) = q.batches.pop_front() {
                    out.push(b);
                }
            }
        }
        out
    }

    /// Removes every queued batch (on close or a fatal producer error); the
    /// caller completes them, then calls [`done`](Self::done) for each.
    pub(crate) fn drain_all(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.parts.values_mut() {
            out.extend(q.batches.drain(..));
        }
        out
    }

    /// After a producer epoch bump every partition starts again at sequence 0.
    pub(crate) fn reset_sequences(&mut self) {
        for q in self.parts.values_mut() {
            q.next_sequence = 0;
            q.last_acked = -1;
            // Batches waiting to be resent still go one at a time, in order.
            q.retrying = q.batches.iter().any(|b| b.attempts > 0);
            for b in &mut q.batches {
                b.sequence = None;
            }
        }
    }

    /// Id the next batch will get; batches below it exist now.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Whether any batch with id below `id` is still unfinished.
    pub(crate) fn has_incomplete_before(&self, id: u64) -> bool {
        self.incomplete
            .first_key_value()
            .is_some_and(|(first, _)| *first < id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.incomplete.is_empty()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.parts.values().map(|q| q.in_flight).sum()
    }
}

fn wrap_add(seq: i32, n: usize) -> i32 {
    // Sequences wrap to 0 after i32::MAX (KIP-98).
    ((seq as i64 + n as i64) % (i32::MAX as i64 + 1)) as i32
}

/// Whether sequence `a` comes after `b` in the wrapping sequence space
/// (less than half the space ahead).
fn seq_after(a: i32, b: i32) -> bool {
    const SPACE: i64 = i32::MAX as i64 + 1;
    let d = (a as i64 - b as i64).rem_euclid(SPACE);
    d > 0 && d < SPACE / 2
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;

    fn limits(idempotent: bool) -> Limits {
        Limits {
            batch_size: 100,
            linger: Duration::from_millis(10),
            max_in_flight: 2,
            idempotent,
            compressed: false,
            max_batch_bytes: 1000,
        }
    }

    fn rec(n: usize) -> OutRecord {
        OutRecord {
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(vec![0; n])),
            headers: vec![],
        }
    }

    fn permit() -> Taken<'static> {
        static MEMORY: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
        let sem = MEMORY.get_or_init(|| Arc::new(Semaphore::new(1 << 20)));
        Taken::try_take(sem, 1).unwrap()
    }

    type Log = Arc<Mutex<Vec<Result<Delivered, String>>>>;

    fn reply(log: &Log) -> Reply {
        let log = log.clone();
        Reply::new(Box::new(move |r| {
            log.lock().unwrap().push(r.map_err(|e| e.to_string()))
        }))
    }

    #[test]
    fn batches_fill_then_linger() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(false));
        // 31 bytes each as counted (10 + the 21-byte estimate), batch.size 100.
        acc.append(&tp, &rec(10), reply(&log), permit(), || t0);
        acc.append(&tp, &rec(10), reply(&log), permit(), || t0);
        assert_eq!(acc.parts[&tp].batches.len(), 1);
        let (ready, wake) = acc.ready(t0, false);
        assert!(ready.is_empty(), "room for another: lingers");
        assert_eq!(wake, Some(t0 + Duration::from_millis(10)));
        acc.append(&tp, &rec(10), reply(&log), permit(), || t0);
        assert_eq!(acc.parts[&tp].batches.len(), 1);
        assert_eq!(
            acc.ready(t0, false).0,
            vec![tp.clone()],
            "93 of 100 bytes, no room for another such record: ready at once"
        );
        acc.append(&tp, &rec(60), reply(&log), permit(), || t0);
        assert_eq!(
            acc.parts[&tp].batches.len(),
            2,
            "over batch.size opens a new batch"
        );
        assert_eq!(
            acc.ready(t0, false).0,
            vec![tp.clone()],
            "a full batch is ready at once"
        );
        assert_eq!(acc.ready(t0 + Duration::from_millis(10), false).0.len(), 1);
    }

    #[test]
    fn sequences_are_assigned_in_order_and_kept_across_retries() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(true));
        for _ in 0..3 {
            acc.append(&tp, &rec(90), reply(&log), permit(), || t0);
        }
        let pid = Some((5, 0));
        let a = acc.take(&tp, pid).unwrap();
        assert!(
            acc.ready(t0 + Duration::from_secs(1), false).0.is_empty(),
            "one at a time before the first ack"
        );
        let b = acc.take(&tp, pid).unwrap();
        assert_eq!(a.sequence.unwrap().base_sequence, 0);
        assert_eq!(b.sequence.unwrap().base_sequence, 1);
        assert!(
            acc.ready(t0 + Duration::from_secs(1), false).0.is_empty(),
            "max in flight reached"
        );
        // Both fail; they come back in sequence order ahead of the fresh batch.
        acc.requeue(b, ClusterError::Closed, t0);
        acc.requeue(a, ClusterError::Closed, t0);
        let seqs: Vec<_> = acc.parts[&tp]
            .batches
            .iter()
            .map(|b| b.sequence.map(|s| s.base_sequence))
            .collect();
        assert_eq!(seqs, vec![Some(0), Some(1), None]);
        // Retrying: one at a time.
        let a = acc.take(&tp, pid).unwrap();
        assert!(acc.ready(t0, false).0.is_empty());
        assert_eq!(
            a.sequence.unwrap().base_sequence,
            0,
            "retry keeps its sequence"
        );
        acc.settle(&a, true);
        a.complete(Ok((10, -1)));
        let b = acc.take(&tp, pid).unwrap();
        assert_eq!(b.sequence.unwrap().base_sequence, 1);
        acc.settle(&b, true);
        assert!(!acc.parts[&tp].retrying, "back to pipelining");
        assert_eq!(acc.parts[&tp].last_acked, 1);
        let c = acc.take(&tp, pid).unwrap();
        assert_eq!(c.sequence.unwrap().base_sequence, 2);
        assert_eq!(
            log.lock().unwrap()[0],
            Ok(Delivered {
                topic: "t".into(),
                partition: 0,
                offset: 10,
                timestamp: 1
            })
        );
    }

    #[test]
    fn expiry_and_flush_tracking() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 1);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(false));
        acc.append(&tp, &rec(10), reply(&log), permit(), || t0);
        let mark = acc.next_id();
        assert!(acc.has_incomplete_before(mark));
        let expired = acc.expire(t0 + Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(expired.len(), 1);
        for b in expired {
            let id = b.id;
            b.complete(Err(ClusterError::Closed));
            assert!(acc.has_incomplete_before(mark), "unfinished until done()");
            acc.done(id);
        }
        assert!(!acc.has_incomplete_before(mark));
        assert!(log.lock().unwrap()[0].is_err());
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(wrap_add(i32::MAX, 1), 0);
        assert_eq!(wrap_add(i32::MAX - 1, 3), 1);
        assert!(seq_after(5, 4));
        assert!(!seq_after(4, 5));
        assert!(seq_after(0, i32::MAX), "0 follows i32::MAX");
        assert!(!seq_after(i32::MAX, 0));
    }

    #[test]
    fn last_acked_never_moves_backwards() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(true));
        let pid = Some((5, 0));
        acc.append(&tp, &rec(90), reply(&log), permit(), || t0);
        let a = acc.take(&tp, pid).unwrap();
        acc.settle(&a, true); // first ack: pipelining allowed from now on
        for _ in 0..2 {
            acc.append(&tp, &rec(90), reply(&log), permit(), || t0);
        }
        let b = acc.take(&tp, pid).unwrap();
        let c = acc.take(&tp, pid).unwrap();
        // Settled in the wrong order: c (seq 2) then b (seq 1).
        acc.settle(&c, true);
        acc.settle(&b, true);
        assert_eq!(acc.parts[&tp].last_acked, 2);
    }

    /// What the accumulator really holds per queued record (body chunks,
    /// reply slots, batch structs), against the buffer memory it counts:
    /// the `buffer.memory` bound must come from the accounting, not luck.
    /// Run with `--nocapture` for the per-record figures.
    #[test]
    fn memory_held_per_record_stays_within_what_buffer_memory_counts() {
        let t0 = Instant::now();
        for (size, compressed) in [(100, false), (100, true), (1024, false), (1024, true)] {
            let mut acc = Accumulator::new(Limits {
                batch_size: 64 * 1024,
                compressed,
                max_batch_bytes: 1024 * 1024,
                ..limits(true)
            });
            if compressed {
                acc.observe_ratio("t", 0.2); // limits to ~5x batch.size of records
            }
            let n = 20 * 1024 * 1024 / size; // 20 MiB of payload
            let mut counted = 0;
            for i in 0..n {
                // Sticky: one partition until its batch is full, then the next.
                let tp = TopicPartition::new("t", ((i * size) / (64 * 1024) % 6) as i32);
                let r = rec(size);
                let reply = Reply::tagged(i as u64);
                counted += record_size(&r) + reply.footprint();
                acc.append(&tp, &r, reply, permit(), || t0);
            }
            let (mut bodies, mut replies, mut batches) = (0, 0, 0);
            for q in acc.parts.values() {
                for b in &q.batches {
                    bodies += b.body.heap_bytes();
                    replies += b.replies.list.capacity() * std::mem::size_of::<Reply>();
                    batches += std::mem::size_of::<Batch>();
                }
            }
            let held = bodies + replies + batches;
            let per = |x: usize| x as f64 / n as f64;
            eprintln!(
                "{size} B records, compressed {compressed}: held {:.1} B per record \
                 (bodies {:.1}, reply slots {:.1}, batches {:.2}); counted {:.1}",
                per(held),
                per(bodies),
                per(replies),
                per(batches),
                per(counted)
            );
            // Measured: 2 % (100 B) to 7 % (1 KiB, 16 KiB chunks) over the
            // count: chunk ends a record does not fit, buffers the 21-byte
            // per-record estimate leaves unfilled, the batch structs. Held
            // within 10 %, but for one open chunk per partition.
            let open_chunks = 6 * acc.limits.chunk();
            assert!(
                held <= counted + counted / 10 + open_chunks,
                "{size} B, compressed {compressed}: holds {held} bytes, counts {counted}"
            );
        }
    }

    /// The default partitioner and the accumulator count a record alike, so
    /// an unkeyed visit to a partition fills whole batches, each ready at
    /// once, and leaves no partly filled one behind to wait out linger.ms
    /// (one record in ten did at a steady rate, when the partitioner counted
    /// only keys and values).
    #[test]
    fn the_sticky_partitioner_moves_on_exactly_when_a_batch_is_full() {
        use crate::producer::{DefaultPartitioner, Partitioner};
        let t0 = Instant::now();
        let batch_size = 16 * 1024;
        let mut acc = Accumulator::new(Limits {
            batch_size,
            max_batch_bytes: 1024 * 1024,
            ..limits(false)
        });
        let sticky = DefaultPartitioner::new(batch_size);
        let all = [0, 1, 2, 3, 4, 5];
        let size = record_size(&rec(100));
        let (mut visited, mut sent) = (None, 0);
        for i in 0..20_000u64 {
            let r = rec(100);
            let p = sticky.partition("t", None, record_size(&r), 6, &all);
            // Leaving a partition: what it holds goes out before the next
            // visit (as linger.ms would send it), and must be full.
            if let Some(left) = visited.filter(|v| *v != p) {
                let tp = TopicPartition::new("t", left);
                let ready = acc.ready(t0, false).0;
                assert!(ready.contains(&tp), "a full batch waits for linger.ms");
                while let Some(b) = acc.take(&tp, None) {
                    sent += 1;
                    assert!(
                        b.bytes + size > b.limit,
                        "batch {sent} went out with room: {} of {} bytes",
                        b.bytes,
                        b.limit
                    );
                }
            }
            visited = Some(p);
            acc.append(
                &TopicPartition::new("t", p),
                &r,
                Reply::tagged(i),
                permit(),
                || t0,
            );
        }
        assert!(sent > 100, "only {sent} batches checked");
    }

    #[test]
    fn compressed_batches_hold_what_the_estimated_ratio_lets_in() {
        let t0 = Instant::now();
        let (a0, a1, b) = (
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        );
        let log = Log::default();
        let mut acc = Accumulator::new(Limits {
            batch_size: 1061, // 1000 record bytes after the header
            compressed: true,
            max_batch_bytes: 8000,
            ..limits(true)
        });
        // Records of 100 B the first batch of a fresh partition takes.
        let fill = |acc: &mut Accumulator, tp: &TopicPartition| {
            let opened = acc.next_id();
            let mut n = 0;
            while acc.next_id() <= opened + 1 {
                acc.append(tp, &rec(79), reply(&log), permit(), || t0); // 100 bytes each
                n += 1;
            }
            n - 1 // the last record opened the next batch
        };
        // No estimate yet: 1.0 with Java's 5 % margin, so 9 records of 100 B.
        assert_eq!(fill(&mut acc, &a0), 9);
        // A better ratio is approached one 0.005 step per batch.
        acc.observe_ratio("a", 0.1);
        assert_eq!(acc.ratios["a"], 0.995);
        for _ in 0..200 {
            acc.observe_ratio("a", 0.1);
        }
        assert_eq!(acc.ratios["a"], 0.1);
        // 1000 / (0.1 × 1.05) = 9523 bytes, capped by max_batch_bytes.
        assert_eq!(fill(&mut acc, &a1), 80);
        assert_eq!(fill(&mut acc, &b), 9, "the estimate is per topic");
        // A worse one is taken at once.
        acc.observe_ratio("a", 0.5);
        assert_eq!(acc.ratios["a"], 0.5);
        acc.observe_ratio("a", 0.52);
        assert_eq!(acc.ratios["a"], 0.55, "at least one 0.05 step");
        acc.observe_ratio("a", f32::NAN);
        assert_eq!(acc.ratios["a"], 0.55, "nonsense is ignored");
    }

    #[test]
    fn split_halves_keep_their_place_and_count_as_one_batch() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(Limits {
            batch_size: 1000,
            ..limits(true)
        });
        for _ in 0..5 {
            acc.append(&tp, &rec(10), reply(&log), permit(), || t0);
        }
        acc.append(&tp, &rec(900), reply(&log), permit(), || t0); // opens batch 2
        let mark = acc.next_id();
        let big = acc.take(&tp, Some((1, 0))).unwrap();
        assert_eq!(big.len(), 5);
        let (x, y) = big.split().ok().unwrap();
        assert_eq!((x.len(), y.len()), (2, 3));
        assert_eq!((x.first_index, y.first_index), (0, 2));
        assert!(x.sequence.is_none() && y.sequence.is_none());
        acc.requeue_split(x, y);
        let order: Vec<_> = acc.parts[&tp]
            .batches
            .iter()
            .map(|b| (b.id, b.first_index, b.len()))
            .collect();
        assert_eq!(order, vec![(0, 0, 2), (0, 2, 3), (1, 0, 1)]);
        // Batch 0 stays unfinished until both halves are done.
        let x = acc.take(&tp, None).unwrap();
        acc.settle(&x, true);
        x.complete(Ok((0, -1)));
        acc.done(0);
        assert!(acc.has_incomplete_before(mark));
        let y = acc.take(&tp, None).unwrap();
        acc.settle(&y, true);
        y.complete(Ok((2, -1)));
        acc.done(0);
        let z = acc.take(&tp, None).unwrap();
        acc.settle(&z, true);
        z.complete(Ok((5, -1)));
        acc.done(1);
        assert!(!acc.has_incomplete_before(mark));
        assert_eq!(log.lock().unwrap().len(), 6, "every record reported once");
    }

    #[test]
    fn after_an_epoch_bump_retried_batches_still_go_one_at_a_time() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(true));
        for _ in 0..3 {
            acc.append(&tp, &rec(90), reply(&log), permit(), || t0);
        }
        let a = acc.take(&tp, Some((1, 0))).unwrap();
        acc.requeue(a, ClusterError::Closed, t0);
        acc.reset_sequences();
        let later = t0 + Duration::from_secs(1);
        assert_eq!(acc.ready(later, false).0.len(), 1);
        let a = acc.take(&tp, Some((1, 1))).unwrap();
        assert_eq!(a.sequence.unwrap().base_sequence, 0, "renumbered from 0");
        assert!(
            acc.ready(later, false).0.is_empty(),
            "nothing else goes while the retried batch is in flight"
        );
        acc.settle(&a, true);
        assert_eq!(acc.ready(later, false).0.len(), 1);
    }

    #[test]
    fn tagged_replies_report_to_the_handler_once_even_when_dropped() {
        let seen: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
        let s = seen.clone();
        let handler: Handler = Arc::new(move |r, tag| s.lock().unwrap().push((tag, r.is_ok())));
        let mut acc = Accumulator::new(limits(false)).with_handler(Some(handler));
        let tp = TopicPartition::new("t", 0);
        let t0 = Instant::now();
        drop(Reply::tagged(7));
        for tag in 0..6 {
            acc.append(&tp, &rec(20), Reply::tagged(tag), permit(), || t0);
        }
        // Three batches of two (batch.size 100): the first completes, the
        // second is split and its halves dropped, the third dropped queued.
        let first = acc.take(&tp, None).unwrap();
        first.complete(Ok((10, -1)));
        let (a, b) = acc.take(&tp, None).unwrap().split().ok().unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
        drop((a, b));
        drop(acc);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (0, true),
                (1, true),
                (2, false),
                (3, false),
                (4, false),
                (5, false)
            ],
            "never queued (7): not reported; each queued tag once, in order"
        );
    }

    #[test]
    fn a_dropped_reply_reports_closed_once_queued() {
        let log = Log::default();
        drop(reply(&log));
        assert!(log.lock().unwrap().is_empty(), "never queued: not called");
        let mut acc = Accumulator::new(limits(false));
        let tp = TopicPartition::new("t", 0);
        let t0 = Instant::now();
        acc.append(&tp, &rec(20), reply(&log), permit(), || t0);
        drop(acc);
        assert_eq!(log.lock().unwrap().len(), 1);
        assert!(log.lock().unwrap()[0].is_err());
    }
}
