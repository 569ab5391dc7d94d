//! Producer and consumer metrics against the real broker: the counters
//! match what was sent and read, record for record and byte for byte.

use std::time::Duration;

use kafka_ingest::{Consumer, Producer, ProducerRecord};

use crate::support::{bootstrap, create_topic, unique, watchdog};

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn producer_and_consumer_metrics_count_exactly() {
    let _bound = watchdog("metrics::producer_and_consumer_metrics_count_exactly", 180);
    let topic = unique("metrics");
    create_topic(&topic, 3).await;
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "5")
        .build()
        .await
        .unwrap();
    const N: u64 = 2000;
    let mut bytes = 0u64;
    for i in 0..N {
        let (k, v) = (
            format!("k{}", i % 17),
            format!("value-{i}-{}", "x".repeat((i % 50) as usize)),
        );
        bytes += (k.len() + v.len()) as u64;
        p.send_with_callback(ProducerRecord::new(&topic).key(k).value(v), |r| {
            r.expect("delivered");
        })
        .await
        .unwrap();
    }
    p.flush().await.unwrap();
    let m = p.metrics();
    assert_eq!(m.records_sent, N, "{m:?}");
    assert_eq!(m.bytes_sent, bytes);
    assert!(m.batches_sent >= 3 && m.batches_sent <= N, "{m:?}");
    assert_eq!(m.records_failed, 0);
    assert_eq!(
        m.errors.values().sum::<u64>(),
        m.retries,
        "only retried batches erred: {m:?}"
    );
    assert_eq!(m.buffer_bytes_total, 32 * 1024 * 1024);
    assert_eq!(m.waiting_senders, 0);
    assert!(m.request_latency.count >= m.batches_sent.min(3), "{m:?}");
    assert_eq!(m.throttle, p.throttle_metrics());
    // Memory is released once the delivered batches are dropped.
    eventually("buffer released", || p.metrics().buffer_bytes_used == 0).await;
    p.close(Duration::from_secs(10)).await;

    let group = unique("metrics-group");
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let mut read = 0u64;
    let start = std::time::Instant::now();
    while read < N {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "read {read} of {N}"
        );
        read += c.poll(Duration::from_millis(500)).await.unwrap().len() as u64;
    }
    c.commit().await.unwrap();
    let m = c.metrics();
    assert_eq!(read, N);
    assert_eq!(m.records_fetched, N, "{m:?}");
    assert_eq!(m.bytes_fetched, bytes);
    assert!(m.fetch_requests >= 1);
    assert!(m.rebalances >= 1, "{m:?}");
    assert_eq!((m.commits, m.commit_failures), (1, 0));
    assert_eq!(m.commit_latency.count, 1);
    assert_eq!(m.lag.len(), 3, "{:?}", m.lag);
    // Caught up: every position is at its high watermark, which sum to N.
    assert_eq!(m.lag.iter().map(|l| l.lag).sum::<i64>(), 0, "{:?}", m.lag);
    assert_eq!(
        m.lag.iter().map(|l| l.high_watermark).sum::<i64>(),
        N as i64
    );
    assert!(m.lag.iter().all(|l| l.position == Some(l.high_watermark)));
    assert!(m.request_latency.count > m.fetch_requests, "{m:?}");
    c.close().await;
}

#[tokio::test]
async fn buffer_memory_counts_what_each_waiting_record_holds() {
    let _bound = watchdog(
        "metrics::buffer_memory_counts_what_each_waiting_record_holds",
        120,
    );
    let topic = unique("bufmem");
    create_topic(&topic, 1).await;
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "60000")
        .set("batch.size", "1048576")
        .build()
        .await
        .unwrap();
    // Metadata first, so the records below only wait in the buffer.
    p.send(ProducerRecord::new(&topic).value("warm"))
        .await
        .unwrap();
    p.flush().await.unwrap();
    eventually("warm-up released", || p.metrics().buffer_bytes_used == 0).await;
    let held = [7u8; 512];
    for _ in 0..100 {
        p.send_with_callback(
            ProducerRecord::new(&topic).value(vec![1u8; 100]),
            move |_| {
                std::hint::black_box(&held);
            },
        )
        .await
        .unwrap();
    }
    // Each: 121 bytes on the wire, a 512-byte callback, and a little
    // bookkeeping (its slot, the allocator's header, the topic name).
    let used = p.metrics().buffer_bytes_used;
    assert!(used >= 100 * (121 + 512), "{used}");
    assert!(used <= 100 * (121 + 512 + 256), "{used}");
    p.flush().await.unwrap();
    eventually("buffer released", || p.metrics().buffer_bytes_used == 0).await;
    p.close(Duration::from_secs(5)).await;
}
