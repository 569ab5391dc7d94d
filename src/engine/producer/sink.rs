//! One ProduceRequest to one broker and the handling of its response.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use bytes::BytesMut;

use super::accumulator::Batch;
use super::ProducerEngine;
use crate::cluster::wire::{produce, BatchBody, ProducerStamp};
use crate::cluster::Compression;
use crate::cluster::{codes, msg, versions, ClusterError, ErrorCode, PendingResponse, Role};

use crate::cluster::codes::{
    DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, MESSAGE_TOO_LARGE,
    OUT_OF_ORDER_SEQUENCE_NUMBER, PRODUCER_FENCED, RECORD_LIST_TOO_LARGE, UNKNOWN_PRODUCER_ID,
};

/// A request's batches and how its outcome will arrive.
enum InFlight {
    /// Written; the response comes on this handle.
    Awaiting(Vec<Batch>, PendingResponse<msg::ProduceRequest>),
    /// Already known (acks=0, or the request could not be sent).
    Known(Vec<Batch>, Result<Option<Outcomes>, ClusterError>),
}

/// Starts the sink of one broker: a sender that encodes and writes requests
/// in the order batches are queued (sequence order per partition), and a
/// settler that handles their outcomes in that same order (franz-go's
/// sequenced responses), so acknowledgements never overtake each other.
pub(super) fn spawn(e: &Arc<ProducerEngine>, leader: i32) -> mpsc::Sender<Vec<Batch>> {
    let depth = e.cfg.max_in_flight.max(1);
    let (tx, rx) = mpsc::channel(depth);
    let (settle_tx, settle_rx) = mpsc::channel(depth);
    e.tasks.spawn(
        "producer sink",
        send(Arc::downgrade(e), leader, rx, settle_tx),
    );
    e.tasks.spawn(
        "producer settler",
        settle(Arc::downgrade(e), leader, settle_rx),
    );
    tx
}

async fn send(
    engine: Weak<ProducerEngine>,
    leader: i32,
    mut rx: mpsc::Receiver<Vec<Batch>>,
    settle: mpsc::Sender<InFlight>,
) -> Result<(), ClusterError> {
    while let Some(batches) = rx.recv().await {
        let Some(e) = engine.upgrade() else {
            return Ok(());
        };
        let next = start(&e, leader, batches).await;
        drop(e);
        if let Err(mpsc::error::SendError(lost)) = settle.send(next).await {
            // The settler is gone (it failed): report instead of dropping.
            let (InFlight::Awaiting(b, _) | InFlight::Known(b, _)) = lost;
            if let Some(e) = engine.upgrade() {
                done(&e, leader, b, Err(ClusterError::Closed));
            }
        }
    }
    Ok(())
}

async fn start(e: &ProducerEngine, leader: i32, mut batches: Vec<Batch>) -> InFlight {
    let topics = match request(e, &mut batches) {
        Ok(t) => t,
        Err(err) => return InFlight::Known(batches, Err(err)),
    };
    let conn = match e.cluster.broker_for(leader, Role::Produce).await {
        Ok(c) => c,
        Err(err) => return InFlight::Known(batches, Err(err)),
    };
    let acks = e.cfg.acks;
    let timeout = e.cluster.config().conn.request_timeout;
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let body = |buf: &mut BytesMut, v: i16| produce::write_body(buf, v, acks, timeout_ms, &topics);
    if acks == 0 {
        let r = conn
            .send_no_response_with::<msg::ProduceRequest>(versions::PRODUCE, body)
            .await
            .map(|_| None)
            .map_err(ClusterError::from);
        return InFlight::Known(batches, r);
    }
    match conn
        .begin_with::<msg::ProduceRequest>(versions::PRODUCE, body)
        .await
    {
        Ok(pending) => InFlight::Awaiting(batches, pending),
        Err(err) => InFlight::Known(batches, Err(err.into())),
    }
}

