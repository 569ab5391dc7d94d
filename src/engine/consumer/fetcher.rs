//! The fetch loop: one Fetch in flight per leader, covering every assigned,
//! unpaused partition that has a position and no unread buffered data.
//!
//! A fetch long-polls (`fetch.max.wait.ms`) only when no other partition of
//! its leader is held out for buffered data: otherwise a fetch for caught-up
//! partitions would hold the leader's one slot while the held-out ones drain
//! and wait (a consumer caught up on one partition and behind on others ran
//! at a fraction of its speed). Such a fetch asks the broker not to wait; if
//! it brings nothing, the same partitions are not asked again before a held
//! buffer drains or `fetch.max.wait.ms` passes, so it never spins.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Buffered, ConsumerEngine};
use crate::cluster::wire::{open_batches_within, CodecError, LazyBatch};
use crate::cluster::{msg, versions, ClusterError, ErrorCode, Role, Topics};
use crate::retry::RetryAction;
use crate::types::TopicPartition;

use std::sync::atomic::Ordering::Relaxed;

use super::session::{self, FetchSession};
use crate::cluster::codes::{
    FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, OFFSET_OUT_OF_RANGE,
};

/// Per leader: the partitions of a no-wait fetch that brought nothing, and when.
type Quiet = Arc<std::sync::Mutex<HashMap<i32, (Vec<TopicPartition>, Instant)>>>;

pub(super) async fn run(engine: Weak<ConsumerEngine>) -> Result<(), ClusterError> {
    let in_flight: Arc<std::sync::Mutex<HashSet<i32>>> = Default::default();
    let quiet: Quiet = Default::default();
    let refreshing: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let mut refresh_after = Instant::now();
    loop {
        let Some(e) = engine.upgrade() else {
            return Ok(());
        };
        if e.state().closed {
            return Ok(());
        }
        let fetch_wake = e.fetch_wake.clone();
        let wake = fetch_wake.notified();
        let mut missing_leader = false;
        // (leader, [(tp, epoch, offset)])
        let mut plan: BTreeMap<i32, Vec<(TopicPartition, u64, i64)>> = BTreeMap::new();
        // Leaders with a partition whose buffered records are still to drain.
        let mut held: HashSet<i32> = HashSet::new();
        {
            let meta = e.cluster.cached();
            let busy = lock(&in_flight).clone();
            let now = Instant::now();
            let mut st = e.state();
            for (tp, p) in st.parts.iter_mut() {
                let Some(pos) = p.position else { continue };
                if !p.paused && p.buffered.is_some() {
                    if let Ok(l) = crate::cluster::leader_of(&meta, &tp.topic, tp.partition) {
                        held.insert(l);
                    }
                }
                if p.paused || p.fetching || p.buffered.is_some() || p.failed.is_some() {
                    continue;
                }
                if p.backoff_until.is_some_and(|t| t > now) {
                    continue;
                }
                match crate::cluster::leader_of(&meta, &tp.topic, tp.partition) {
                    Ok(l) if !busy.contains(&l) => {
                        plan.entry(l).or_default().push((tp.clone(), p.epoch, pos))
                    }
                    Ok(_) => {}
                    Err(_) => missing_leader = true,
                }
            }
            let quiet = lock(&quiet);
            plan.retain(|leader, parts| {
                // Not again for just these, with nothing new since the last
                // no-wait fetch, while another partition's buffer drains.
                !held.contains(leader)
                    || !quiet.get(leader).is_some_and(|(asked, at)| {
                        now < *at + e.fetch.max_wait
                            && parts.iter().all(|(tp, _, _)| asked.contains(tp))
                    })
            });
            drop(quiet);
            for parts in plan.values() {
                for (tp, _, _) in parts {
                    if let Some(p) = st.parts.get_mut(tp) {
                        p.fetching = true;
                    }
                }
            }
        }
        for (leader, parts) in plan {
            lock(&in_flight).insert(leader);
            let (e2, in_flight, quiet) = (e.clone(), in_flight.clone(), quiet.clone());
            let long_poll = !held.contains(&leader);
            e.tasks.spawn("fetch", async move {
                {
                    // Clears the leader's slot even if the fetch panics, and
                    // before the wake: a loop woken first saw the leader still
                    // busy and slept until the next poll or its timeout.
                    let _slot = InFlightSlot(in_flight, leader);
                    // Only a no-wait fetch may need to remember what it asked.
                    let asked: Vec<TopicPartition> = match long_poll {
                        true => Vec::new(),
                        false => parts.iter().map(|(tp, _, _)| tp.clone()).collect(),
                    };
                    let got = fetch_once(&e2, leader, parts, long_poll).await;
                    let mut quiet = lock(&quiet);
                    match got || long_poll {
                        true => quiet.remove(&leader),
                        false => quiet.insert(leader, (asked, Instant::now())),
                    };
                }
                e2.fetch_wake.notify_one();
                Ok(())
            });
        }
        let stale = e.cluster.is_stale(&e.cluster.cached());
        let refreshing = refreshing.clone();
        if (missing_leader || stale)
            && Instant::now() >= refresh_after
            && !refreshing.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            refresh_after = Instant::now()
                + e.cluster
                    .config()
                    .retry_backoff
                    .max(Duration::from_millis(100));
            let topics: Vec<String> = {
                let st = e.state();
                let mut t: Vec<String> = st.parts.keys().map(|tp| tp.topic.clone()).collect();
                t.dedup();
                t
            };
            // In the background: a slow broker must not hold up fetches
            // from the healthy ones.
            let e2 = e.clone();
            e.tasks.spawn("fetch metadata refresh", async move {
                let _ = e2.cluster.refresh(Topics::Some(&topics)).await;
                refreshing.store(false, std::sync::atomic::Ordering::Release);
                e2.fetch_wake.notify_one();
                Ok(())
            });
        }
        drop(e);
        let _ = tokio::time::timeout(
            Duration::from_millis(if missing_leader { 100 } else { 500 }),
            wake,
        )
        .await;
    }
}

