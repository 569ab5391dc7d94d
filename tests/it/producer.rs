//! Producer against the real broker; records read back by librdkafka.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_ingest::producer::{murmur2, partition_for_key};
use kafka_ingest::{
    Compression, NewTopic, OffsetSpec, Producer, ProducerRecord, RecordMetadata, TopicPartition,
};

use crate::support::{bootstrap, client, create_topic, peer_dump, unique, PeerRecord};

async fn producer(extra: &[(&str, &str)]) -> Producer {
    Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "5")
        .properties(extra.iter().copied())
        .build()
        .await
        .unwrap_or_else(|e| panic!("producer: {e}; is `scripts/harness up` running?"))
}

fn hex(b: &Option<Bytes>) -> Option<String> {
    b.as_ref()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
}

#[tokio::test]
async fn murmur2_matches_java_for_10000_keys() {
    let _bound = crate::support::watchdog("producer::murmur2_matches_java_for_10000_keys", 300);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/murmur2.txt"
    ))
    .unwrap();
    let mut n = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let key: Vec<u8> = if f[0] == "-" {
            vec![]
        } else {
            (0..f[0].len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&f[0][i..i + 2], 16).unwrap())
                .collect()
        };
        assert_eq!(murmur2(&key), f[1].parse::<i32>().unwrap(), "{line}");
        assert_eq!(
            partition_for_key(&key, 6),
            f[2].parse::<i32>().unwrap(),
            "{line}"
        );
        assert_eq!(
            partition_for_key(&key, 7),
            f[3].parse::<i32>().unwrap(),
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, 10_000);
}

#[tokio::test]
async fn every_codec_round_trips_through_librdkafka() {
    let _bound =
        crate::support::watchdog("producer::every_codec_round_trips_through_librdkafka", 300);
    let admin = client().await.admin();
    for codec in Compression::ALL {
        let topic = unique(&format!("codec-{codec}"));
        admin
            .create_topic(NewTopic::new(&topic, 3, 1))
            .await
            .unwrap();
        let p = producer(&[("compression.type", codec.name()), ("batch.size", "4096")]).await;
        let mut sent: Vec<(ProducerRecord, RecordMetadata)> = Vec::new();
        let mut futures = Vec::new();
        for i in 0..300i64 {
            let mut r = ProducerRecord::new(&topic).timestamp(1_700_000_000_000 + i);
            if i % 3 != 0 {
                r = r.key(format!("key-{}", i % 17));
            }
            if i % 10 != 5 {
                r = r.value(Bytes::from(
                    format!("value {i} ").repeat((i % 7) as usize + 1),
                ));
            }
            if i % 4 == 0 {
                r = r
                    .header("trace", Bytes::from(format!("t{i}")))
                    .header("empty", Bytes::new());
                r.headers.push(("null".into(), None));
                // Kafka allows a key to repeat; both values must arrive, in order.
                r = r.header("trace", Bytes::from(format!("again{i}")));
            }
            if i % 50 == 7 {
                r = r.partition(2);
            }
            futures.push((r.clone(), p.send(r).await.unwrap()));
        }
        for (r, f) in futures {
            sent.push((r, f.await.unwrap_or_else(|e| panic!("{codec}: {e}"))));
        }
        p.close(Duration::from_secs(10)).await;
        for (r, m) in &sent {
            match (r.partition, &r.key) {
                (Some(p), _) => assert_eq!(m.partition, p),
                (None, Some(k)) => {
                    assert_eq!(m.partition, partition_for_key(k, 3), "murmur2 routing")
                }
                _ => {}
            }
        }
        let got = peer_dump(&bootstrap(), &topic, sent.len());
        assert_eq!(
            got.len(),
            sent.len(),
            "{codec}: librdkafka read every record"
        );
        let by_pos: HashMap<(i32, i64), &PeerRecord> =
            got.iter().map(|g| ((g.partition, g.offset), g)).collect();
        for (r, m) in &sent {
            let g = by_pos
                .get(&(m.partition, m.offset))
                .unwrap_or_else(|| panic!("{codec}: missing {m:?}"));
            assert_eq!(g.key, hex(&r.key), "{codec} key at {m:?}");
            assert_eq!(g.value, hex(&r.value), "{codec} value at {m:?}");
            assert_eq!(g.timestamp, r.timestamp.unwrap(), "{codec} timestamp");
            let headers: Vec<(String, Option<String>)> =
                r.headers.iter().map(|(k, v)| (k.clone(), hex(v))).collect();
            assert_eq!(g.headers, headers, "{codec} headers at {m:?}");
        }
        admin.delete_topic(&topic).await.unwrap();
    }
}

