//! `kafka-ingest pipeline`: the ingestion pipeline with a built-in demo
//! handler on JSON values (the seed's slow consumer, with retries, retry
//! tiers and a DLQ).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kafka_ingest::{Producer, ProducerRecord, Result};
use kafka_ingest_pipeline::{
    BufferLimits, DlqLimit, Event, FailureKind, HandlerError, HandlerResult, Jitter, Ordering,
    Pipeline, PipelineHandle, Rate, Record, ResultExt, Retry,
};

use crate::prom::MetricsArg;
use crate::Global;

#[derive(Clone, Copy, ValueEnum)]
enum OrderingArg {
    Key,
    Partition,
    Unordered,
}

#[derive(Clone, Copy, ValueEnum)]
enum JitterArg {
    None,
    Full,
    Equal,
    Decorrelated,
}

#[derive(Args)]
pub(crate) struct PipelineArgs {
    /// Source topic.
    #[arg(long, short)]
    topic: String,
    /// Consumer group.
    #[arg(long, short)]
    group: String,
    /// One at a time per key, per partition, or unordered.
    #[arg(long, value_enum, default_value = "key")]
    ordering: OrderingArg,
    /// Handlers running at once.
    #[arg(long, default_value_t = 16)]
    max_in_flight: usize,
    /// Records per second over all partitions.
    #[arg(long)]
    rate: Option<f64>,
    /// Retry tiers after the in-place attempts, e.g. 1s,10s (then the DLQ).
    #[arg(long, value_delimiter = ',')]
    retry_tiers: Vec<String>,
    /// In-place attempts, the first included, before the next tier.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// First in-place backoff (ms); it doubles up to --max-backoff-ms.
    #[arg(long, default_value_t = 100)]
    backoff_ms: u64,
    /// Longest in-place backoff (ms).
    #[arg(long, default_value_t = 10_000)]
    max_backoff_ms: u64,
    /// Backoff jitter.
    #[arg(long, value_enum, default_value = "full")]
    jitter: JitterArg,
    /// DLQ topic (default T-dlt).
    #[arg(long)]
    dlq_topic: Option<String>,
    /// Pause the partition after this many dead letters in a row (DLQ breaker).
    #[arg(long)]
    dlq_max_consecutive: Option<u32>,
    /// Simulated work per record (ms).
    #[arg(long, default_value_t = 0)]
    process_ms: u64,
    /// Write each processed record here (same key and value, plus an
    /// `attempts` header).
    #[arg(long)]
    output_topic: Option<String>,
    /// Bytes buffered over all partitions before they are paused.
    #[arg(long)]
    buffer_bytes: Option<usize>,
    /// Commit interval (ms).
    #[arg(long, default_value_t = 1000)]
    commit_interval_ms: u64,
    #[command(flatten)]
    metrics: MetricsArg,
}

/// A pipeline member with the demo handler (for `lab`): its pipeline, its
/// producer, and the handler to run it with.
pub(crate) struct Member {
    pub pipeline: Pipeline,
    pub producer: Producer,
    process: Duration,
    out: Option<(Producer, String)>,
}

impl Member {
    /// Runs until shutdown; returns the final metrics.
    pub async fn run(
        self,
    ) -> std::result::Result<kafka_ingest_pipeline::Metrics, kafka_ingest_pipeline::Error> {
        let (process, out) = (self.process, self.out);
        self.pipeline
            .run(move |rec| demo(rec, process, out.clone()))
            .await
    }
}

impl PipelineArgs {
    /// Parses `pipeline` flags (so callers get the same defaults).
    pub(crate) fn parse(args: &[&str]) -> Result<PipelineArgs> {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            a: PipelineArgs,
        }
        use clap::Parser;
        Wrap::try_parse_from(std::iter::once("pipeline").chain(args.iter().copied()))
            .map(|w| w.a)
            .map_err(|e| kafka_ingest::Error::InvalidArgument {
                message: e.to_string(),
            })
    }
}

/// The demo handler: `bad` or non-JSON is fatal, `simulate_error` always
/// fails, `fail_times: n` fails the first n attempts, the rest succeed
/// after `process_ms` (and are written to the output topic).
pub(crate) async fn demo(
    rec: Record,
    process: Duration,
    out: Option<(Producer, String)>,
) -> HandlerResult {
    let value = rec.value.as_deref().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(value).fatal()?;
    if json["bad"] == serde_json::Value::Bool(true) {
        return Err(HandlerError::new(
            FailureKind::Fatal,
            "demo::BadRecord",
            "the record is marked bad",
        ));
    }
    if json["simulate_error"] == serde_json::Value::Bool(true) {
        return Err(HandlerError::new(
            FailureKind::Retryable,
            "demo::SimulatedError",
            "simulated error",
        ));
    }
    if let Some(n) = json["fail_times"].as_u64() {
        if u64::from(rec.attempt()) <= n {
            let msg = format!("failing attempt {} of the first {n}", rec.attempt());
            return Err(HandlerError::new(
                FailureKind::Retryable,
                "demo::FailTimes",
                msg,
            ));
        }
    }
    if !process.is_zero() {
        tokio::time::sleep(process).await;
    }
    if let Some((producer, topic)) = out {
        let mut r = ProducerRecord::new(topic).header("attempts", rec.attempt().to_string());
        r.key = rec.key.clone();
        r.value = rec.value.clone();
        producer.send(r).await.retryable()?.await.retryable()?;
    }
    Ok(())
}