async fn settle(
    engine: Weak<ProducerEngine>,
    leader: i32,
    mut rx: mpsc::Receiver<InFlight>,
) -> Result<(), ClusterError> {
    while let Some(next) = rx.recv().await {
        let (batches, result) = match next {
            InFlight::Known(b, r) => (b, r),
            InFlight::Awaiting(b, pending) => {
                let r = pending
                    .response()
                    .await
                    .map(|(resp, _)| Some(outcomes(resp)))
                    .map_err(ClusterError::from);
                (b, r)
            }
        };
        match engine.upgrade() {
            Some(e) => done(&e, leader, batches, result),
            // Dropped producer: the batches' replies report Closed on drop.
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Settles every batch of one request.
fn done(
    e: &ProducerEngine,
    leader: i32,
    batches: Vec<Batch>,
    result: Result<Option<Outcomes>, ClusterError>,
) {
    if let Ok(mut m) = e.broker_in_flight.lock() {
        if let Some(n) = m.get_mut(&leader) {
            *n = n.saturating_sub(1);
        }
    }
    match result {
        Err(err) => {
            // The whole request failed (connection, timeout): every batch retries.
            if err.is_retriable() {
                e.cluster.invalidate();
            }
            for b in batches {
                if err.is_auth() {
                    // A refused login will not heal by retrying.
                    e.finish(b, Err(err.clone()));
                } else {
                    e.retry_or_fail(b, err.clone());
                }
            }
        }
        Ok(None) => {
            // acks=0: written is all we learn.
            for b in batches {
                e.finish(b, Ok((-1, -1)));
            }
        }
        Ok(Some(mut outcomes)) => {
            for b in batches {
                let key = (b.tp.topic.clone(), b.tp.partition);
                match outcomes.remove(&key) {
                    Some(o) => handle(e, b, o),
                    None => {
                        let err = ClusterError::broker(
                            format!("producing to {}", b.tp),
                            ErrorCode(codes::UNKNOWN_SERVER_ERROR),
                            Some("partition missing from the response".into()),
                        );
                        e.retry_or_fail(b, err);
                    }
                }
            }
        }
    }
    e.wake.notify_one();
}

struct Outcome {
    code: i16,
    base_offset: i64,
    log_append_time: i64,
    message: Option<String>,
}

type Outcomes = std::collections::HashMap<(String, i32), Outcome>;

fn outcomes(resp: msg::ProduceResponse) -> Outcomes {
    let mut out = Outcomes::new();
    for t in resp.responses {
        for p in t.partition_responses {
            out.insert(
                (t.name.0.to_string(), p.index),
                Outcome {
                    code: p.error_code,
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                    message: p.error_message.map(|m| m.to_string()),
                },
            );
        }
    }
    out
}

/// The request's topics and partitions: compressed batches are packed here
/// (once: a resend reuses it) and give back the buffer memory compression
/// saved; uncompressed ones are written straight into the request frame by
/// the connection.
fn request<'b>(
    e: &ProducerEngine,
    batches: &'b mut [Batch],
) -> Result<Vec<produce::Topic<'b>>, ClusterError> {
    let packed = match e.cfg.compression {
        Compression::None => Vec::new(),
        codec => pack(e, batches, codec)?,
    };
    let batches: &'b [Batch] = batches;
    let mut packed = packed.into_iter();
    let mut topics: Vec<produce::Topic<'b>> = Vec::new();
    for b in batches {
        let records = match packed.next() {
            Some(wire) => produce::Records::Encoded(wire),
            None => produce::Records::Body(&b.body, stamp(b)),
        };
        let part = (b.tp.partition, records);
        match topics.iter_mut().find(|t| t.name == b.tp.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(produce::Topic {
                name: &b.tp.topic,
                partitions: vec![part],
            }),
        }
    }
    Ok(topics)
}

fn stamp(b: &Batch) -> ProducerStamp {
    b.sequence.map_or(ProducerStamp::NONE, |s| ProducerStamp {
        producer_id: s.producer_id,
        epoch: s.epoch,
        base_sequence: s.base_sequence,
    })
}

/// Packs each batch (compressed once, its bodies freed), gives back the
/// buffer memory compression saved, and learns the topic's ratio.
fn pack(
    e: &ProducerEngine,
    batches: &mut [Batch],
    codec: Compression,
) -> Result<Vec<bytes::Bytes>, ClusterError> {
    let mut packed = Vec::with_capacity(batches.len());
    let mut ratios = Vec::new();
    for b in batches.iter_mut() {
        let (wire, freed) = b
            .body
            .pack(stamp(b), codec)
            .map_err(|err| ClusterError::Encode {
                what: format!("a record batch for {}", b.tp),
                source: err,
            })?;
        if freed > 0 {
            let len = wire.len().saturating_sub(BatchBody::HEADER_BYTES);
            ratios.push((packed.len(), len as f32 / freed as f32));
            if let Some(p) = b._permit.as_mut() {
                p.release(freed.saturating_sub(wire.len()));
            }
        }
        packed.push(wire);
    }
    if !ratios.is_empty() {
        let mut acc = e.acc();
        for (i, r) in ratios {
            acc.observe_ratio(&batches[i].tp.topic, r);
        }
    }
    Ok(packed)
}

fn handle(e: &ProducerEngine, b: Batch, o: Outcome) {
    let ctx = format!("producing to {}", b.tp);
    let ctx = move || ctx.clone();
    match o.code {
        0 => e.finish(b, Ok((o.base_offset, o.log_append_time))),
        // An older duplicate the broker no longer has the offset for: delivered.
        DUPLICATE_SEQUENCE_NUMBER => e.finish(b, Ok((-1, -1))),
        OUT_OF_ORDER_SEQUENCE_NUMBER => {
            let next_expected = e
                .acc()
                .parts
                .get(&b.tp)
                .map(|q| q.last_acked.wrapping_add(1))
                .unwrap_or(0);
            let first_unacked = b.sequence.is_some_and(|s| s.base_sequence == next_expected);
            if first_unacked {
                // Nothing earlier is outstanding, so the broker lost data or state:
                // fail this batch and restart sequences under a new epoch.
                e.needs_bump.store(true, Ordering::Release);
                let err = ClusterError::broker(ctx(), ErrorCode(o.code), o.message);
                e.finish(b, Err(err));
            } else {
                // An earlier batch failed; resend in order.
                e.retry_or_fail(b, ClusterError::broker(ctx(), ErrorCode(o.code), o.message));
            }
        }
        UNKNOWN_PRODUCER_ID => {
            // The broker dropped our producer state (KIP-360): new epoch, resend.
            e.needs_bump.store(true, Ordering::Release);
            e.retry_or_fail(b, ClusterError::broker(ctx(), ErrorCode(o.code), o.message));
        }
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE => {
            e.split_or_fail(b, ClusterError::broker(ctx(), ErrorCode(o.code), o.message))
        }
        INVALID_PRODUCER_EPOCH | PRODUCER_FENCED => {
            e.needs_bump.store(true, Ordering::Release);
            e.finish(
                b,
                Err(ClusterError::broker(ctx(), ErrorCode(o.code), o.message)),
            );
        }
        code => {
            let err = ClusterError::broker(ctx(), ErrorCode(code), o.message);
            if codes::needs_metadata_refresh(code) {
                e.cluster.invalidate();
            }
            if err.is_retriable() {
                e.retry_or_fail(b, err);
            } else {
                e.finish(b, Err(err));
            }
        }
    }
}
