//! Part 1: an idempotent, batching producer writes IngestEvent v1 and
//! flushes before it closes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_ingest::schema_registry::{AvroSerializer, RecordPart};
use kafka_ingest::{Acks, Producer, ProducerRecord, RecordMetadata, Result};

use super::{events, heading, Ctx, Outcome};
use crate::out;

/// Where part 1's records went: per partition, records acknowledged and
/// their first and last offsets.
pub(crate) struct Produced {
    pub per_partition: BTreeMap<i32, (u64, i64, i64)>,
}

/// Sends events `from..from + n` with `schema`, each with a delivery
/// callback, then flushes; returns the producer and every outcome.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    schema: &str,
    from: u64,
    n: u64,
) -> Outcome<(Producer, Vec<Result<RecordMetadata>>, Duration)> {
    let producer = ctx
        .g
        .reaching(
            ctx.g
                .producer_builder(&[("linger.ms", "20"), ("compression.type", "lz4")])
                .build(),
        )
        .await?;
    let serializer = AvroSerializer::new(
        ctx.registry.clone(),
        &ctx.registry_config,
        RecordPart::Value,
        schema,
    )?;
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    for id in from..from + n {
        let (key, json) = if schema == events::V1 {
            events::v1(id)
        } else {
            events::v2(id)
        };
        let value = serializer.serialize_json(&ctx.names.topic, &json).await?;
        let outcomes = outcomes.clone();
        producer
            .send_with_callback(
                ProducerRecord::new(&ctx.names.topic).key(key).value(value),
                move |r| outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(r),
            )
            .await?;
    }
    let flush_start = Instant::now();
    producer.flush().await?;
    let took = flush_start.elapsed();
    let done = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((producer, done, took))
}

pub(crate) async fn part1(ctx: &Ctx<'_>, n: u64) -> Outcome<Produced> {
    let (producer, outcomes, flush_took) = send(ctx, events::V1, 0, n).await?;
    let mut per_partition: BTreeMap<i32, (u64, i64, i64)> = BTreeMap::new();
    let mut failed = 0;
    for o in &outcomes {
        match o {
            Ok(m) => {
                let e = per_partition
                    .entry(m.partition)
                    .or_insert((0, m.offset, m.offset));
                e.0 += 1;
                e.1 = e.1.min(m.offset);
                e.2 = e.2.max(m.offset);
            }
            Err(_) => failed += 1,
        }
    }
    let c = producer.config();
    heading("1. Producer");
    match producer.producer_id_and_epoch() {
        Some((id, epoch)) => out!(
            "idempotent: producer id {id}, epoch {epoch} (given by the broker); every batch carries it \
             with a sequence number, so a retried batch the broker already has is not written twice"
        ),
        None => out!("idempotent: no (enable.idempotence is off, or acks is not all)"),
    }
    let m = producer.metrics();
    out!(
        "batching: {} records in {} batches, {:.1} records a batch (linger.ms={}, batch.size={}), \
         compression {}, acks={}",
        m.records_sent,
        m.batches_sent,
        m.records_sent as f64 / m.batches_sent.max(1) as f64,
        c.linger.as_millis(),
        c.batch_size,
        c.compression.name(),
        match c.acks {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    );
    out!("delivery confirmed per partition (broker acknowledgements):");
    for (p, (count, first, last)) in &per_partition {
        out!("  partition {p}: {count} records, offsets {first}..{last}");
    }
    let report = producer.close(Duration::from_secs(10)).await;
    out!(
        "graceful flush: flush() returned after {} of {n} delivery callbacks ran ({failed} failed) \
         in {:.0?}; close() left {} undelivered",
        outcomes.len(),
        flush_took,
        report.undelivered
    );
    Ok(Produced { per_partition })
}
