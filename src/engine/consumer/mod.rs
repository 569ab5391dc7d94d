//! Consumer engine: partition state, the fetch loop (per-broker fetch
//! sources with bounded prefetch) and the group coordinator.
//!
//! ```text
//! poll() ──drain──▶ PartState.buffered ◀──fills── fetch loop ──▶ one Fetch per leader
//!   │                                                   (one in flight per broker,
//!   └── group: join/sync (in poll), heartbeat task          one buffered fetch per partition)
//! ```

mod assignor;
mod fetcher;
pub(crate) mod group;
pub(crate) mod offsets;
pub(crate) mod session;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

pub use assignor::Strategy;

use crate::cluster::wire::{CodecError, InRecord, LazyBatch};
use crate::cluster::{Cluster, ClusterError};
use crate::engine::tasks::Tasks;
use crate::metrics::{ConsumerStats, PartitionLag};
use crate::types::TopicPartition;

/// Fetch settings derived from the consumer config.
#[derive(Debug, Clone)]
pub(crate) struct FetchConfig {
    pub min_bytes: i32,
    pub max_wait: Duration,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub read_committed: bool,
}

/// Records fetched for one partition, waiting for `poll`: checked and
/// decompressed batches, each decoded only when `poll` reaches it, so a
/// record is built once and the buffer holds little beyond the bytes.
pub(crate) struct Buffered {
    pub epoch: u64,
    batches: VecDeque<LazyBatch>,
    /// The decoded records of the batch being read.
    current: std::vec::IntoIter<InRecord>,
    /// Where the next fetch starts: past the last batch, control ones included.
    pub next_offset: i64,
}

impl Buffered {
    pub(crate) fn new(epoch: u64, batches: VecDeque<LazyBatch>, next_offset: i64) -> Self {
        Buffered {
            epoch,
            batches,
            current: Vec::new().into_iter(),
            next_offset,
        }
    }

    /// The next record; an error if the next batch's records cannot be read.
    fn pop(&mut self) -> Result<Option<InRecord>, CodecError> {
        loop {
            if let Some(r) = self.current.next() {
                return Ok(Some(r));
            }
            let Some(b) = self.batches.pop_front() else {
                return Ok(None);
            };
            self.current = b.records()?.into_iter();
        }
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.current.len() == 0
    }
}

pub(crate) struct PartState {
    /// Next offset to hand out; `None` until looked up.
    pub position: Option<i64>,
    /// Skip the committed offset and reset (after OFFSET_OUT_OF_RANGE).
    pub reset_now: bool,
    pub paused: bool,
    /// Bumped on seek/assign so in-flight fetches for the old position are dropped.
    pub epoch: u64,
    pub fetching: bool,
    pub buffered: Option<Buffered>,
    /// From the latest fetch response; -1 before the first.
    pub high_watermark: i64,
    /// Records at the position cannot be read (corrupt batch): the
    /// partition stops here until the application seeks.
    pub failed: Option<ClusterError>,
    /// Whether `failed` was returned by the latest poll (it is returned
    /// every other poll, so other partitions keep flowing in between).
    pub failure_reported: bool,
    /// No fetch before this (after a non-retriable partition error).
    pub backoff_until: Option<std::time::Instant>,
}

impl PartState {
    /// Stops the partition at `offset` with `CorruptRecords` until the
    /// application seeks past it.
    pub(crate) fn fail_corrupt(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        source: CodecError,
        stats: &ConsumerStats,
    ) {
        stats.errors.add("corrupt_data".into(), 1);
        tracing::warn!(%tp, offset, error = %source, "records cannot be read");
        self.failed = Some(ClusterError::CorruptRecords {
            tp: tp.clone(),
            offset,
            source,
        });
        self.failure_reported = false;
    }
}

