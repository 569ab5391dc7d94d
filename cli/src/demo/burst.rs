//! Part 4: a burst through kafka-ingest-pipeline with a slow handler (the
//! `kafka-ingest pipeline` demo handler): a small buffer pauses the hot
//! partition, failing records go through two retry tiers, poison records
//! land in the DLQ with their provenance, and a rate limit holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_ingest::{ConsumerRecord, NewTopic, OffsetSpec, ProducerRecord};
use kafka_ingest_pipeline::headers::{self, names, Provenance};
use kafka_ingest_pipeline::{
    BufferLimits, Ordering, PartitionLimits, Pipeline, Rate, Reason, Record, Retry,
};

use super::{heading, Ctx, Failure, Outcome};
use crate::dlq::Reader;
use crate::lag::burrow::Status;
use crate::lag::{GroupLag, Monitor};
use crate::out;

/// Records per second over all partitions (handler calls, retries included).
const RATE: f64 = 200.0;
/// The slow handler's work per record.
const WORK: Duration = Duration::from_millis(10);
const IN_FLIGHT: usize = 8;
const TIERS: [&str; 2] = ["500ms", "1s"];
/// Bytes buffered over all partitions.
const BUFFER: usize = 16 << 10;
/// Records buffered per partition (paused at 80%, resumed at 50%).
const PARTITION_RECORDS: usize = 50;
/// Attempts in place at the source, before the first tier.
const ATTEMPTS: u32 = 2;
const PATIENCE: Duration = Duration::from_secs(60);

/// What a burst record asks of the demo handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    /// Fatal: straight to the DLQ.
    Bad,
    /// Fails every attempt: through both tiers, then the DLQ.
    Always,
    /// Fails its first n attempts: 1 is retried in place, 2 succeeds in
    /// the first tier, 3 in the second (a tier makes one attempt).
    FailTimes(u64),
}

fn kind(i: u64) -> Kind {
    match (i % 50, i % 25) {
        (7, _) => Kind::Bad,
        (27, _) => Kind::Always,
        (19, _) => Kind::FailTimes(3),
        (_, 3) => Kind::FailTimes(1),
        (_, 13) => Kind::FailTimes(2),
        _ => Kind::Ok,
    }
}

