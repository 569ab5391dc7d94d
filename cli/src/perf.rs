//! `kafka-ingest perf produce|consume`: burst load and throughput, reported
//! like Java's ProducerPerformance / ConsumerPerformance.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Subcommand;
use kafka_ingest::{ProducerRecord, Result, TopicPartition};

use crate::prom::MetricsArg;
use crate::Global;

#[derive(Subcommand)]
pub(crate) enum PerfCmd {
    /// Send NUM records of SIZE bytes as fast as possible (or at --throughput/s).
    Produce {
        /// Topic to write to.
        #[arg(long, short)]
        topic: String,
        /// How many records to send.
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        /// Value size of each record in bytes.
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Records per second; -1 for no limit.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        throughput: i64,
        /// Producer property KEY=VALUE (repeatable), e.g. acks=1, compression.type=lz4.
        // Applied in command-line order with -X (settings::explicit_settings).
        #[allow(dead_code)]
        #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
        props: Vec<String>,
        #[command(flatten)]
        metrics: MetricsArg,
    },
    /// Read NUM records from the start of every partition (assigned, or
    /// through --group).
    Consume {
        /// Topic to read.
        #[arg(long, short)]
        topic: String,
        /// How many records to read.
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        /// Subscribe as this consumer group (from earliest) instead of
        /// assigning every partition; the clock starts at the first record.
        #[arg(long, short)]
        group: Option<String>,
        /// Consumer property KEY=VALUE (repeatable).
        // Applied in command-line order with -X (settings::explicit_settings).
        #[allow(dead_code)]
        #[arg(long = "consumer-prop", value_name = "KEY=VALUE")]
        props: Vec<String>,
        #[command(flatten)]
        metrics: MetricsArg,
    },
}

pub(crate) async fn run(global: &Global, cmd: PerfCmd) -> Result<ExitCode> {
    match cmd {
        PerfCmd::Produce {
            topic,
            num_records,
            record_size,
            throughput,
            props: _,
            metrics,
        } => {
            // Microseconds, auto-resizing with 3 significant digits; and failures.
            let tally = Arc::new(Mutex::new((
                hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid"),
                0u64,
            )));
            // Each record's tag is its send time in ns since `origin` (the
            // delivery handler reads it back): nothing allocated per record,
            // as bench-peers' librdkafka harness does with its opaque.
            let origin = Instant::now();
            let handler = {
                let tally = tally.clone();
                move |r: Result<_>, sent_ns: u64| {
                    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                    match r {
                        // `record` resizes; `saturating_record` would clamp.
                        Ok(_) => {
                            let ns = (origin.elapsed().as_nanos() as u64).saturating_sub(sent_ns);
                            let _ = t.0.record(ns / 1000);
                        }
                        Err(_) => t.1 += 1,
                    }
                }
            };
            let producer = global
                .reaching(
                    global
                        .producer_builder(&[])
                        .delivery_handler(handler)
                        .build(),
                )
                .await?;
            let endpoint = metrics.serve()?;
            if let Some(e) = &endpoint {
                e.add_producer("perf", &producer);
            }
            // Random-looking but fixed payload, like ProducerPerformance's.
            let payload = Bytes::from(
                (0..record_size)
                    .map(|i| b'A' + (i * 7 % 26) as u8)
                    .collect::<Vec<u8>>(),
            );
            let start = Instant::now();
            for i in 0..num_records {
                if throughput > 0 {
                    let due = start + Duration::from_secs_f64(i as f64 / throughput as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent_ns = origin.elapsed().as_nanos() as u64;
                producer
                    .send_tagged(ProducerRecord::new(&topic).value(payload.clone()), sent_ns)
                    .await?;
            }
            producer.flush().await?;
            let elapsed = start.elapsed();
            producer.close(Duration::from_secs(10)).await;
            let (lat, errors) = tally.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let ms = |us: u64| us as f64 / 1000.0;
            let pct = |p: f64| ms(lat.value_at_quantile(p));
            let secs = elapsed.as_secs_f64();
            crate::out!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
                 {:.1} ms 50th, {:.1} ms 95th, {:.1} ms 99th, {:.1} ms 99.9th. errors: {}",
                lat.len(),
                num_records as f64 / secs,
                num_records as f64 * record_size as f64 / secs / 1_048_576.0,
                lat.mean() / 1000.0,
                ms(lat.max()),
                pct(0.5),
                pct(0.95),
                pct(0.99),
                pct(0.999),
                errors,
            );
        }
        PerfCmd::Consume {
            topic,
            num_records,
            group,
            props: _,
            metrics,
        } => {
            let mut b = global.consumer_builder(&[("auto.offset.reset", "earliest")]);
            if let Some(g) = &group {
                b = b.set("group.id", g);
            }
            let consumer = global.reaching(b.build()).await?;
            let endpoint = metrics.serve()?;
            if let Some(e) = &endpoint {
                e.add_consumer("perf", &consumer);
            }
            if group.is_some() {
                consumer.subscribe(&[&topic]).await?;
            } else {
                let client = global.client().await?;
                let t = client.admin().describe_topic(&topic).await?;
                client.close();
                let tps: Vec<TopicPartition> = t
                    .partitions
                    .iter()
                    .map(|p| TopicPartition::new(&topic, p.partition))
                    .collect();
                consumer.assign(&tps).await?;
                consumer.seek_to_beginning(&tps).await?;
            }
            let mut start = Instant::now();
            let (mut n, mut bytes) = (0u64, 0u64);
            let mut idle = Instant::now();
            while n < num_records && idle.elapsed() < Duration::from_secs(10) {
                let rs = consumer.poll(Duration::from_millis(500)).await?;
                if !rs.is_empty() {
                    // A group's join is not part of the read rate.
                    if n == 0 && group.is_some() {
                        start = Instant::now();
                    }
                    idle = Instant::now();
                }
                n += rs.len() as u64;
                bytes += rs
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64)
                    .sum::<u64>();
            }
            let secs = start.elapsed().as_secs_f64();
            consumer.close().await;
            crate::out!(
                "{n} records consumed in {secs:.2} s: {:.1} records/sec, {:.2} MB/sec",
                n as f64 / secs,
                bytes as f64 / secs / 1_048_576.0
            );
            if n < num_records {
                eprintln!("only {n} of {num_records} records arrived within 10 s of idleness");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