impl Default for PartState {
    fn default() -> Self {
        PartState {
            position: None,
            reset_now: false,
            paused: false,
            epoch: 0,
            fetching: false,
            buffered: None,
            high_watermark: -1,
            failed: None,
            failure_reported: false,
            backoff_until: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// The current assignment.
    pub parts: BTreeMap<TopicPartition, PartState>,
    /// Errors to surface from the next poll.
    pub errors: VecDeque<ClusterError>,
    pub closed: bool,
    /// Where the next drain starts, so every partition gets its turn.
    pub drain_from: Option<TopicPartition>,
}

pub(crate) struct ConsumerEngine {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) fetch: FetchConfig,
    state: Mutex<State>,
    /// Wakes the fetch loop (new positions, resumes, drained buffers).
    pub(crate) fetch_wake: Arc<Notify>,
    /// Wakes `poll` (data arrived, error, rebalance needed).
    pub(crate) data: Arc<Notify>,
    /// The fetch loop and the group's heartbeat task.
    pub(crate) tasks: Tasks,
    pub(crate) stats: ConsumerStats,
    /// Fetch sessions by broker id (the fetch loop keeps one fetch in
    /// flight per broker, so a session is never used twice at once).
    pub(crate) sessions: Mutex<HashMap<i32, session::FetchSession>>,
    /// A session fault to inject on the next fetch (`unstable-internals`).
    #[cfg(feature = "unstable-internals")]
    pub(crate) session_fault: Mutex<Option<bool>>,
}

impl ConsumerEngine {
    pub(crate) fn start(cluster: Arc<Cluster>, fetch: FetchConfig) -> Arc<ConsumerEngine> {
        let e = Arc::new(ConsumerEngine {
            cluster,
            fetch,
            state: Mutex::new(State::default()),
            fetch_wake: Arc::new(Notify::new()),
            data: Arc::new(Notify::new()),
            tasks: Tasks::default(),
            stats: ConsumerStats::default(),
            sessions: Mutex::default(),
            #[cfg(feature = "unstable-internals")]
            session_fault: Mutex::default(),
        });
        e.tasks
            .spawn("fetch loop", fetcher::run(Arc::downgrade(&e)));
        e
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the assignment, keeping state of partitions that stay.
    pub(crate) fn set_assignment(&self, tps: &[TopicPartition]) {
        let mut st = self.state();
        st.parts.retain(|tp, _| tps.contains(tp));
        for tp in tps {
            st.parts.entry(tp.clone()).or_default();
        }
        drop(st);
        self.fetch_wake.notify_one();
    }

    /// Adds partitions to the assignment (cooperative rebalances).
    pub(crate) fn add_partitions(&self, tps: &[TopicPartition]) {
        let mut st = self.state();
        for tp in tps {
            st.parts.entry(tp.clone()).or_default();
        }
        drop(st);
        self.fetch_wake.notify_one();
    }

    /// Removes partitions from the assignment.
    pub(crate) fn remove_partitions(&self, tps: &[TopicPartition]) {
        let mut st = self.state();
        for tp in tps {
            st.parts.remove(tp);
        }
    }

    /// Position against high watermark of every assigned partition.
    pub(crate) fn lag(&self) -> Vec<PartitionLag> {
        self.state()
            .parts
            .iter()
            .map(|(tp, p)| {
                let hw = p.high_watermark;
                PartitionLag {
                    partition: tp.clone(),
                    position: p.position,
                    high_watermark: hw,
                    lag: p
                        .position
                        .filter(|_| hw >= 0)
                        .map_or(0, |pos| (hw - pos).max(0)),
                }
            })
            .collect()
    }

    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        self.state().parts.keys().cloned().collect()
    }

    /// Positions of assigned partitions that have one.
    pub(crate) fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.state()
            .parts
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Moves the position, dropping prefetched data.
    pub(crate) fn seek(&self, tp: &TopicPartition, offset: Option<i64>, reset_now: bool) -> bool {
        let mut st = self.state();
        let Some(p) = st.parts.get_mut(tp) else {
            return false;
        };
        p.position = offset;
        p.reset_now = reset_now;
        p.epoch += 1;
        p.buffered = None;
        p.failed = None;
        p.failure_reported = false;
        drop(st);
        self.fetch_wake.notify_one();
        true
    }

    pub(crate) fn set_paused(&self, tps: &[TopicPartition], paused: bool) {
        let mut st = self.state();
        for tp in tps {
            if let Some(p) = st.parts.get_mut(tp) {
                p.paused = paused;
            }
        }
        drop(st);
        self.fetch_wake.notify_one();
    }

