//! Pipeline overhead per record against the plain consumer: the same
//! pre-produced topic read by a fresh group, with a no-op handler, Key
//! ordering over many keys and 16 handlers at once. Each sample measures
//! from the first record handled to the last, so group joins are not
//! counted. Needs the harness broker: `scripts/harness up`, then
//! `cargo bench -p kafka-ingest-pipeline --bench overhead`.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kafka_ingest::{Client, Consumer, NewTopic, Producer, ProducerRecord};
use kafka_ingest_pipeline::{Ordering, Pipeline};

const RECORDS: u64 = 100_000;
const BOOTSTRAP: &str = "127.0.0.1:9092";

fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn setup() -> String {
    let topic = format!("bench-overhead-{}", stamp());
    let client = Client::builder()
        .bootstrap(BOOTSTRAP)
        .build()
        .await
        .expect("broker");
    client
        .admin()
        .create_topic(NewTopic::new(&topic, 6, 1))
        .await
        .expect("topic");
    let p = Producer::builder()
        .bootstrap(BOOTSTRAP)
        .set("linger.ms", "5")
        .build()
        .await
        .expect("producer");
    let mut futs = Vec::new();
    for i in 0..RECORDS {
        let r = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 1000))
            .value(format!("{{\"id\":{i},\"pad\":\"{}\"}}", "x".repeat(64)));
        futs.push(p.send(r).await.expect("send"));
    }
    for f in futs {
        f.await.expect("ack");
    }
    p.close(Duration::from_secs(10)).await;
    topic
}

fn consumer(group: &str) -> kafka_ingest::ConsumerBuilder {
    Consumer::builder()
        .bootstrap(BOOTSTRAP)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
}

/// First to last record with a plain poll loop.
async fn plain(topic: &str) -> Duration {
    let c = consumer(&format!("bench-plain-{}", stamp()))
        .build()
        .await
        .unwrap();
    c.subscribe(&[topic]).await.unwrap();
    let (mut n, mut first) = (0u64, None);
    while n < RECORDS {
        let batch = c.poll(Duration::from_millis(500)).await.unwrap();
        if !batch.is_empty() {
            first.get_or_insert_with(Instant::now);
        }
        for r in &batch {
            std::hint::black_box(r);
        }
        n += batch.len() as u64;
    }
    let took = first.map_or(Duration::ZERO, |f| f.elapsed());
    c.close().await;
    took
}

/// First to last record handled by a pipeline with a no-op handler.
async fn pipeline(topic: &str) -> Duration {
    let producer = Producer::builder()
        .bootstrap(BOOTSTRAP)
        .build()
        .await
        .unwrap();
    let p = Pipeline::builder(consumer(&format!("bench-pipe-{}", stamp())), producer)
        .topics([topic])
        .ordering(Ordering::Key)
        .max_in_flight(16)
        .build()
        .unwrap();
    let handle = p.handle();
    let done = Arc::new(AtomicU64::new(0));
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (d2, f2) = (done.clone(), first.clone());
    let task = tokio::spawn(p.run(move |rec| {
        let (done, first) = (d2.clone(), f2.clone());
        async move {
            std::hint::black_box(&rec);
            first.lock().unwrap().get_or_insert_with(Instant::now);
            done.fetch_add(1, AtomicOrdering::Relaxed);
            Ok(())
        }
    }));
    while done.load(AtomicOrdering::Relaxed) < RECORDS {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = first
        .lock()
        .unwrap()
        .map_or(Duration::ZERO, |f| f.elapsed());
    handle.shutdown();
    task.await.unwrap().unwrap();
    took
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = rt.block_on(setup());
    let mut g = c.benchmark_group("consume-100k-key-ordered");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(RECORDS));
    g.bench_function("plain-consumer", |b| {
        b.iter_custom(|iters| rt.block_on(async { sum(iters, || plain(&topic)).await }))
    });
    g.bench_function("pipeline-16-keys-in-flight", |b| {
        b.iter_custom(|iters| rt.block_on(async { sum(iters, || pipeline(&topic)).await }))
    });
    g.finish();
}

async fn sum<F: std::future::Future<Output = Duration>>(iters: u64, f: impl Fn() -> F) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += f().await;
    }
    total
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
