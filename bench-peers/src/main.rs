//! `bench-peers produce|consume`: the same workload as `kafka-ingest perf`,
//! driven through librdkafka, printing one comparable summary line.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer, DefaultProducerContext};
use rdkafka::{Message, Offset, TopicPartitionList};

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Produce {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        #[arg(long = "prop", value_name = "KEY=VALUE")]
        props: Vec<String>,
    },
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Produce { topic, num_records, record_size, props } => {
            let mut cfg = ClientConfig::new();
            cfg.set("bootstrap.servers", &cli.bootstrap).set("queue.buffering.max.messages", "1000000");
            for p in &props {
                if let Some((k, v)) = p.split_once('=') {
                    cfg.set(k, v);
                }
            }
            let producer: ThreadedProducer<DefaultProducerContext> = cfg.create().expect("producer");
            let payload: Vec<u8> = (0..record_size).map(|i| b'A' + (i * 7 % 26) as u8).collect();
            let start = Instant::now();
            for _ in 0..num_records {
                let mut rec = BaseRecord::<(), [u8]>::to(&topic).payload(&payload[..]);
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            rec = r; // queue full: wait for deliveries (backpressure)
                            std::thread::sleep(Duration::from_micros(100));
                        }
                    }
                }
            }
            producer.flush(Duration::from_secs(60)).expect("flush");
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{num_records} records sent, {:.1} records/sec ({:.2} MB/sec)",
                num_records as f64 / secs,
                num_records as f64 * record_size as f64 / secs / 1_048_576.0
            );
        }
        Cmd::Consume { topic, partitions, num_records } => {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &cli.bootstrap)
                .set("group.id", "bench-peers")
                .set("enable.auto.commit", "false")
                .create()
                .expect("consumer");
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition_offset(&topic, p, Offset::Beginning).expect("tpl");
            }
            consumer.assign(&tpl).expect("assign");
            let start = Instant::now();
            let (mut n, mut bytes) = (0u64, 0u64);
            while n < num_records {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
                    n += 1;
                    bytes += m.payload().map_or(0, |p| p.len()) as u64;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{n} records consumed in {secs:.2} s: {:.1} records/sec, {:.2} MB/sec", n as f64 / secs, bytes as f64 / secs / 1_048_576.0);
        }
    }
}
