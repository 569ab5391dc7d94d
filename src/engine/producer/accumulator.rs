//! Per-partition batch queues. Pure bookkeeping: no IO, no clocks read
//! (callers pass `now`), so every rule here is unit-testable.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::cluster::wire::OutRecord;
use crate::cluster::ClusterError;
use crate::types::TopicPartition;

/// Where one record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub offset: i64,
    pub timestamp: i64,
}

/// Called exactly once per record with its outcome.
pub(crate) type Reply = Box<dyn FnOnce(Result<Delivered, ClusterError>) + Send>;

/// Producer id, epoch and first sequence of a batch, fixed at first send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sequenced {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

pub(crate) struct Batch {
    pub id: u64,
    pub tp: TopicPartition,
    pub records: Vec<OutRecord>,
    pub replies: Vec<Reply>,
    pub bytes: usize,
    pub created: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    pub sequence: Option<Sequenced>,
    pub last_error: Option<ClusterError>,
    /// Buffer memory held until the batch is dropped.
    pub _permit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    /// Completes every record, consuming the batch (and freeing its memory).
    pub(crate) fn complete(self, result: Result<(i64, i64), ClusterError>) {
        for (i, (reply, r)) in self.replies.into_iter().zip(&self.records).enumerate() {
            let outcome = match &result {
                Ok((base, append_time)) => Ok(Delivered {
                    offset: if *base >= 0 { base + i as i64 } else { -1 },
                    timestamp: if *append_time >= 0 {
                        *append_time
                    } else {
                        r.timestamp
                    },
                }),
                Err(e) => Err(e.clone()),
            };
            reply(outcome);
        }
    }

    pub(crate) fn end_sequence(&self) -> Option<i32> {
        self.sequence
            .map(|s| s.base_sequence.wrapping_add(self.records.len() as i32 - 1))
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
}

/// Limits the accumulator enforces.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub batch_size: usize,
    pub linger: Duration,
    pub max_in_flight: usize,
    pub idempotent: bool,
}