#[tokio::test]
async fn offsets_are_dense_and_ordered_per_partition() {
    let _bound =
        crate::support::watchdog("producer::offsets_are_dense_and_ordered_per_partition", 300);
    let admin = client().await.admin();
    let topic = unique("dense");
    admin
        .create_topic(NewTopic::new(&topic, 2, 1))
        .await
        .unwrap();
    let p = producer(&[]).await;
    assert!(p.is_idempotent());
    let mut futs = Vec::new();
    for i in 0..5000 {
        futs.push(
            p.send(
                ProducerRecord::new(&topic)
                    .partition(i % 2)
                    .value(format!("{i}")),
            )
            .await
            .unwrap(),
        );
    }
    let mut last = [-1i64; 2];
    for f in futs {
        let m = f.await.unwrap();
        assert_eq!(
            m.offset,
            last[m.partition as usize] + 1,
            "in order, no gaps"
        );
        last[m.partition as usize] = m.offset;
    }
    assert_eq!(last, [2499, 2499]);
    let specs: Vec<_> = (0..2)
        .map(|i| (TopicPartition::new(&topic, i), OffsetSpec::Latest))
        .collect();
    let end = admin.list_offsets(&specs).await.unwrap();
    assert!(end.values().all(|o| o.offset == 2500));
    // Every record was acknowledged in some batch, under one producer id.
    let (id, epoch) = p
        .producer_id_and_epoch()
        .expect("an idempotent producer has an id");
    assert!(id >= 0 && epoch >= 0, "{id}/{epoch}");
    let m = p.metrics();
    assert_eq!(m.records_sent, 5000, "{m:?}");
    assert!(
        m.batches_sent >= 2 && m.batches_sent <= m.records_sent,
        "{m:?}"
    );
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn acks_zero_and_one() {
    let _bound = crate::support::watchdog("producer::acks_zero_and_one", 300);
    let admin = client().await.admin();
    let topic = unique("acks");
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    for (acks, want_offsets) in [("0", false), ("1", true)] {
        let p = producer(&[("acks", acks)]).await;
        assert!(
            !p.is_idempotent(),
            "default idempotence yields to acks={acks}"
        );
        let mut futs = Vec::new();
        for i in 0..100 {
            futs.push(
                p.send(ProducerRecord::new(&topic).value(format!("{i}")))
                    .await
                    .unwrap(),
            );
        }
        for f in futs {
            let m = f.await.unwrap();
            assert_eq!(m.offset >= 0, want_offsets, "acks={acks}: {m:?}");
        }
        p.flush().await.unwrap();
        assert_eq!(p.producer_id_and_epoch(), None, "not idempotent");
        assert_eq!(p.metrics().records_sent, 100);
        p.close(Duration::from_secs(5)).await;
    }
    let end = admin
        .list_offsets(&[(TopicPartition::new(&topic, 0), OffsetSpec::Latest)])
        .await
        .unwrap();
    assert_eq!(end.values().next().unwrap().offset, 200);
}

#[tokio::test]
async fn callbacks_and_config_errors() {
    let _bound = crate::support::watchdog("producer::callbacks_and_config_errors", 300);
    let topic = unique("cb");
    create_topic(&topic, 1).await;
    let p = producer(&[]).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..10 {
        let tx = tx.clone();
        p.send_with_callback(
            ProducerRecord::new(&topic).value(format!("{i}")),
            move |r| {
                let _ = tx.send(r.map(|m| m.offset));
            },
        )
        .await
        .unwrap();
    }
    p.flush().await.unwrap();
    let mut offsets = Vec::new();
    for _ in 0..10 {
        offsets.push(rx.recv().await.unwrap().unwrap());
    }
    offsets.sort();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    let e = p
        .send(ProducerRecord::new(&topic).partition(5).value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, kafka_ingest::Error::UnknownPartition { .. }),
        "{e:?}"
    );
    let big = Producer::builder()
        .bootstrap(&bootstrap())
        .set("max.request.size", "2048")
        .build()
        .await
        .unwrap();
    let e = big
        .send(ProducerRecord::new(&topic).value(vec![0u8; 4096]))
        .await
        .unwrap_err();
    assert!(
        matches!(e, kafka_ingest::Error::RecordTooLarge { .. }),
        "{e:?}"
    );
    let e = Producer::builder()
        .set("enable.idempotence", "true")
        .set("acks", "1")
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("acks"), "{e}");
    p.close(Duration::from_secs(5)).await;
    let e = p
        .send(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(matches!(e, kafka_ingest::Error::Closed), "{e:?}");
}