fn burst_record(topic: &str, i: u64) -> ProducerRecord {
    // A third of the records share one key: one at a time (key order),
    // so their partition fills the buffer and is paused.
    let key = if i.is_multiple_of(3) {
        "hot".to_owned()
    } else {
        format!("k{:02}", i % 30)
    };
    let extra = match kind(i) {
        Kind::Ok => String::new(),
        Kind::Bad => r#","bad":true"#.to_owned(),
        Kind::Always => r#","simulate_error":true"#.to_owned(),
        Kind::FailTimes(n) => format!(r#","fail_times":{n}"#),
    };
    ProducerRecord::new(topic)
        .key(key)
        .value(format!(r#"{{"id":{i}{extra}}}"#))
}

fn id_of(value: Option<&[u8]>) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(value.unwrap_or_default())
        .ok()
        .and_then(|j| j["id"].as_u64())
}

/// The burst group's lag while the burst ran: (time since the start,
/// total lag, Burrow status) samples, the report at the largest lag, and
/// the monitor, whose window part 5 goes on filling.
pub(crate) struct BurstLag {
    pub samples: Vec<(Duration, i64, Status)>,
    pub peak: Option<GroupLag>,
    pub monitor: Monitor,
}

pub(crate) struct Part4 {
    pub sent: u64,
    pub poison: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    pub duplicates: u64,
    pub lost: u64,
    pub retried: u64,
    pub lag: BurstLag,
}

/// Pause and resume counts seen in `Pipeline::metrics()` samples.
#[derive(Debug, Default)]
struct Pauses {
    paused: bool,
    pauses: u64,
    resumes: u64,
    most: usize,
}

impl Pauses {
    fn sample(&mut self, now: usize) {
        self.most = self.most.max(now);
        if now > 0 && !self.paused {
            self.pauses += 1;
        } else if now == 0 && self.paused {
            self.resumes += 1;
        }
        self.paused = now > 0;
    }
}

/// The most calls within any one second.
fn busiest_second(calls: &[Instant]) -> usize {
    let mut most = 0;
    let mut from = 0;
    for (i, t) in calls.iter().enumerate() {
        while *t - calls[from] >= Duration::from_secs(1) {
            from += 1;
        }
        most = most.max(i + 1 - from);
    }
    most
}

pub(crate) async fn part4(ctx: &Ctx<'_>, n: u64) -> Outcome<Part4> {
    let topic = &ctx.names.burst_topic;
    ctx.admin.create_topic(NewTopic::new(topic, 3, 1)).await?;
    let producer = ctx
        .g
        .reaching(ctx.g.producer_builder(&[("linger.ms", "0")]).build())
        .await?;
    let mut deliveries = Vec::new();
    for i in 0..n {
        deliveries.push(producer.send(burst_record(topic, i)).await?);
    }
    for d in deliveries {
        d.await?;
    }
    let poison = (0..n)
        .filter(|i| matches!(kind(*i), Kind::Bad | Kind::Always))
        .count() as u64;

    let consumer = ctx
        .g
        .consumer_builder(&[
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "20"),
        ])
        .set("group.id", &ctx.names.burst_group);
    let rate = Rate::per_second(RATE);
    let pipeline = Pipeline::builder(consumer, producer.clone())
        .topics([topic])
        .ordering(Ordering::Key)
        .max_in_flight(IN_FLIGHT)
        .rate_limit(rate)
        .buffer(BufferLimits {
            max_bytes: BUFFER,
            ..BufferLimits::default()
        })
        .partition_limits(PartitionLimits {
            max_records: PARTITION_RECORDS,
            ..PartitionLimits::default()
        })
        .retry(
            Retry::exponential(Duration::from_millis(50), Duration::from_millis(200))
                .max_attempts(ATTEMPTS),
        )
        .retry_topics(TIERS)
        .commit_interval(Duration::from_millis(250))
        .build()?;
    let handle = pipeline.handle();
    let calls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let done: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let task = {
        let (calls, done) = (calls.clone(), done.clone());
        tokio::spawn(pipeline.run(move |rec: Record| {
            let (calls, done) = (calls.clone(), done.clone());
            async move {
                calls
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Instant::now());
                let id = id_of(rec.value.as_deref());
                let r = crate::pipeline::demo(rec, WORK, None).await;
                if let (Ok(()), Some(id)) = (&r, id) {
                    *done
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(id)
                        .or_default() += 1;
                }
                r
            }
        }))
    };

    let start = Instant::now();
    let (mut buffer, mut limited) = (Pauses::default(), Pauses::default());
    let mut lag = BurstLag {
        samples: Vec::new(),
        peak: None,
        monitor: super::lag::monitor(&ctx.names.burst_group),
    };
    let mut tick = 0u64;
    loop {
        let m = handle.metrics();
        buffer.sample(m.paused.get(&Reason::Buffer).copied().unwrap_or(0));
        limited.sample(m.paused.get(&Reason::RateLimit).copied().unwrap_or(0));
        if tick.is_multiple_of(5) {
            // Before the first join the group may not exist yet.
            if let Ok(now) = lag.monitor.sample(&ctx.admin).await {
                if now.status != Status::NotFound {
                    let t = now.total_lag;
                    lag.samples.push((start.elapsed(), t, now.status));
                    if lag.peak.as_ref().is_none_or(|p| t > p.total_lag) {
                        lag.peak = Some(now);
                    }
                }
            }
        }
        tick += 1;
        if m.processed + m.dead_lettered >= n || task.is_finished() {
            break;
        }
        if start.elapsed() > PATIENCE {
            handle.shutdown();
            let _ = task.await;
            return Err(Failure::Stalled(format!(
                "the burst was not through the pipeline within {PATIENCE:?}: {} processed, {} dead-lettered of {n}",
                m.processed, m.dead_lettered
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    handle.shutdown();
    let m = task
        .await
        .map_err(|e| Failure::Stalled(format!("the pipeline task failed: {e}")))??;
    producer.close(Duration::from_secs(10)).await;

    // The DLQ as a reader sees it.
    let dlq_topic = format!("{topic}-dlt");
    let mut reader = Reader::open(ctx.g, &ctx.admin, &dlq_topic, |_| OffsetSpec::Earliest).await?;
    let mut dead: Vec<ConsumerRecord> = Vec::new();
    while let Some(batch) = reader.next().await? {
        dead.extend(batch);
    }
    reader.close().await;
    let mut dead_ids: HashMap<u64, u64> = HashMap::new();
    for r in &dead {
        if let Some(id) = id_of(r.value.as_deref()) {
            *dead_ids.entry(id).or_default() += 1;
        }
    }
    let done = std::mem::take(&mut *done.lock().unwrap_or_else(|p| p.into_inner()));
    let calls = std::mem::take(&mut *calls.lock().unwrap_or_else(|p| p.into_inner()));
    let lost = (0..n)
        .filter(|i| !done.contains_key(i) && !dead_ids.contains_key(i))
        .count() as u64;
    let both = done.keys().filter(|i| dead_ids.contains_key(i)).count() as u64;
    let duplicates = done.values().map(|c| c - 1).sum::<u64>()
        + dead_ids.values().map(|c| c - 1).sum::<u64>()
        + both;
    let forwarded: u64 = m.tiers.iter().map(|t| t.forwarded).sum();

    heading(&format!(
        "4. Backpressure and retries: pipeline group {}",
        ctx.names.burst_group
    ));
    out!(
        "a burst of {n} records into {topic}; the handler takes {WORK:?} a record, {IN_FLIGHT} at once, \
         one at a time per key (a third share the key `hot`)"
    );
    out!(
        "buffer {} KiB, {PARTITION_RECORDS} records a partition: partitions paused for the buffer {} times \
         and resumed {} times (at most {} at once); peak buffered {:.1} KiB",
        BUFFER >> 10,
        buffer.pauses,
        buffer.resumes,
        buffer.most,
        m.max_buffered_bytes as f64 / 1024.0
    );
    let window = match (calls.first(), calls.last()) {
        (Some(a), Some(b)) => (*b - *a).as_secs_f64(),
        _ => 0.0,
    };
    let busiest = busiest_second(&calls);
    let allowed = (RATE + rate.burst) as usize;
    out!(
        "rate limit {RATE:.0} records/s (burst {:.0}): {} handler calls in {window:.1} s; at most {busiest} \
         in any one second, the bucket allows {allowed}: {}; partitions waited {} ms for tokens \
         (paused {} times)",
        rate.burst,
        calls.len(),
        if busiest <= allowed { "holding" } else { "EXCEEDED" },
        m.throttled_ms,
        limited.pauses
    );
    let tiers: Vec<String> = m
        .tiers
        .iter()
        .map(|t| {
            format!(
                "{} ({} ms) {} forwarded, {} attempted",
                t.topic, t.delay_ms, t.forwarded, t.attempted
            )
        })
        .collect();
    out!(
        "retries: {} in place ({ATTEMPTS} attempts at the source), then one attempt a tier: {}",
        m.retried,
        tiers.join("; ")
    );
    out!(
        "outcome: {} processed, {} dead-lettered ({} fatal), {} attempts in {:.1} s",
        m.processed,
        m.dead_lettered,
        m.fatal,
        m.attempts,
        took.as_secs_f64()
    );
    out!(
        "DLQ {dlq_topic}: {} records for {} poison records sent; provenance of two of them:",
        dead.len(),
        poison
    );
    let fatal = dead.iter().find(|r| {
        headers::first(&r.headers, names::EXCEPTION_FQCN)
            .is_some_and(|c| &c[..] == b"demo::BadRecord")
    });
    let exhausted = dead.iter().find(|r| {
        headers::first(&r.headers, names::EXCEPTION_FQCN)
            .is_some_and(|c| &c[..] == b"demo::SimulatedError")
    });
    for r in [fatal, exhausted].into_iter().flatten() {
        print_dead(r);
    }
    Ok(Part4 {
        sent: n,
        poison,
        processed: done.values().sum(),
        dead_lettered: dead_ids.len() as u64,
        duplicates,
        lost,
        retried: m.retried + forwarded,
        lag,
    })
}

fn text(r: &ConsumerRecord, key: &str) -> String {
    headers::first(&r.headers, key)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn print_dead(r: &ConsumerRecord) {
    let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
    out!("  {value} at {}-{}@{}:", r.topic, r.partition, r.offset);
    if let Some(p) = Provenance::from_headers(&r.headers) {
        out!(
            "    original {}-{}@{}, group {}",
            p.topic,
            p.partition,
            p.offset,
            p.group.unwrap_or_default()
        );
    }
    out!(
        "    error {}: {} ({} {})",
        text(r, names::EXCEPTION_FQCN),
        text(r, names::EXCEPTION_MESSAGE),
        names::ATTEMPTS,
        headers::attempts(&r.headers)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_second_counts_calls_within_any_one_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let calls = [at(0), at(100), at(900), at(1000), at(1050), at(2500)];
        // 100..1050 holds four calls; 0..999 three.
        assert_eq!(busiest_second(&calls), 4);
        assert_eq!(busiest_second(&[]), 0);
    }

    #[test]
    fn poison_and_flaky_records_of_a_burst() {
        let kinds: Vec<Kind> = (0..600).map(kind).collect();
        let count = |k: Kind| kinds.iter().filter(|x| **x == k).count();
        assert_eq!(count(Kind::Bad) + count(Kind::Always), 24);
        assert_eq!(count(Kind::FailTimes(1)), 24);
        assert_eq!(count(Kind::FailTimes(2)), 24);
        assert_eq!(count(Kind::FailTimes(3)), 12);
    }
}