struct InFlightSlot(Arc<std::sync::Mutex<HashSet<i32>>>, i32);

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

/// One fetch and its outcome; whether it brought records.
async fn fetch_once(
    e: &ConsumerEngine,
    leader: i32,
    parts: Vec<(TopicPartition, u64, i64)>,
    long_poll: bool,
) -> bool {
    let result = request(e, leader, &parts, long_poll).await;
    apply(e, leader, parts, result)
}

/// Takes one fetch's outcome into the partitions' state; whether it
/// brought records.
fn apply(
    e: &ConsumerEngine,
    leader: i32,
    parts: Vec<(TopicPartition, u64, i64)>,
    result: Result<Fetched, ClusterError>,
) -> bool {
    let mut got = false;
    let mut st = e.state();
    let mut refresh = false;
    let backoff = e.cluster.config().retry_backoff;
    match result {
        Err(err) => {
            tracing::debug!(leader, error = %err, "fetch failed");
            e.stats.errors.add(err.kind(), 1);
            // A refused login will not heal: poll() reports it (once).
            if err.is_auth() && st.errors.is_empty() {
                st.errors.push_back(err.clone());
            }
            refresh = true;
            for (tp, _, _) in &parts {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.fetching = false;
                }
            }
        }
        Ok(mut by_tp) => {
            e.stats
                .fetch_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Each partition on its own: one partition's error never holds
            // back the others of the same response.
            for (tp, epoch, offset) in parts {
                let Some(p) = st.parts.get_mut(&tp) else {
                    continue;
                };
                p.fetching = false;
                if p.epoch != epoch || p.position != Some(offset) {
                    continue; // seeked or reassigned meanwhile
                }
                let Some(r) = by_tp.remove(&tp) else { continue };
                match r {
                    Ok(FetchedPartition {
                        high_watermark,
                        batches,
                        aborted,
                    }) => {
                        p.high_watermark = high_watermark;
                        let (batches, next) =
                            visible(batches, &aborted, offset, e.fetch.read_committed);
                        if batches.is_empty() {
                            got |= next > offset; // e.g. aborted records skipped
                            p.position = Some(next.max(offset));
                        } else {
                            got = true;
                            p.buffered = Some(Buffered::new(epoch, batches, next));
                        }
                    }
                    Err(PartitionError::Corrupt(source)) => {
                        p.fail_corrupt(&tp, offset, source, &e.stats);
                    }
                    Err(PartitionError::Code(code)) if code == OFFSET_OUT_OF_RANGE => {
                        e.stats.errors.add(ErrorCode(code).name(), 1);
                        p.position = None;
                        p.reset_now = true;
                    }
                    Err(PartitionError::Code(code)) => {
                        let err =
                            ClusterError::broker(format!("fetching {tp}"), ErrorCode(code), None);
                        e.stats.errors.add(err.kind(), 1);
                        match err.retry_action() {
                            RetryAction::RefreshMetadataAndRetry => refresh = true,
                            RetryAction::Retry => {}
                            _ => {
                                // Reported, then fetched again after a pause (as Java
                                // re-throws e.g. an authorization error each poll).
                                tracing::debug!(%tp, error = %err, "fetch error");
                                p.backoff_until = Some(Instant::now() + backoff);
                                st.errors.push_back(err);
                            }
                        }
                    }
                }
            }
        }
    }
    drop(st);
    if refresh {
        e.cluster.invalidate();
    }
    e.data.notify_waiters();
    got
}