pub(crate) struct Accumulator {
    pub limits: Limits,
    pub parts: HashMap<TopicPartition, PartitionQueue>,
    next_id: u64,
    incomplete: BTreeSet<u64>,
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
            parts: HashMap::new(),
            next_id: 0,
            incomplete: BTreeSet::new(),
        }
    }

    /// Adds a record to the partition's open batch, or opens a new one.
    pub(crate) fn append(
        &mut self,
        tp: &TopicPartition,
        record: OutRecord,
        reply: Reply,
        permit: OwnedSemaphorePermit,
        now: Instant,
    ) {
        let size = record_size(&record);
        let batch_size = self.limits.batch_size;
        // Look up before inserting: `entry` would clone the key on every record.
        if !self.parts.contains_key(tp) {
            self.parts.insert(
                tp.clone(),
                PartitionQueue {
                    last_acked: -1,
                    ..Default::default()
                },
            );
        }
        let Some(q) = self.parts.get_mut(tp) else {
            return;
        };
        if let Some(b) = q.batches.back_mut() {
            let open = b.attempts == 0 && b.sequence.is_none();
            if open && b.bytes + size <= batch_size {
                b.records.push(record);
                b.replies.push(reply);
                b.bytes += size;
                if let Some(p) = b._permit.as_mut() {
                    p.merge(permit);
                }
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.incomplete.insert(id);
        q.batches.push_back(Batch {
            id,
            tp: tp.clone(),
            records: vec![record],
            replies: vec![reply],
            bytes: size,
            created: now,
            attempts: 0,
            retry_at: None,
            sequence: None,
            last_error: None,
            _permit: Some(permit),
        });
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
                if q.retrying && q.in_flight > 0 {
                    continue; // wait for outstanding responses first
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
            let full = q.batches.len() > 1 || front.bytes >= self.limits.batch_size;
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
        if let (Some((producer_id, epoch)), None) = (producer, b.sequence) {
            b.sequence = Some(Sequenced {
                producer_id,
                epoch,
                base_sequence: q.next_sequence,
            });
            q.next_sequence = wrap_add(q.next_sequence, b.records.len());
        }
        q.in_flight += 1;
        Some(b)
    }

    /// Puts a failed batch back, in sequence order, for another attempt.
    pub(crate) fn requeue(&mut self, mut batch: Batch, error: ClusterError, retry_at: Instant) {
        batch.attempts += 1;
        batch.retry_at = Some(retry_at);
        batch.last_error = Some(error);
        let Some(q) = self.parts.get_mut(&batch.tp) else {
            return batch.complete(Err(ClusterError::Closed));
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        q.retrying = true;
        let seq = batch.sequence.map(|s| s.base_sequence);
        // Retried batches go before fresh ones; among retried, lower sequence first.
        let pos = q
            .batches
            .iter()
            .position(|b| {
                b.sequence.is_none() || (seq.is_some() && b.sequence.map(|s| s.base_sequence) > seq)
            })
            .unwrap_or(q.batches.len());
        q.batches.insert(pos, batch);
    }

    /// Records that a sent batch is finished (delivered or failed for good).
    pub(crate) fn finish(&mut self, batch: &Batch, acked: bool) {
        self.incomplete.remove(&batch.id);
        if let Some(q) = self.parts.get_mut(&batch.tp) {
            q.in_flight = q.in_flight.saturating_sub(1);
            if acked {
                if let Some(end) = batch.end_sequence() {
                    q.last_acked = end;
                }
            }
            if q.retrying && q.batches.iter().all(|b| b.attempts == 0) {
                q.retrying = false;
            }
        }
    }

    /// Removes batches older than `timeout` that are not in flight.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.parts.values_mut() {
            while q
                .batches
                .front()
                .is_some_and(|b| now.duration_since(b.created) >= timeout)
            {
                if let Some(b) = q.batches.pop_front() {
                    self.incomplete.remove(&b.id);
                    out.push(b);
                }
            }
        }
        out
    }

    /// Removes every queued batch (on close or a fatal producer error).
    pub(crate) fn drain_all(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        for q in self.parts.values_mut() {
            for b in q.batches.drain(..) {
                self.incomplete.remove(&b.id);
                out.push(b);
            }
        }
        out
    }

    /// After a producer epoch bump every partition starts again at sequence 0.
    pub(crate) fn reset_sequences(&mut self) {
        for q in self.parts.values_mut() {
            q.next_sequence = 0;
            q.last_acked = -1;
            q.retrying = false;
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
        self.incomplete.first().is_some_and(|first| *first < id)
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

    fn permit() -> OwnedSemaphorePermit {
        static MEMORY: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
        MEMORY
            .get_or_init(|| Arc::new(Semaphore::new(1 << 20)))
            .clone()
            .try_acquire_owned()
            .unwrap()
    }

    type Log = Arc<Mutex<Vec<Result<Delivered, String>>>>;

    fn reply(log: &Log) -> Reply {
        let log = log.clone();
        Box::new(move |r| log.lock().unwrap().push(r.map_err(|e| e.to_string())))
    }

    #[test]
    fn batches_fill_then_linger() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let log = Log::default();
        let mut acc = Accumulator::new(limits(false));
        acc.append(&tp, rec(20), reply(&log), permit(), t0);
        acc.append(&tp, rec(20), reply(&log), permit(), t0);
        assert_eq!(acc.parts[&tp].batches.len(), 1);
        let (ready, wake) = acc.ready(t0, false);
        assert!(ready.is_empty());
        assert_eq!(wake, Some(t0 + Duration::from_millis(10)));
        acc.append(&tp, rec(60), reply(&log), permit(), t0);
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
            acc.append(&tp, rec(90), reply(&log), permit(), t0);
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
        acc.finish(&a, true);
        a.complete(Ok((10, -1)));
        let b = acc.take(&tp, pid).unwrap();
        assert_eq!(b.sequence.unwrap().base_sequence, 1);
        acc.finish(&b, true);
        assert!(!acc.parts[&tp].retrying, "back to pipelining");
        assert_eq!(acc.parts[&tp].last_acked, 1);
        let c = acc.take(&tp, pid).unwrap();
        assert_eq!(c.sequence.unwrap().base_sequence, 2);
        assert_eq!(
            log.lock().unwrap()[0],
            Ok(Delivered {
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
        acc.append(&tp, rec(10), reply(&log), permit(), t0);
        let mark = acc.next_id();
        assert!(acc.has_incomplete_before(mark));
        let expired = acc.expire(t0 + Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(expired.len(), 1);
        for b in expired {
            b.complete(Err(ClusterError::Closed));
        }
        assert!(!acc.has_incomplete_before(mark));
        assert!(log.lock().unwrap()[0].is_err());
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(wrap_add(i32::MAX, 1), 0);
        assert_eq!(wrap_add(i32::MAX - 1, 3), 1);
    }
}
