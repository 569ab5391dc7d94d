//! krafka: `enqueue` plus a task awaiting the DeliveryHandles in order;
//! consumer `poll` batches; classic group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krafka::consumer::AutoOffsetReset;
use krafka::producer::Acks;
use krafka::{Compression, Kafka, Record};

use crate::{pairs, payload, Cmd, Latencies, Pace, Tally};

pub async fn run(bootstrap: &str, cmd: Cmd) {
    let kafka = Kafka::builder(bootstrap).connect().await.expect("connect");
    match cmd {
        Cmd::Produce {
            topic,
            num_records,
            record_size,
            props,
            throughput,
        } => {
            let mut b = kafka.producer();
            for (k, v) in pairs(&props) {
                let n = || {
                    v.parse::<u64>()
                        .unwrap_or_else(|_| panic!("{k}={v}: not a number"))
                };
                b = match k.as_str() {
                    "acks" => b.acks(match v.as_str() {
                        "all" | "-1" => Acks::All,
                        "1" => Acks::Leader,
                        "0" => Acks::None,
                        _ => panic!("acks={v}"),
                    }),
                    "enable.idempotence" => b.idempotent(v == "true"),
                    "linger.ms" => b.linger(Duration::from_millis(n())),
                    "batch.size" => b.batch_size(n() as usize),
                    "buffer.memory" => b.buffer_memory(n() as usize),
                    "compression.type" => b.compression(match v.as_str() {
                        "none" => Compression::None,
                        "gzip" => Compression::Gzip,
                        "snappy" => Compression::Snappy,
                        "lz4" => Compression::Lz4,
                        _ => panic!("compression.type={v}"),
                    }),
                    _ => panic!("krafka peer: unsupported property {k}"),
                };
            }
            let producer = b.build().await.expect("producer");
            // Connected, with the topic's leaders known, before the clock starts.
            producer.partitions_for(&topic).await.expect("metadata");
            let payload = Bytes::from(payload(record_size));
            let lat = Arc::new(Latencies::new());
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let waiter = {
                let lat = lat.clone();
                tokio::spawn(async move {
                    while let Some((sent_at, handle)) = rx.recv().await {
                        match handle.await {
                            Ok(_) => lat.ok(sent_at),
                            Err(e) => lat.failed(e),
                        }
                    }
                })
            };
            let t0 = Instant::now();
            let pace = Pace::new(throughput);
            for i in 0..num_records {
                if let Some(p) = &pace {
                    tokio::time::sleep_until(p.due(i).into()).await;
                }
                let sent_at = Instant::now();
                let h = producer
                    .enqueue(Record::new(topic.as_str(), payload.clone()))
                    .await
                    .expect("enqueue");
                let _ = tx.send((sent_at, h));
            }
            drop(tx);
            producer.flush().await.expect("flush");
            waiter.await.expect("waiter");
            let elapsed = t0.elapsed();
            producer.close().await.expect("close");
            lat.report(num_records, record_size, elapsed);
        }
        Cmd::Consume {
            topic,
            partitions,
            group,
            num_records,
            props,
        } => {
            let b = match &group {
                Some(g) => kafka.consumer(g.as_str()),
                None => kafka.consumer_without_group(),
            };
            let mut b = b
                .auto_offset_reset(AutoOffsetReset::Earliest)
                .enable_auto_commit(group.is_some())
                // poll fetches inline and decodes at most max.poll.records plus
                // the buffer's headroom; the default cap (500) keeps one poll's
                // worth, so most polls wait for a fetch round trip. Room for
                // one full response (6 x 1 MiB of 100 B records) instead.
                .max_buffered_records(100_000);
            for (k, v) in pairs(&props) {
                let n = || {
                    v.parse::<i32>()
                        .unwrap_or_else(|_| panic!("{k}={v}: not a number"))
                };
                b = match k.as_str() {
                    "max.poll.records" => b.max_poll_records(n()),
                    "max.buffered.records" => b.max_buffered_records(n()),
                    _ => panic!("krafka peer: unsupported property {k}"),
                };
            }
            let consumer = b.build().await.expect("consumer");
            match &group {
                Some(_) => consumer
                    .subscribe([topic.as_str()])
                    .await
                    .expect("subscribe"),
                None => {
                    consumer
                        .assign(&topic, (0..partitions).collect())
                        .await
                        .expect("assign");
                    for p in 0..partitions {
                        consumer.seek_to_beginning(&topic, p).await.expect("seek");
                    }
                }
            }
            let mut t = Tally::new(group.is_some());
            while t.more(num_records) {
                let rs = consumer
                    .poll(Duration::from_millis(500))
                    .await
                    .expect("poll");
                let bytes: usize = rs
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                    .sum();
                t.add(rs.len() as u64, bytes as u64);
            }
            t.report(num_records);
            consumer.close().await.expect("close");
        }
    }
}