struct FetchedPartition {
    high_watermark: i64,
    batches: Vec<LazyBatch>,
    aborted: Vec<(i64, i64)>,
}

enum PartitionError {
    Code(i16),
    Corrupt(CodecError),
}

type Fetched = HashMap<TopicPartition, Result<FetchedPartition, PartitionError>>;

async fn request(
    e: &ConsumerEngine,
    leader: i32,
    parts: &[(TopicPartition, u64, i64)],
    long_poll: bool,
) -> Result<Fetched, ClusterError> {
    let conn = e.cluster.broker_for(leader, Role::Fetch).await?;
    let version = conn.version(versions::FETCH)?;
    let want: Vec<(TopicPartition, i64)> =
        parts.iter().map(|(tp, _, o)| (tp.clone(), *o)).collect();
    let mut session = lock(&e.sessions).remove(&leader).unwrap_or_default();
    #[cfg(feature = "unstable-internals")]
    {
        let mut fault = lock(&e.session_fault);
        if fault.is_some_and(|unknown_id| session.break_for_test(unknown_id)) {
            *fault = None;
        }
    }
    let resp = exchange(e, &conn, version, &want, &mut session, long_poll).await;
    lock(&e.sessions).insert(leader, session);
    let resp = resp?;
    // Decompression bombs: one batch may expand to at most fetch.max.bytes,
    // and one partition's batches to about that much in total per fetch.
    let limit = e.fetch.max_bytes.max(1) as usize;
    let mut out = Fetched::new();
    for t in resp.responses {
        for p in t.partitions {
            let tp = TopicPartition::new(t.topic.0.to_string(), p.partition_index);
            if p.error_code != 0 {
                out.insert(tp, Err(PartitionError::Code(p.error_code)));
                continue;
            }
            let batches = match p.records.map(|r| open_batches_within(r, limit, limit)) {
                Some(Ok(b)) => b,
                Some(Err(err)) => {
                    out.insert(tp, Err(PartitionError::Corrupt(err)));
                    continue;
                }
                None => Vec::new(),
            };
            let aborted = p
                .aborted_transactions
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect();
            out.insert(
                tp,
                Ok(FetchedPartition {
                    high_watermark: p.high_watermark,
                    batches,
                    aborted,
                }),
            );
        }
    }
    Ok(out)
}

/// Locks, taking over a mutex a panicked fetch task left poisoned.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One Fetch through the broker's session. A session the broker lost or no
/// longer trusts costs one more, full, fetch.
async fn exchange(
    e: &ConsumerEngine,
    conn: &crate::cluster::Connection,
    version: i16,
    want: &[(TopicPartition, i64)],
    session: &mut FetchSession,
    long_poll: bool,
) -> Result<msg::FetchResponse, ClusterError> {
    loop {
        let sreq = session.request(want, version);
        // Bounded by request.timeout.ms (validated to exceed fetch.max.wait.ms).
        let resp = match conn
            .send(&fetch_request(e, &sreq, long_poll), versions::FETCH)
            .await
        {
            Ok((resp, _)) => resp,
            Err(err) => {
                session.reset(false);
                return Err(err.into());
            }
        };
        match resp.error_code {
            0 => {
                session.answered(&sreq, want, resp.session_id);
                let s = &e.stats;
                if sreq.incremental() {
                    s.incremental_fetches.fetch_add(1, Relaxed);
                }
                s.fetch_partitions_sent
                    .fetch_add(sreq.send.len() as u64, Relaxed);
                return Ok(resp);
            }
            code @ (FETCH_SESSION_ID_NOT_FOUND | INVALID_FETCH_SESSION_EPOCH)
                if sreq.incremental() =>
            {
                e.stats.errors.add(ErrorCode(code).name(), 1);
                tracing::debug!(
                    session = sreq.session_id,
                    epoch = sreq.epoch,
                    error = %ErrorCode(code),
                    "fetch session reset"
                );
                session.reset(code == FETCH_SESSION_ID_NOT_FOUND);
            }
            code => {
                session.reset(false);
                return Err(ClusterError::broker("Fetch", ErrorCode(code), None));
            }
        }
    }
}

