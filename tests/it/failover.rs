//! Producer failover on the 3-node cluster: leader killed mid-stream, broker
//! down past the delivery timeout, full buffer while a partition is offline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_ingest::{Error, NewTopic, Producer, ProducerRecord, TopicPartition};

use crate::support::{
    cluster_bootstrap, cluster_client, cluster_lock, peer_dump, unique, KilledNode,
};

const RECORDS: usize = 200_000;
const KEYS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_stream_loses_and_duplicates_nothing() {
    let _bound = crate::support::watchdog(
        "failover::leader_killed_mid_stream_loses_and_duplicates_nothing",
        420,
    );
    let _serial = cluster_lock().await;
    let admin = cluster_client().await.admin();
    let topic = unique("failover");
    admin
        .create_topic(NewTopic::new(&topic, 6, 3).config("min.insync.replicas", "2"))
        .await
        .unwrap();
    let victim = admin.describe_topic(&topic).await.unwrap().partitions[0]
        .leader
        .unwrap();

    let producer = Producer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "10000")
        .set("delivery.timeout.ms", "120000")
        // Compressed: a retried batch is resent as first packed, restamped
        // when the epoch was bumped.
        .set("compression.type", "lz4")
        .build()
        .await
        .unwrap();

    // Outcome per record: None pending, Some(Ok(partition, offset)), Some(Err).
    let acked = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = {
        let producer = producer.clone();
        let topic = topic.clone();
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut next_per_key = vec![0u64; KEYS];
            for i in 0..RECORDS {
                let k = i % KEYS;
                let value = format!("{i}:{}", next_per_key[k]);
                next_per_key[k] += 1;
                let tx = tx.clone();
                let acked = acked.clone();
                producer
                    .send_with_callback(
                        ProducerRecord::new(&topic)
                            .key(format!("key-{k}"))
                            .value(value),
                        move |r| {
                            acked.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send((
                                i,
                                r.map(|m| (m.partition, m.offset))
                                    .map_err(|e| e.to_string()),
                            ));
                        },
                    )
                    .await
                    .expect("send accepted");
            }
        })
    };
    // Kill the leader of partition 0 once a third is acknowledged, restart it later.
    while acked.load(Ordering::Relaxed) < RECORDS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = KilledNode::kill(victim);
    let killed_at = acked.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    killed.restart();
    sender.await.unwrap();
    producer.flush().await.unwrap();
    producer.close(Duration::from_secs(30)).await;
    assert!(killed_at < RECORDS, "the kill happened mid-stream");

    let mut outcome: HashMap<usize, Result<(i32, i64), String>> = HashMap::new();
    while let Ok((i, r)) = rx.try_recv() {
        assert!(outcome.insert(i, r).is_none(), "record {i} reported twice");
    }
    assert_eq!(
        outcome.len(),
        RECORDS,
        "every record got exactly one outcome"
    );
    let failed: Vec<_> = outcome
        .iter()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
        .collect();

    let log = peer_dump(&cluster_bootstrap(), &topic, RECORDS);
    let mut seen: HashMap<usize, (i32, i64)> = HashMap::new();
    let mut last_per_key: HashMap<usize, (i64, u64)> = HashMap::new();
    let mut sorted = log.clone();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for r in &sorted {
        let v = String::from_utf8(hex::decode(r.value.as_deref().unwrap()).unwrap()).unwrap();
        let (i, n) = v.split_once(':').unwrap();
        let (i, n): (usize, u64) = (i.parse().unwrap(), n.parse().unwrap());
        assert!(
            seen.insert(i, (r.partition, r.offset)).is_none(),
            "record {i} is in the log twice"
        );
        // Per key, the log order is the send order.
        if let Some((_, prev)) = last_per_key.insert(i % KEYS, (r.offset, n)) {
            assert!(n > prev, "key {} out of order: {n} after {prev}", i % KEYS);
        }
    }
    for (i, r) in &outcome {
        match r {
            Ok(pos) => assert_eq!(
                seen.get(i),
                Some(pos),
                "acknowledged record {i} must be in the log at its offset"
            ),
            Err(e) => assert!(
                !seen.contains_key(i),
                "record {i} reported failed ({e}) but was written"
            ),
        }
    }
    assert!(
        failed.is_empty(),
        "no record should fail within delivery.timeout.ms: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert_eq!(seen.len(), RECORDS);
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn offline_partition_times_out_each_record_and_blocks_a_full_buffer() {
    let _bound = crate::support::watchdog(
        "failover::offline_partition_times_out_each_record_and_blocks_a_full_buffer",
        420,
    );
    let _serial = cluster_lock().await;
    let admin = cluster_client().await.admin();
    let topic = unique("offline");
    admin
        .create_topic(NewTopic::new(&topic, 3, 1))
        .await
        .unwrap();
    let d = admin.describe_topic(&topic).await.unwrap();
    let part = &d.partitions[0];
    let (victim, p) = (part.leader.unwrap(), part.partition);
    let tp = TopicPartition::new(&topic, p);

    let short = Producer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("linger.ms", "0")
        .set("request.timeout.ms", "2000")
        .set("delivery.timeout.ms", "3000")
        .build()
        .await
        .unwrap();
    let full = Producer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("buffer.memory", "65536")
        .set("batch.size", "16384")
        .set("max.block.ms", "2000")
        .build()
        .await
        .unwrap();
    // Both know the topic before the node goes.
    short
        .send(ProducerRecord::new(&topic).partition(p).value("warm"))
        .await
        .unwrap()
        .await
        .unwrap();
    full.send(ProducerRecord::new(&topic).partition(p).value("warm"))
        .await
        .unwrap()
        .await
        .unwrap();
    let killed = KilledNode::kill(victim);

    // Down longer than delivery.timeout.ms: every record gets its own timeout.
    let start = Instant::now();
    let mut futs = Vec::new();
    for i in 0..20 {
        futs.push(
            short
                .send(
                    ProducerRecord::new(&topic)
                        .partition(p)
                        .value(format!("{i}")),
                )
                .await
                .unwrap(),
        );
    }
    for f in futs {
        let e = f.await.unwrap_err();
        assert!(matches!(e, Error::DeliveryTimeout { .. }), "{e:?}");
        assert!(e.to_string().contains("delivery.timeout.ms"), "{e}");
        assert!(!e.is_retriable(), "resending may duplicate: {e}");
    }
    assert!(start.elapsed() < Duration::from_secs(30), "no hang");

    // A full buffer blocks send, then fails after max.block.ms; memory stays bounded.
    let mut accepted = Vec::new();
    let err = loop {
        match full
            .send(
                ProducerRecord::new(&topic)
                    .partition(p)
                    .value(vec![7u8; 1000]),
            )
            .await
        {
            Ok(f) => accepted.push(f),
            Err(e) => break e,
        }
        assert!(
            accepted.len() < 1000,
            "buffer.memory must stop the producer"
        );
    };
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("buffer.memory"), "{err}");
    assert!(
        accepted.len() <= 65536 / 1000,
        "at most buffer.memory worth of records queued: {}",
        accepted.len()
    );
    assert!(
        accepted.len() >= 30,
        "the buffer did hold records: {}",
        accepted.len()
    );

    killed.restart();
    // Once the partition is back, the queued records go out and sending resumes.
    for f in accepted {
        f.await.unwrap();
    }
    full.send(ProducerRecord::new(&topic).partition(p).value("after"))
        .await
        .unwrap()
        .await
        .unwrap();
    short.close(Duration::from_secs(5)).await;
    full.close(Duration::from_secs(5)).await;
    let _ = tp;
    admin.delete_topic(&topic).await.unwrap();
}
