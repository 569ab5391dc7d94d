//! KIP-227 fetch sessions against the real broker: idle partitions are not
//! named again after the first fetch, and a session the broker rejects is
//! replaced without losing or repeating a record.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafka_ingest::{Consumer, ProducerRecord, TopicPartition};

use crate::support::{bootstrap, create_topic, unique};

const PARTITIONS: i32 = 40;

async fn assigned(topic: &str) -> Consumer {
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.wait.ms", "50")
        .build()
        .await
        .unwrap();
    let tps: Vec<_> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(&tps).await.unwrap();
    c
}

/// Sends `ids` to partition 3 and waits for every ack.
async fn produce(topic: &str, ids: std::ops::Range<u32>) {
    let p = kafka_ingest::Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in ids {
        let r = ProducerRecord::new(topic).partition(3).value(i.to_string());
        acks.push(p.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close(Duration::from_secs(5)).await;
}

/// Polls until `n` records arrived (bounded), returning their values.
async fn take(c: &Consumer, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(200)).await.unwrap() {
            assert_eq!(r.partition, 3, "only partition 3 has data");
            got.push(
                std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
    }
    got
}

/// The fetch counters, without the per-partition lag.
fn counts(c: &Consumer) -> String {
    let m = c.metrics();
    format!(
        "fetches {}, incremental {}, partitions named {}, errors {:?}",
        m.fetch_requests, m.incremental_fetches, m.fetch_partitions_sent, m.errors
    )
}

/// Polls until the consumer has sent at least `n` fetches in all.
async fn idle_until(c: &Consumer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.metrics().fetch_requests < n && Instant::now() < deadline {
        assert!(c.poll(Duration::from_millis(100)).await.unwrap().is_empty());
    }
    assert!(c.metrics().fetch_requests >= n, "{}", counts(c));
}

#[tokio::test]
async fn idle_partitions_are_not_named_in_each_fetch() {
    let _bound = crate::support::watchdog(
        "fetch_session::idle_partitions_are_not_named_in_each_fetch",
        180,
    );
    let topic = unique("fsess");
    create_topic(&topic, PARTITIONS).await;
    let c = assigned(&topic).await;
    idle_until(&c, 20).await;
    produce(&topic, 0..200).await;
    let got = take(&c, 200).await;
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "every record once, in order"
    );
    idle_until(&c, c.metrics().fetch_requests + 10).await;

    let m = c.metrics();
    // Without a session every fetch names all 40 partitions (>= 30 x 40).
    // With one, only the first does; after it, only partition 3 comes and
    // goes (forgotten while its records wait for poll, then named again).
    assert!(
        m.incremental_fetches >= m.fetch_requests - 1,
        "every fetch after the first is incremental: {}",
        counts(&c)
    );
    assert!(
        m.fetch_partitions_sent <= PARTITIONS as u64 + 200,
        "idle partitions were named again: {}",
        counts(&c)
    );
    c.close().await;
}

#[tokio::test]
async fn a_session_the_broker_rejects_is_renewed_without_loss() {
    let _bound = crate::support::watchdog(
        "fetch_session::a_session_the_broker_rejects_is_renewed_without_loss",
        180,
    );
    let topic = unique("fsess-bad");
    create_topic(&topic, PARTITIONS).await;
    let c = assigned(&topic).await;
    let mut seen = BTreeSet::new();
    let mut from = 0;
    // An unknown id (as after a broker restart), then a wrong epoch (as
    // after a lost response): each time the broker's own error code.
    for (unknown_id, code) in [
        (true, "FetchSessionIdNotFound"),
        (false, "InvalidFetchSessionEpoch"),
    ] {
        idle_until(&c, c.metrics().fetch_requests + 3).await;
        kafka_ingest::internals::break_fetch_session(&c, unknown_id);
        idle_until(&c, c.metrics().fetch_requests + 3).await;
        assert_eq!(c.metrics().errors.get(code), Some(&1), "{}", counts(&c));
        produce(&topic, from..from + 50).await;
        for v in take(&c, 50).await {
            assert!(seen.insert(v), "record {v} delivered twice");
        }
        from += 50;
        assert_eq!(seen.len(), from as usize, "a record was lost");
    }
    assert!(c.metrics().incremental_fetches > 0, "{}", counts(&c));
    c.close().await;
}

/// Sends each value to `partition` as a batch of its own (acked one by one).
async fn produce_batches(topic: &str, partition: i32, values: impl Iterator<Item = String>) {
    let p = kafka_ingest::Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "0")
        .build()
        .await
        .unwrap();
    for v in values {
        let r = ProducerRecord::new(topic).partition(partition).value(v);
        p.send(r).await.unwrap().await.unwrap();
    }
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_caught_up_partition_does_not_hold_back_another_of_its_leader() {
    let _bound = crate::support::watchdog(
        "fetch_session::a_caught_up_partition_does_not_hold_back_another_of_its_leader",
        180,
    );
    let topic = unique("caught-up");
    create_topic(&topic, 2).await;
    let value = |i: u32| format!("{i:04}-{}", "x".repeat(1000));
    produce_batches(&topic, 0, std::iter::once(value(0))).await;
    produce_batches(&topic, 1, (0..150).map(value)).await;
    // A fetch brings ~3 of partition 1's batches. Partition 0 is caught up
    // after its first fetch: had a fetch for it alone long-polled 30 s while
    // partition 1's records waited in its buffer, partition 1 would wait
    // 30 s after each drained buffer (about 50 times).
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.wait.ms", "30000")
        .set("request.timeout.ms", "60000")
        .set("max.partition.fetch.bytes", "4096")
        .set("max.poll.records", "1")
        .build()
        .await
        .unwrap();
    c.assign(&[
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    ])
    .await
    .unwrap();
    let mut got: Vec<Vec<u32>> = vec![Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(120);
    while got[0].len() + got[1].len() < 151 && Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(200)).await.unwrap() {
            let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            got[r.partition as usize].push(v[..4].parse().unwrap());
        }
    }
    assert_eq!(got[0], vec![0], "{}", counts(&c));
    assert_eq!(got[1], (0..150).collect::<Vec<_>>(), "{}", counts(&c));
    assert!(
        c.metrics().fetch_requests < 1000,
        "a fetch per record at most: {}",
        counts(&c)
    );

    // Partition 1's records wait in its buffer while nothing polls: the
    // fetch for caught-up partition 0 must not repeat at once (spin).
    produce_batches(&topic, 1, (150..160).map(value)).await;
    let first = loop {
        if let Some(r) = c.poll(Duration::from_millis(200)).await.unwrap().pop() {
            break r;
        }
    };
    assert_eq!((first.partition, first.offset), (1, 150));
    let before = c.metrics().fetch_requests;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = c.metrics().fetch_requests - before;
    assert!(
        during <= 3,
        "{during} fetches in a second while a buffer waited: {}",
        counts(&c)
    );
    c.close().await;
}