/// The Fetch for `sreq`; without `long_poll` the broker answers at once.
fn fetch_request(
    e: &ConsumerEngine,
    sreq: &session::Request,
    long_poll: bool,
) -> msg::FetchRequest {
    let mut topics: Vec<msg::FetchTopic> = Vec::new();
    for (tp, offset) in &sreq.send {
        let part = msg::FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(*offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(e.fetch.partition_max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                msg::FetchTopic::default()
                    .with_topic(msg::topic_name(&tp.topic))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let mut forgotten: Vec<msg::ForgottenTopic> = Vec::new();
    for tp in &sreq.forget {
        match forgotten
            .iter_mut()
            .find(|t| t.topic.0.as_str() == tp.topic)
        {
            Some(t) => t.partitions.push(tp.partition),
            None => forgotten.push(
                msg::ForgottenTopic::default()
                    .with_topic(msg::topic_name(&tp.topic))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    let max_wait = match long_poll {
        true => e.fetch.max_wait.as_millis().min(i32::MAX as u128) as i32,
        false => 0,
    };
    msg::FetchRequest::default()
        .with_replica_id(msg::BrokerId(-1))
        .with_max_wait_ms(max_wait)
        .with_min_bytes(e.fetch.min_bytes)
        .with_max_bytes(e.fetch.max_bytes)
        .with_isolation_level(i8::from(e.fetch.read_committed))
        .with_session_id(sreq.session_id)
        .with_session_epoch(sreq.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// Tells each broker to drop this consumer's session (epoch -1), as Java
/// does on close, so its cache slot frees now rather than on eviction.
/// Best effort, one bounded round trip per broker.
pub(super) async fn close_sessions(e: &ConsumerEngine) {
    let open: Vec<(i32, i32)> = lock(&e.sessions)
        .drain()
        .filter(|(_, s)| s.id != 0)
        .map(|(broker, s)| (broker, s.id))
        .collect();
    for (broker, id) in open {
        let req = msg::FetchRequest::default()
            .with_replica_id(msg::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_session_id(id)
            .with_session_epoch(-1);
        let close = async {
            let conn = e.cluster.broker_for(broker, Role::Fetch).await?;
            conn.send(&req, versions::FETCH).await?;
            Ok::<_, ClusterError>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }
}

/// Records a reader may see, and the offset after the last batch. Control
/// batches are dropped; with read_committed so are aborted transactions.
fn visible(
    batches: Vec<LazyBatch>,
    aborted: &[(i64, i64)],
    from: i64,
    read_committed: bool,
) -> (VecDeque<LazyBatch>, i64) {
    let mut next = from;
    let mut out = VecDeque::new();
    // producer id -> first offset of its aborted transaction, once reached.
    let mut aborting: HashMap<i64, i64> = HashMap::new();
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| a.1);
    for b in batches {
        next = next.max(b.last_offset + 1);
        let first = b.base_offset;
        if read_committed {
            pending.retain(|(pid, off)| {
                if *off <= b.last_offset {
                    aborting.insert(*pid, *off);
                    false
                } else {
                    true
                }
            });
        }
        if b.control {
            // An abort/commit marker ends that producer's transaction.
            aborting.remove(&b.producer_id);
            continue;
        }
        if read_committed
            && aborting
                .get(&b.producer_id)
                .is_some_and(|start| *start <= first)
        {
            continue;
        }
        // Whole batches: records before `from` (the start of the first
        // batch) are skipped by the drain, which checks every offset.
        if b.last_offset >= from && b.count > 0 {
            out.push_back(b);
        }
    }
    (out, next)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::{Cluster, ClusterConfig, ConnConfig};
    use crate::engine::consumer::FetchConfig;

    fn engine() -> Arc<ConsumerEngine> {
        let cluster = Cluster::new(ClusterConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            conn: Arc::new(ConnConfig {
                client_id: "t".into(),
                request_timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                max_response_size: 1 << 20,
                stats: Default::default(),
                security: Arc::new(crate::cluster::Security::new(&Default::default())),
            }),
            metadata_max_age: Duration::from_secs(60),
            reconnect_backoff: Duration::from_millis(10),
            reconnect_backoff_max: Duration::from_millis(10),
            retry_backoff: Duration::from_millis(10),
            retry_backoff_max: Duration::from_millis(10),
            api_timeout: Duration::from_secs(1),
            auto_create_topics: false,
        });
        ConsumerEngine::start(
            cluster,
            FetchConfig {
                min_bytes: 1,
                max_wait: Duration::from_millis(100),
                max_bytes: 1 << 20,
                partition_max_bytes: 1 << 20,
                read_committed: false,
            },
        )
    }

    /// One real batch of one record at `offset`.
    fn record(offset: i64) -> LazyBatch {
        record_bytes(offset, |_| ())
    }

    /// The same, its bytes changed by `edit` (the CRC is then recomputed).
    fn record_bytes(offset: i64, edit: impl FnOnce(&mut Vec<u8>)) -> LazyBatch {
        use crate::cluster::wire::{encode_batch, OutRecord, ProducerStamp};
        let r = OutRecord {
            timestamp: 0,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: vec![],
        };
        let b = encode_batch(&[r], ProducerStamp::NONE, crate::cluster::Compression::None).unwrap();
        let mut b = b.to_vec();
        b[..8].copy_from_slice(&offset.to_be_bytes()); // not covered by the CRC
        edit(&mut b);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut got = open_batches_within(b.into(), 1 << 20, 1 << 20).unwrap();
        got.pop().unwrap()
    }

    #[tokio::test]
    async fn one_partition_error_leaves_the_others_fetching() {
        let e = engine();
        let tps: Vec<_> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
        e.set_assignment(&tps);
        let mut parts = Vec::new();
        {
            let mut st = e.state();
            for tp in &tps {
                let p = st.parts.get_mut(tp).unwrap();
                p.position = Some(5);
                p.fetching = true;
                parts.push((tp.clone(), p.epoch, 5));
            }
        }
        let mut fetched = Fetched::new();
        // A non-retriable code first, then data, then a corrupt batch.
        fetched.insert(tps[0].clone(), Err(PartitionError::Code(29))); // TOPIC_AUTHORIZATION_FAILED
        fetched.insert(
            tps[1].clone(),
            Ok(FetchedPartition {
                high_watermark: 6,
                batches: vec![record(5)],
                aborted: vec![],
            }),
        );
        fetched.insert(
            tps[2].clone(),
            Err(PartitionError::Corrupt(CodecError::Records(
                "bad crc".into(),
            ))),
        );
        apply(&e, 1, parts, Ok(fetched));
        let st = e.state();
        assert!(
            st.parts.values().all(|p| !p.fetching),
            "no partition left marked in flight"
        );
        assert!(
            st.parts[&tps[1]].buffered.is_some(),
            "the healthy partition got its data"
        );
        assert!(st.parts[&tps[0]].backoff_until.is_some());
        assert!(matches!(
            st.parts[&tps[2]].failed,
            Some(ClusterError::CorruptRecords { offset: 5, .. })
        ));
        assert_eq!(st.errors.len(), 1, "the broker error is reported");
        drop(st);
        assert_eq!(e.drain(10, |_, _, _| ()), 1);
        assert!(e.take_failure().is_some());
        assert!(e.take_failure().is_none(), "reported every other poll");
        e.failures_due();
        assert!(e.take_failure().is_some());
        e.close();
    }

    #[tokio::test]
    async fn records_that_cannot_be_read_stop_the_partition_where_they_start() {
        let e = engine();
        let tp = TopicPartition::new("t", 0);
        e.set_assignment(std::slice::from_ref(&tp));
        let epoch = {
            let mut st = e.state();
            let p = st.parts.get_mut(&tp).unwrap();
            p.position = Some(5);
            p.fetching = true;
            p.epoch
        };
        // A CRC-valid batch at 6 whose header promises two records but holds one.
        let bad = record_bytes(6, |b| b[57..61].copy_from_slice(&2i32.to_be_bytes()));
        let mut fetched = Fetched::new();
        fetched.insert(
            tp.clone(),
            Ok(FetchedPartition {
                high_watermark: 8,
                batches: vec![record(5), bad, record(7)],
                aborted: vec![],
            }),
        );
        apply(&e, 1, vec![(tp.clone(), epoch, 5)], Ok(fetched));
        let mut offsets = Vec::new();
        assert_eq!(e.drain(10, |_, _, r| offsets.push(r.offset)), 1);
        assert_eq!(offsets, [5], "the batches before it are delivered");
        assert_eq!(e.drain(10, |_, _, _| ()), 0, "nothing past it");
        match e.take_failure() {
            Some(ClusterError::CorruptRecords {
                offset: 6, source, ..
            }) => {
                assert!(source.to_string().contains("record 1 of 2"), "{source}")
            }
            other => panic!("expected CorruptRecords at 6, got {other:?}"),
        }
        assert!(e.state().parts[&tp].buffered.is_none());
        e.close();
    }
}