/// A `producer_byte_rate` client quota: the broker answers with
/// `throttle_time_ms`, the producer holds back for that long (KIP-219) and
/// stays near the quota instead of being muted, and every record arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quota_throttles_and_the_producer_honours_it() {
    let _bound = crate::support::watchdog(
        "producer::client_quota_throttles_and_the_producer_honours_it",
        300,
    );
    let topic = unique("quota");
    create_topic(&topic, 1).await;
    let client_id = unique("quota-client");
    // The broker rates over an ~10 s window: 150 KB at 10 KB/s is over it.
    const RATE: usize = 10_000; // bytes/s
    let quota = |op: &str, cfg: &str| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
        let out = std::process::Command::new(script)
            .args([
                "tool",
                "kafka.admin.ConfigCommand",
                "--bootstrap-server",
                &bootstrap(),
                "--alter",
                op,
                cfg,
                "--entity-type",
                "clients",
                "--entity-name",
                &client_id,
            ])
            .output()
            .expect("run ConfigCommand");
        assert!(
            out.status.success(),
            "ConfigCommand: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    quota("--add-config", &format!("producer_byte_rate={RATE}"));
    tokio::time::sleep(Duration::from_secs(2)).await; // quotas reach the broker asynchronously
    let p = producer(&[("client.id", client_id.as_str()), ("linger.ms", "5")]).await;
    let start = std::time::Instant::now();
    let mut futs = Vec::new();
    const N: usize = 150;
    for i in 0..N {
        futs.push(
            p.send(ProducerRecord::new(&topic).value(vec![i as u8; 1000]))
                .await
                .unwrap(),
        );
    }
    for f in futs {
        f.await.expect("delivered despite the quota");
    }
    let elapsed = start.elapsed();
    let m = p.throttle_metrics();
    eprintln!("{N} KB in {elapsed:?} under a {RATE} B/s quota; {m:?}");
    assert!(m.throttled_responses > 0, "the broker throttled us: {m:?}");
    assert!(m.throttle_time_ms_total > 0);
    // The same throttle shows in the metrics snapshot, and nothing failed.
    let pm = p.metrics();
    assert_eq!(pm.throttle, m, "{pm:?}");
    assert_eq!(
        (pm.records_sent, pm.records_failed),
        (N as u64, 0),
        "{pm:?}"
    );
    // Held back by the quota (a generous bound: no timing is asserted tightly).
    assert!(
        elapsed > Duration::from_secs(2),
        "{N} KB at {RATE} B/s cannot take {elapsed:?}"
    );
    p.close(Duration::from_secs(10)).await;
    quota("--delete-config", "producer_byte_rate");
    let end = client()
        .await
        .admin()
        .list_offsets(&[(TopicPartition::new(&topic, 0), OffsetSpec::Latest)])
        .await
        .unwrap();
    assert_eq!(end.values().next().unwrap().offset, N as i64);
}

