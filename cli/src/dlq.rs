//! `kafka-ingest dlq replay`: sends dead letters back where their
//! provenance headers say they came from, each with a `replay-id` header
//! naming the dead letter, so running it again replays nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_ingest::{
    Admin, Consumer, ConsumerRecord, Error, OffsetSpec, ProducerRecord, Result, TopicPartition,
};
use kafka_ingest_pipeline::headers::{self, names, Provenance};
use kafka_ingest_pipeline::{Limiter, Rate, RateLimits};

use crate::Global;

#[derive(Subcommand)]
pub(crate) enum DlqCmd {
    /// Replay dead letters to their original topics (or --to).
    Replay(ReplayArgs),
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The DLQ topic to read.
    #[arg(long, short)]
    topic: String,
    /// Send everything here instead of each record's original topic.
    #[arg(long)]
    to: Option<String>,
    /// Only dead letters written at or after this time: ms since the
    /// epoch, RFC 3339 (2024-05-01T12:00:00Z) or an age such as 30m or 2h.
    #[arg(long)]
    since: Option<String>,
    /// Only records with this key.
    #[arg(long)]
    filter_key: Option<String>,
    /// Records per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Count what would be replayed; send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Counts per outcome.
#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    replayed: u64,
    already_replayed: u64,
    filtered: u64,
    unroutable: u64,
    failed: u64,
    dry_run: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse_since(s: &str) -> std::result::Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Some(d) = kafka_ingest_pipeline::parse_duration(s) {
        return Ok(now_ms() - d.as_millis() as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
        .map_err(|e| format!("--since `{s}`: not ms, an age like 30m, or RFC 3339 ({e})"))
}

/// Reads partitions from given offsets up to the log end seen at start.
pub(crate) struct Reader {
    consumer: Consumer,
    ends: BTreeMap<TopicPartition, i64>,
    idle_since: Instant,
}

impl Reader {
    pub(crate) async fn open(
        g: &Global,
        admin: &Admin,
        topic: &str,
        from: impl Fn(&TopicPartition) -> OffsetSpec,
    ) -> Result<Reader> {
        let d = admin.describe_topic(topic).await?;
        let tps: Vec<TopicPartition> = d
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        let ends: BTreeMap<TopicPartition, i64> = admin
            .list_offsets(
                &tps.iter()
                    .map(|tp| (tp.clone(), OffsetSpec::Latest))
                    .collect::<Vec<_>>(),
            )
            .await?
            .into_iter()
            .map(|(tp, o)| (tp, o.offset))
            .collect();
        let starts = admin
            .list_offsets(
                &tps.iter()
                    .map(|tp| (tp.clone(), from(tp)))
                    .collect::<Vec<_>>(),
            )
            .await?;
        let consumer = g
            .consumer_builder(&[])
            .set("enable.auto.commit", "false")
            .build()
            .await?;
        consumer.assign(&tps).await?;
        for tp in &tps {
            let end = ends.get(tp).copied().unwrap_or(0);
            // -1: no record at or after the timestamp.
            let start = starts
                .get(tp)
                .map_or(end, |o| if o.offset < 0 { end } else { o.offset });
            consumer.seek(tp, start)?;
        }
        Ok(Reader {
            consumer,
            ends,
            idle_since: Instant::now(),
        })
    }

    fn done(&self) -> bool {
        self.ends
            .iter()
            .all(|(tp, end)| self.consumer.position(tp).is_some_and(|p| p >= *end))
    }

    /// The next records before the ends; `None` once every partition is there.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<ConsumerRecord>>> {
        loop {
            if self.done() {
                return Ok(None);
            }
            let mut batch = self.consumer.poll(Duration::from_millis(500)).await?;
            batch.retain(|r| {
                let tp = TopicPartition::new(&*r.topic, r.partition);
                self.ends.get(&tp).is_some_and(|end| r.offset < *end)
            });
            if !batch.is_empty() {
                self.idle_since = Instant::now();
                return Ok(Some(batch));
            }
            if self.idle_since.elapsed() > Duration::from_secs(60) {
                return Err(Error::Timeout {
                    operation: "reading up to the log end".into(),
                    after: Duration::from_secs(60),
                    last: None,
                });
            }
        }
    }

    pub(crate) async fn close(self) {
        self.consumer.close().await;
    }
}

/// Where a dead letter goes back to, and as which partition.
fn route(r: &ConsumerRecord, to: Option<&str>) -> Option<(String, Option<i32>)> {
    let p = Provenance::from_headers(&r.headers);
    match (to, p) {
        (Some(t), p) => Some((t.to_owned(), p.map(|p| p.partition))),
        (None, Some(p)) => Some((p.topic, Some(p.partition))),
        (None, None) => None,
    }
}

fn replay_id(r: &ConsumerRecord) -> String {
    format!("{}:{}:{}", r.topic, r.partition, r.offset)
}

fn selected(r: &ConsumerRecord, a: &ReplayArgs, since: Option<i64>) -> bool {
    since.is_none_or(|s| r.timestamp >= s)
        && a.filter_key
            .as_ref()
            .is_none_or(|k| r.key.as_deref() == Some(k.as_bytes()))
}

pub(crate) async fn run(g: &Global, cmd: DlqCmd) -> Result<ExitCode> {
    let DlqCmd::Replay(a) = cmd;
    let since = match a.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let client = g.client().await?;
    let admin = client.admin();
    let start = move |_: &TopicPartition| since.map_or(OffsetSpec::Earliest, OffsetSpec::Timestamp);

    // Pass 1: which destinations, and since when their replays can exist.
    let mut earliest: HashMap<String, i64> = HashMap::new();
    let mut reader = Reader::open(g, &admin, &a.topic, start).await?;
    while let Some(batch) = reader.next().await? {
        for r in batch.iter().filter(|r| selected(r, &a, since)) {
            if let Some((dest, _)) = route(r, a.to.as_deref()) {
                let e = earliest.entry(dest).or_insert(r.timestamp);
                *e = (*e).min(r.timestamp);
            }
        }
    }
    reader.close().await;

    // Replay ids already in each destination (replays are newer than their dead letters).
    let mut seen: HashSet<Bytes> = HashSet::new();
    let mut partitions: HashMap<String, i32> = HashMap::new();
    for (dest, ts) in &earliest {
        let Ok(d) = admin.describe_topic(dest).await else {
            continue; // does not exist: nothing replayed there yet
        };
        partitions.insert(dest.clone(), d.partitions.len() as i32);
        let ts = *ts;
        let mut reader = Reader::open(g, &admin, dest, move |_| OffsetSpec::Timestamp(ts)).await?;
        while let Some(batch) = reader.next().await? {
            for r in batch {
                if let Some(id) = headers::first(&r.headers, names::REPLAY_ID) {
                    seen.insert(id.clone());
                }
            }
        }
        reader.close().await;
    }

    // Pass 2: replay.
    let producer = g.reaching(g.producer_builder(&[]).build()).await?;
    let mut limiter = a.rate.map(|r| {
        Limiter::new(
            RateLimits {
                records: Some(Rate::per_second(r)),
                ..Default::default()
            },
            Instant::now(),
        )
    });
    let mut counts = Counts {
        dry_run: a.dry_run,
        ..Default::default()
    };
    let mut reader = Reader::open(g, &admin, &a.topic, start).await?;
    while let Some(batch) = reader.next().await? {
        let mut pending = Vec::new();
        for r in batch {
            if !selected(&r, &a, since) {
                counts.filtered += 1;
                continue;
            }
            let Some((dest, partition)) = route(&r, a.to.as_deref()) else {
                counts.unroutable += 1;
                continue;
            };
            let id = replay_id(&r);
            if seen.contains(id.as_bytes()) {
                counts.already_replayed += 1;
                continue;
            }
            if a.dry_run {
                counts.replayed += 1;
                continue;
            }
            if let Some(l) = limiter.as_mut() {
                let tp = TopicPartition::new(dest.clone(), partition.unwrap_or(-1));
                while let Err((_, wait)) = l.try_take(&tp, 1, Instant::now()) {
                    tokio::time::sleep(wait.unwrap_or(Duration::from_secs(1))).await;
                }
            }
            let partition =
                partition.filter(|p| partitions.get(&dest).is_some_and(|n| p < n && *p >= 0));
            let out = ProducerRecord {
                topic: dest,
                partition,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: headers::replay_headers(&r.headers, &id),
                timestamp: None,
            };
            match producer.send(out).await {
                Ok(f) => pending.push(f),
                Err(e) => {
                    eprintln!("replaying {id} failed: {e}");
                    counts.failed += 1;
                }
            }
        }
        for f in pending {
            match f.await {
                Ok(_) => counts.replayed += 1,
                Err(e) => {
                    eprintln!("replay failed: {e}");
                    counts.failed += 1;
                }
            }
        }
    }
    reader.close().await;
    producer.close(Duration::from_secs(10)).await;
    client.close();
    let verb = if a.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    eprintln!(
        "{verb} {}, already replayed {}, filtered {}, unroutable {}, failed {}",
        counts.replayed, counts.already_replayed, counts.filtered, counts.unroutable, counts.failed
    );
    println!(
        "{}",
        serde_json::to_string(&counts).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    );
    Ok(if counts.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