    /// Takes up to `max` buffered records of unpaused partitions, advancing
    /// positions, each with its topic (one shared name per partition) and
    /// partition. Starts after the partition the last drain ended on, so a
    /// busy partition cannot starve the others.
    /// Hands each record to `each` (no intermediate list: a record is moved
    /// once, into the caller's) and returns how many there were.
    pub(crate) fn drain(
        &self,
        max: usize,
        mut each: impl FnMut(&Arc<str>, i32, InRecord),
    ) -> usize {
        let (mut n, mut bytes) = (0usize, 0usize);
        let mut st = self.state();
        let st = &mut *st;
        let start = st.drain_from.take();
        let (after, before): (Vec<_>, Vec<_>) = st
            .parts
            .iter_mut()
            .partition(|(tp, _)| start.as_ref().is_none_or(|s| *tp > s));
        let mut last = None;
        // Whether a partition's buffer emptied, so the fetcher has work.
        let mut fetchable = false;
        for (tp, p) in after.into_iter().chain(before) {
            if n >= max {
                break;
            }
            last = Some(tp);
            if p.paused {
                continue;
            }
            let Some(buf) = p.buffered.as_mut() else {
                continue;
            };
            if buf.epoch != p.epoch {
                p.buffered = None;
                fetchable = true;
                continue;
            }
            let topic: Arc<str> = tp.topic.as_str().into();
            let mut failure = None;
            while n < max {
                let r = match buf.pop() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(source) => {
                        failure = Some((p.position.unwrap_or(buf.next_offset), source));
                        break;
                    }
                };
                if p.position.is_some_and(|pos| r.offset < pos) {
                    continue; // a batch starts before the position we asked for
                }
                p.position = Some(r.offset + 1);
                bytes +=
                    r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
                n += 1;
                each(&topic, tp.partition, r);
            }
            if let Some((offset, source)) = failure {
                // Reported like a batch the fetch could not read.
                p.fail_corrupt(tp, offset, source, &self.stats);
                p.buffered = None;
                fetchable = true;
            } else if buf.is_empty() {
                // Skip trailing markers and compacted gaps too.
                p.position = Some(
                    p.position
                        .map_or(buf.next_offset, |pos| pos.max(buf.next_offset)),
                );
                p.buffered = None;
                fetchable = true;
            }
        }
        st.drain_from = last.cloned();
        // Only then, or when nothing was ready (a starved consumer, e.g.
        // during a failover, re-plans at once): waking the fetcher on every
        // poll cost a cross-thread wake-up (futex) per poll, ~6 % of its CPU.
        if fetchable || n == 0 {
            self.fetch_wake.notify_one();
        }
        let s = &self.stats;
        s.records_fetched
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        s.bytes_fetched
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        n
    }

    pub(crate) fn take_error(&self) -> Option<ClusterError> {
        self.state().errors.pop_front()
    }

    /// A partition that cannot go on (corrupt records) not reported by the
    /// previous poll: returned every other poll until the application seeks.
    pub(crate) fn take_failure(&self) -> Option<ClusterError> {
        let mut st = self.state();
        let mut found = None;
        for p in st.parts.values_mut() {
            if let Some(e) = &p.failed {
                if !p.failure_reported && found.is_none() {
                    found = Some(e.clone());
                    p.failure_reported = true;
                }
            }
        }
        found
    }

    /// After a poll that returned records (or nothing): failures are due again.
    pub(crate) fn failures_due(&self) {
        for p in self.state().parts.values_mut() {
            p.failure_reported = false;
        }
    }

    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.fetch_wake.notify_one();
    }

    /// Waits (bounded) for the background tasks to stop after `close`.
    pub(crate) async fn join_tasks(&self) {
        self.tasks.join(std::time::Duration::from_secs(5)).await;
    }

    /// Releases the brokers' fetch sessions (after `join_tasks`).
    pub(crate) async fn close_sessions(&self) {
        fetcher::close_sessions(self).await;
    }
}
