//! Interop with librdkafka (confluent-kafka): records, groups, offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kafka_ingest::{Compression, TopicPartition};

use crate::consumer::{consumer, produce};
use crate::support::{bootstrap, create_topic, librdkafka, unique};

fn hex(b: &Option<bytes::Bytes>) -> Option<String> {
    b.as_ref().map(hex::encode)
}

#[tokio::test]
async fn records_produced_by_librdkafka_with_every_codec_read_identically() {
    let _bound = crate::support::watchdog(
        "interop::records_produced_by_librdkafka_with_every_codec_read_identically",
        300,
    );
    for codec in Compression::ALL {
        let topic = unique(&format!("rdk-{codec}"));
        create_topic(&topic, 3).await;
        let b = bootstrap();
        let out = librdkafka(&[
            "produce",
            "--bootstrap",
            &b,
            "--topic",
            &topic,
            "--codec",
            codec.name(),
            "--count",
            "200",
        ]);
        let sent: HashMap<(i64, i64), serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| {
                (
                    (
                        v["partition"].as_i64().unwrap(),
                        v["offset"].as_i64().unwrap(),
                    ),
                    v,
                )
            })
            .collect();
        assert_eq!(sent.len(), 200);
        let c = consumer(&unique("rdk"), &[]).await;
        c.subscribe(&[&topic]).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 200 {
            got.extend(c.poll(Duration::from_secs(2)).await.unwrap());
        }
        c.close().await;
        assert_eq!(got.len(), 200, "{codec}");
        for r in got {
            let want = &sent[&(r.partition as i64, r.offset)];
            assert_eq!(hex(&r.key).as_deref(), want["key"].as_str(), "{codec} key");
            assert_eq!(
                hex(&r.value).as_deref(),
                want["value"].as_str(),
                "{codec} value"
            );
            assert_eq!(
                r.timestamp,
                want["timestamp"].as_i64().unwrap(),
                "{codec} timestamp"
            );
            let headers: Vec<(String, Option<String>)> =
                r.headers.iter().map(|(k, v)| (k.clone(), hex(v))).collect();
            let want_h: Vec<(String, Option<String>)> = want["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_owned(),
                        h[1].as_str().map(str::to_owned),
                    )
                })
                .collect();
            assert_eq!(headers, want_h, "{codec} headers");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_with_a_librdkafka_member_splits_partitions() {
    let _bound = crate::support::watchdog(
        "interop::mixed_group_with_a_librdkafka_member_splits_partitions",
        300,
    );
    let topic = unique("mixed");
    create_topic(&topic, 6).await;
    produce(&topic, 0, 600).await;
    let group = unique("mixed-g");
    let ours = consumer(&group, &[]).await;
    ours.subscribe(&[&topic]).await.unwrap();
    // Our member joins first; the librdkafka member joins and stays for 12 s.
    while ours.assignment().is_empty() {
        ours.poll(Duration::from_millis(200)).await.unwrap();
    }
    let (b, t, g) = (bootstrap(), topic.clone(), group.clone());
    let peer = tokio::task::spawn_blocking(move || {
        librdkafka(&[
            "member",
            "--bootstrap",
            &b,
            "--topic",
            &t,
            "--group",
            &g,
            "--seconds",
            "12",
            "--assignor",
            "range",
        ])
    });
    let mut ours_seen = Vec::new();
    let mut mid_assignment: BTreeSet<TopicPartition> = BTreeSet::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(9) {
        let rs = ours.poll(Duration::from_millis(200)).await.unwrap();
        if !rs.is_empty() {
            ours.commit().await.unwrap();
        }
        ours_seen.extend(rs);
        if ours.assignment().len() == 3 {
            mid_assignment = ours.assignment().into_iter().collect();
        }
    }
    let peer: serde_json::Value = serde_json::from_str(peer.await.unwrap().trim()).unwrap();
    let peer_parts: BTreeSet<i32> = peer["assignment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    let ours_parts: BTreeSet<i32> = mid_assignment.iter().map(|tp| tp.partition).collect();
    assert_eq!(ours_parts.len(), 3, "we held half while both were members");
    assert_eq!(
        peer_parts.len(),
        3,
        "librdkafka held the other half: {peer}"
    );
    assert!(
        ours_parts.is_disjoint(&peer_parts),
        "ours {ours_parts:?} vs librdkafka {peer_parts:?}"
    );
    ours.close().await;
}

#[tokio::test]
async fn committed_offsets_are_shared_with_librdkafka_both_ways() {
    let _bound = crate::support::watchdog(
        "interop::committed_offsets_are_shared_with_librdkafka_both_ways",
        300,
    );
    let topic = unique("offs");
    create_topic(&topic, 2).await;
    produce(&topic, 0, 100).await;
    let b = bootstrap();
    // librdkafka commits, we resume.
    let g1 = unique("rdk-commits");
    librdkafka(&[
        "commit",
        "--bootstrap",
        &b,
        "--topic",
        &topic,
        "--group",
        &g1,
        "--offsets",
        "0:7,1:11",
    ]);
    let c = consumer(&g1, &[]).await;
    c.subscribe(&[&topic]).await.unwrap();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    while first.len() < 2 {
        for r in c.poll(Duration::from_secs(1)).await.unwrap() {
            first.entry(r.partition).or_insert(r.offset);
        }
    }
    assert_eq!(first, BTreeMap::from([(0, 7), (1, 11)]));
    c.close().await;
    // We commit, librdkafka reads it back.
    let g2 = unique("we-commit");
    let c = consumer(&g2, &[]).await;
    let offsets = BTreeMap::from([
        (TopicPartition::new(&topic, 0), 3),
        (TopicPartition::new(&topic, 1), 5),
    ]);
    c.commit_offsets(&offsets).await.unwrap();
    c.close().await;
    let out = librdkafka(&[
        "committed",
        "--bootstrap",
        &b,
        "--topic",
        &topic,
        "--group",
        &g2,
        "--partitions",
        "2",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["0"].as_i64(), v["1"].as_i64()),
        (Some(3), Some(5)),
        "{v}"
    );
}

#[tokio::test]
async fn read_committed_hides_aborted_transactions_and_markers() {
    let _bound = crate::support::watchdog(
        "interop::read_committed_hides_aborted_transactions_and_markers",
        300,
    );
    let topic = unique("txn");
    create_topic(&topic, 1).await;
    librdkafka(&[
        "txn",
        "--bootstrap",
        &bootstrap(),
        "--topic",
        &topic,
        "--count",
        "5",
    ]);
    let tp = TopicPartition::new(&topic, 0);
    for (isolation, want) in [
        ("read_committed", vec!["commit"]),
        ("read_uncommitted", vec!["abort", "commit"]),
    ] {
        let c = consumer(&unique("iso"), &[("isolation.level", isolation)]).await;
        c.assign(std::slice::from_ref(&tp)).await.unwrap();
        let mut got = Vec::new();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            got.extend(c.poll(Duration::from_millis(300)).await.unwrap());
        }
        let kinds: BTreeSet<String> = got
            .iter()
            .map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap())
                    .split('-')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want, "{isolation}");
        assert_eq!(
            got.len(),
            5 * want.len(),
            "{isolation}: no transaction markers as records"
        );
        // The position moved past the final commit marker.
        assert_eq!(c.position(&tp), Some(12), "{isolation}");
        c.close().await;
    }
}
