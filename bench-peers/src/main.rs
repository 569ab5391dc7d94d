//! `bench-peers CLIENT produce|consume`: the same workload as
//! `kafka-ingest perf produce|consume`, driven through another client, printing
//! the same summary line so scripts/bench-e2e parses every client alike.

mod confluent;
mod krafka_peer;
mod rdk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Which client drives the workload.
    client: Client,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Client {
    Librdkafka,
    Confluent,
    Krafka,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Send NUM records of SIZE bytes (unkeyed) as fast as possible (or at --throughput/s).
    Produce {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Producer property KEY=VALUE, Java names (acks, linger.ms, ...).
        #[arg(long = "prop", value_name = "KEY=VALUE")]
        props: Vec<String>,
        /// Records per second, open loop as `perf produce --throughput`; -1 for no limit.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        throughput: i64,
    },
    /// Read NUM records from the beginning: all PARTITIONS assigned, or
    /// through --group (subscribe, earliest; the clock starts at the first record).
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        /// Consumer property KEY=VALUE, applied after the tuned defaults.
        #[arg(long = "prop", value_name = "KEY=VALUE")]
        props: Vec<String>,
    },
}

/// Split `KEY=VALUE` properties.
pub fn pairs(props: &[String]) -> Vec<(String, String)> {
    props
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => panic!("property {p:?} is not KEY=VALUE"),
        })
        .collect()
}

/// Random-looking but fixed payload, like ProducerPerformance's.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'A' + (i * 7 % 26) as u8).collect()
}

/// Open-loop pacing, as `perf produce --throughput` does it: record `i` is
/// due `i / rate` seconds after the start, whatever became of earlier ones.
pub struct Pace {
    start: Instant,
    rate: f64,
}

impl Pace {
    pub fn new(throughput: i64) -> Option<Self> {
        (throughput > 0).then(|| Pace {
            start: Instant::now(),
            rate: throughput as f64,
        })
    }

    pub fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Blocks the calling thread until record `i` is due.
    pub fn wait_blocking(&self, i: u64) {
        let due = self.due(i);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// Send-to-acknowledgement latencies in microseconds, and failures.
pub struct Latencies {
    hist: Mutex<Histogram<u64>>,
    errors: AtomicU64,
}

impl Latencies {
    pub fn new() -> Self {
        Latencies {
            hist: Mutex::new(Histogram::new(3).expect("3 significant digits")),
            errors: AtomicU64::new(0),
        }
    }

    pub fn ok(&self, sent_at: Instant) {
        let us = sent_at.elapsed().as_micros() as u64;
        let _ = self.hist.lock().unwrap().record(us);
    }

    /// Counts a failed record; the first one's error goes to stderr.
    pub fn failed(&self, e: impl std::fmt::Display) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("first failed record: {e}");
        }
    }

    /// The `perf produce` line.
    pub fn report(&self, num_records: u64, record_size: usize, elapsed: Duration) {
        let h = self.hist.lock().unwrap();
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = elapsed.as_secs_f64();
        println!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
             {:.1} ms 50th, {:.1} ms 95th, {:.1} ms 99th, {:.1} ms 99.9th. errors: {}",
            h.len(),
            num_records as f64 / secs,
            num_records as f64 * record_size as f64 / secs / 1_048_576.0,
            h.mean() / 1000.0,
            ms(h.max()),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            self.errors.load(Ordering::Relaxed),
        );
    }
}

/// Counts consumed records; the `perf consume` line.
pub struct Tally {
    start: Instant,
    group: bool,
    pub n: u64,
    bytes: u64,
    idle: Instant,
}

impl Tally {
    pub fn new(group: bool) -> Self {
        Tally {
            start: Instant::now(),
            group,
            n: 0,
            bytes: 0,
            idle: Instant::now(),
        }
    }

    pub fn add(&mut self, records: u64, bytes: u64) {
        if records > 0 {
            // A group's join is not part of the read rate.
            if self.n == 0 && self.group {
                self.start = Instant::now();
            }
            self.idle = Instant::now();
        }
        self.n += records;
        self.bytes += bytes;
    }

    /// Stop at `num` records or after 10 s without any.
    pub fn more(&self, num: u64) -> bool {
        self.n < num && self.idle.elapsed() < Duration::from_secs(10)
    }

    pub fn report(&self, num: u64) {
        let secs = self.start.elapsed().as_secs_f64();
        println!(
            "{} records consumed in {secs:.2} s: {:.1} records/sec, {:.2} MB/sec",
            self.n,
            self.n as f64 / secs,
            self.bytes as f64 / secs / 1_048_576.0
        );
        if self.n < num {
            eprintln!(
                "only {} of {num} records arrived within 10 s of idleness",
                self.n
            );
            std::process::exit(1);
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.client {
        Client::Librdkafka => rdk::run(&cli.bootstrap, cli.cmd),
        Client::Confluent => runtime().block_on(confluent::run(&cli.bootstrap, cli.cmd)),
        Client::Krafka => runtime().block_on(krafka_peer::run(&cli.bootstrap, cli.cmd)),
    }
}

/// Tokio's default multi-threaded runtime, as `#[tokio::main]` builds it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