/// Compressed, batch.size counts the estimated compressed size (as in Java),
/// so batches of compressible records hold far more than batch.size; every
/// record still arrives, in order, for each codec.
#[tokio::test]
async fn compressed_batches_grow_with_the_ratio_and_read_back_whole() {
    let _bound = crate::support::watchdog(
        "producer::compressed_batches_grow_with_the_ratio_and_read_back_whole",
        300,
    );
    const N: usize = 4500;
    let value = |i: usize| {
        let mut v: Vec<u8> = (0..1000).map(|j| b'a' + (j % 13) as u8).collect();
        v.extend_from_slice(format!("{i:08}").as_bytes());
        Bytes::from(v)
    };
    let mut batches = HashMap::new();
    for codec in Compression::ALL {
        let topic = unique(&format!("ratio-{codec}"));
        create_topic(&topic, 1).await;
        // A long linger: batches go out because they are full, not by time.
        let p = producer(&[
            ("compression.type", codec.name()),
            ("batch.size", "16384"),
            ("linger.ms", "200"),
        ])
        .await;
        let mut acks = Vec::with_capacity(N);
        for i in 0..N {
            acks.push(
                p.send(ProducerRecord::new(&topic).value(value(i)))
                    .await
                    .unwrap(),
            );
            // In waves: the estimate learns from batches sent, so a single
            // burst would open every batch before the first was compressed.
            if i % 300 == 299 {
                p.flush().await.unwrap();
            }
        }
        p.flush().await.unwrap();
        for (i, a) in acks.into_iter().enumerate() {
            assert_eq!(a.await.unwrap().offset, i as i64, "{codec}");
        }
        let m = p.metrics();
        assert_eq!(m.records_sent, N as u64, "{codec}: {m:?}");
        batches.insert(codec, m.batches_sent);
        p.close(Duration::from_secs(10)).await;

        let c = crate::consumer::consumer(&unique("ratio"), &[]).await;
        c.assign(&[TopicPartition::new(&topic, 0)]).await.unwrap();
        let mut got = Vec::new();
        while got.len() < N {
            let more = c.poll(Duration::from_secs(5)).await.unwrap();
            assert!(!more.is_empty(), "{codec}: stalled at {}", got.len());
            got.extend(more);
        }
        c.close().await;
        assert_eq!(got.len(), N, "{codec}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(
                (r.offset, r.value.as_ref()),
                (i as i64, Some(&value(i))),
                "{codec}"
            );
        }
    }
    // 16 KiB holds 15 of these uncompressed: 300 batches.
    let plain = batches[&Compression::None];
    assert!(plain >= 290, "{batches:?}");
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        assert!(
            batches[&codec] * 4 < plain * 3,
            "{codec} batches as if uncompressed: {batches:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_sends_report_every_tag_once_at_its_offset() {
    let _bound = crate::support::watchdog(
        "producer::tagged_sends_report_every_tag_once_at_its_offset",
        300,
    );
    let topic = unique("tagged");
    client()
        .await
        .admin()
        .create_topic(NewTopic::new(&topic, 3, 1).config("max.message.bytes", "10000"))
        .await
        .unwrap();
    // Without a delivery handler there is nowhere to report: refused.
    let plain = producer(&[]).await;
    let e = plain
        .send_tagged(ProducerRecord::new(&topic).value("x"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(e, kafka_ingest::Error::InvalidArgument { .. }),
        "{e:?}"
    );
    plain.close(Duration::from_secs(5)).await;

    type Seen =
        std::sync::Arc<std::sync::Mutex<Vec<(u64, Result<(i32, i64), kafka_ingest::Error>)>>>;
    let seen = Seen::default();
    let report = seen.clone();
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "5")
        .delivery_handler(move |r, tag| {
            let r = r.map(|m| (m.partition, m.offset));
            report.lock().unwrap().push((tag, r));
        })
        .build()
        .await
        .unwrap();
    const N: u64 = 20_000;
    for i in 0..N {
        p.send_tagged(ProducerRecord::new(&topic).value(i.to_string()), i)
            .await
            .unwrap();
    }
    // Over the topic's max.message.bytes: the broker refuses it, and the
    // refusal reaches the handler with the record's tag.
    p.send_tagged(
        ProducerRecord::new(&topic).value(vec![b'x'; 20_000]),
        u64::MAX,
    )
    .await
    .unwrap();
    p.flush().await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        seen.len() as u64,
        N + 1,
        "one report per record, all by flush()"
    );
    let mut at = HashMap::new();
    for (tag, r) in seen {
        if tag == u64::MAX {
            let e = r.unwrap_err();
            assert!(
                matches!(e, kafka_ingest::Error::RecordTooLarge { .. }),
                "{e:?}"
            );
            continue;
        }
        let (partition, offset) = r.unwrap_or_else(|e| panic!("tag {tag}: {e}"));
        assert!(
            at.insert((partition, offset), tag).is_none(),
            "two tags at {partition}@{offset}"
        );
    }
    assert_eq!(at.len() as u64, N, "every tag once");
    p.close(Duration::from_secs(10)).await;
    // Read back by librdkafka: each reported place holds that tag's record.
    let dumped = peer_dump(&bootstrap(), &topic, N as usize);
    assert_eq!(dumped.len() as u64, N);
    for r in dumped {
        let tag = at[&(r.partition, r.offset)];
        let want = Some(Bytes::from(tag.to_string()));
        assert_eq!(r.value, hex(&want), "{}@{}", r.partition, r.offset);
    }
}
