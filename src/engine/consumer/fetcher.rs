//! The fetch loop: one Fetch in flight per leader, covering every assigned,
//! unpaused partition that has a position and no unread buffered data.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Buffered, ConsumerEngine};
use crate::cluster::wire::{decode_batches_within, InBatch, InRecord};
use crate::cluster::{codes, msg, versions, ClusterError, ErrorCode, Topics};
use crate::types::TopicPartition;

use crate::cluster::codes::OFFSET_OUT_OF_RANGE;

pub(super) async fn run(engine: Weak<ConsumerEngine>) {
    let in_flight: Arc<std::sync::Mutex<HashSet<i32>>> = Default::default();
    let mut refresh_after = Instant::now();
    loop {
        let Some(e) = engine.upgrade() else { return };
        if e.state().closed {
            return;
        }
        let fetch_wake = e.fetch_wake.clone();
        let wake = fetch_wake.notified();
        let mut missing_leader = false;
        // (leader, [(tp, epoch, offset)])
        let mut plan: BTreeMap<i32, Vec<(TopicPartition, u64, i64)>> = BTreeMap::new();
        {
            let meta = e.cluster.cached();
            let busy = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut st = e.state();
            for (tp, p) in st.parts.iter_mut() {
                let Some(pos) = p.position else { continue };
                if p.paused || p.fetching || p.buffered.is_some() {
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
            for parts in plan.values() {
                for (tp, _, _) in parts {
                    if let Some(p) = st.parts.get_mut(tp) {
                        p.fetching = true;
                    }
                }
            }
        }
        for (leader, parts) in plan {
            in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(leader);
            let (e2, in_flight) = (e.clone(), in_flight.clone());
            tokio::spawn(async move {
                fetch_once(&e2, leader, parts).await;
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&leader);
                e2.fetch_wake.notify_one();
            });
        }
        let stale = e.cluster.is_stale(&e.cluster.cached());
        if (missing_leader || stale) && Instant::now() >= refresh_after {
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
            let _ = e.cluster.refresh(Topics::Some(&topics)).await;
        }
        drop(e);
        let _ = tokio::time::timeout(
            Duration::from_millis(if missing_leader { 100 } else { 500 }),
            wake,
        )
        .await;
    }
}

async fn fetch_once(e: &ConsumerEngine, leader: i32, parts: Vec<(TopicPartition, u64, i64)>) {
    let result = request(e, leader, &parts).await;
    let mut st = e.state();
    let mut refresh = false;
    match result {
        Err(err) => {
            tracing::debug!(leader, error = %err, "fetch failed");
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
                        let (records, next) =
                            visible(batches, &aborted, offset, e.fetch.read_committed);
                        if records.is_empty() {
                            p.position = Some(next.max(offset));
                        } else {
                            p.buffered = Some(Buffered {
                                epoch,
                                records,
                                next_offset: next,
                            });
                        }
                    }
                    Err(code) if code == OFFSET_OUT_OF_RANGE => {
                        p.position = None;
                        p.reset_now = true;
                    }
                    Err(code)
                        if codes::needs_metadata_refresh(code)
                            || ErrorCode(code).is_retriable() =>
                    {
                        refresh = true
                    }
                    Err(code) => {
                        let err =
                            ClusterError::broker(format!("fetching {tp}"), ErrorCode(code), None);
                        st.errors.push_back(err);
                        break;
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
}

struct FetchedPartition {
    high_watermark: i64,
    batches: Vec<InBatch>,
    aborted: Vec<(i64, i64)>,
}

type Fetched = HashMap<TopicPartition, Result<FetchedPartition, i16>>;

async fn request(
    e: &ConsumerEngine,
    leader: i32,
    parts: &[(TopicPartition, u64, i64)],
) -> Result<Fetched, ClusterError> {
    let mut topics: Vec<msg::FetchTopic> = Vec::new();
    for (tp, _, offset) in parts {
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
                    .with_topic(msg::TopicName(msg::StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = msg::FetchRequest::default()
        .with_replica_id(msg::BrokerId(-1))
        .with_max_wait_ms(e.fetch.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(e.fetch.min_bytes)
        .with_max_bytes(e.fetch.max_bytes)
        .with_isolation_level(i8::from(e.fetch.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let conn = e.cluster.broker(leader).await?;
    let (resp, _) = conn
        .send_long(&req, versions::FETCH, e.fetch.max_wait)
        .await?;
    if let Some(code) = ErrorCode::check(resp.error_code) {
        return Err(ClusterError::broker("Fetch", code, None));
    }
    // Decompression bombs: one batch may expand to at most fetch.max.bytes,
    // and one partition's batches to about that much in total per fetch.
    let limit = e.fetch.max_bytes.max(1) as usize;
    let mut out = Fetched::new();
    for t in resp.responses {
        for p in t.partitions {
            let tp = TopicPartition::new(t.topic.0.to_string(), p.partition_index);
            if p.error_code != 0 {
                out.insert(tp, Err(p.error_code));
                continue;
            }
            let batches = match p.records {
                Some(r) => decode_batches_within(r, limit, limit).map_err(|err| {
                    ClusterError::broker(
                        format!("decoding records of {tp}"),
                        ErrorCode(-1),
                        Some(err.to_string()),
                    )
                })?,
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

/// Records a reader may see, and the offset after the last batch. Control
/// batches are dropped; with read_committed so are aborted transactions.
fn visible(
    batches: Vec<InBatch>,
    aborted: &[(i64, i64)],
    from: i64,
    read_committed: bool,
) -> (VecDeque<InRecord>, i64) {
    let mut next = from;
    let mut out = VecDeque::new();
    // producer id -> first offset of its aborted transaction, once reached.
    let mut aborting: HashMap<i64, i64> = HashMap::new();
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| a.1);
    for b in batches {
        next = next.max(b.last_offset + 1);
        let first = b.records.first().map_or(b.last_offset, |r| r.offset);
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
        out.extend(
            b.records
                .into_iter()
                .filter(|r| r.offset >= from && !r.control),
        );
    }
    (out, next)
}