fn log(e: &Event, status: bool) {
    if status {
        eprint!("\r\x1b[K");
    }
    eprintln!("{e}");
}

fn status_line(h: &PipelineHandle) -> String {
    let m = h.metrics();
    let paused: usize = m.paused.values().sum();
    format!(
        "processed {} | retried {} | dead-lettered {} | in flight {} | buffered {} KiB | paused {} | lag {}",
        m.processed,
        m.retried + m.tiers.iter().map(|t| t.forwarded).sum::<u64>(),
        m.dead_lettered,
        m.in_flight,
        m.buffered_bytes / 1024,
        paused,
        m.commit_lag
    )
}

/// Builds a pipeline member from the flags; `on_event` sees its events.
pub(crate) async fn build(
    g: &Global,
    a: &PipelineArgs,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
) -> Result<Member> {
    let consumer = g
        .consumer_builder(&[("auto.offset.reset", "earliest")])
        .set("group.id", &a.group);
    // Every forward and output record is awaited: lingering only adds latency.
    let producer = g
        .reaching(g.producer_builder(&[("linger.ms", "0")]).build())
        .await?;
    let retry = Retry::exponential(
        Duration::from_millis(a.backoff_ms),
        Duration::from_millis(a.max_backoff_ms),
    )
    .max_attempts(a.max_attempts)
    .jitter(match a.jitter {
        JitterArg::None => Jitter::None,
        JitterArg::Full => Jitter::Full,
        JitterArg::Equal => Jitter::Equal,
        JitterArg::Decorrelated => Jitter::Decorrelated,
    });
    let mut b = Pipeline::builder(consumer, producer.clone())
        .topics([&a.topic])
        .ordering(match a.ordering {
            OrderingArg::Key => Ordering::Key,
            OrderingArg::Partition => Ordering::Partition,
            OrderingArg::Unordered => Ordering::Unordered,
        })
        .max_in_flight(a.max_in_flight)
        .retry(retry)
        .retry_topics(&a.retry_tiers)
        .commit_interval(Duration::from_millis(a.commit_interval_ms))
        .on_event(on_event);
    if let Some(r) = a.rate {
        b = b.rate_limit(Rate::per_second(r));
    }
    if let Some(d) = &a.dlq_topic {
        b = b.dead_letter_topic(d);
    }
    if let Some(n) = a.dlq_max_consecutive {
        b = b.dlq_limit(DlqLimit::consecutive(n));
    }
    if let Some(max_bytes) = a.buffer_bytes {
        b = b.buffer(BufferLimits {
            max_bytes,
            ..BufferLimits::default()
        });
    }
    let pipeline = b
        .build()
        .map_err(|e| kafka_ingest::Error::InvalidArgument {
            message: e.to_string(),
        })?;
    Ok(Member {
        pipeline,
        process: Duration::from_millis(a.process_ms),
        out: a.output_topic.clone().map(|t| (producer.clone(), t)),
        producer,
    })
}

pub(crate) async fn run(g: &Global, a: PipelineArgs) -> Result<ExitCode> {
    let status = std::io::stderr().is_terminal();
    let member = match build(g, &a, move |e| log(e, status)).await {
        Ok(m) => m,
        Err(kafka_ingest::Error::InvalidArgument { message }) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e),
    };
    let producer = member.producer.clone();
    let pipeline = &member.pipeline;
    let handle = pipeline.handle();
    {
        let h = handle.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            h.shutdown();
        });
    }
    let endpoint = a.metrics.serve()?;
    if let Some(e) = &endpoint {
        e.add_pipeline("pipeline", &handle);
        e.add_producer("pipeline", &producer);
    }
    let ticker = status.then(|| {
        let h = handle.clone();
        tokio::spawn(async move {
            loop {
                eprint!("\r\x1b[K{}", status_line(&h));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let result = member.run().await;
    if let Some(t) = ticker {
        t.abort();
        eprintln!();
    }
    producer.close(Duration::from_secs(10)).await;
    match result {
        Ok(m) => {
            println!(
                "{}",
                serde_json::to_string(&m).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
