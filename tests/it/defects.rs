//! Regression tests for defects found by review (issue 9), against the real
//! broker. Each fails on the code before its fix.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_ingest::{Consumer, Error, NewTopic, Producer, ProducerRecord, TopicPartition};

use crate::consumer::{builder as group_builder, produce};
use crate::support::{bootstrap, client, create_topic, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_close_return_after_every_callback_ran() {
    let _bound = crate::support::watchdog(
        "defects::flush_and_close_return_after_every_callback_ran",
        300,
    );
    let topic = unique("flush-cb");
    create_topic(&topic, 3).await;
    const N: usize = 200_000;
    for run in 0..3 {
        let p = Producer::builder()
            .bootstrap(&bootstrap())
            .set("linger.ms", "5")
            .build()
            .await
            .unwrap();
        let called = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            let called = called.clone();
            p.send_with_callback(ProducerRecord::new(&topic).value(i.to_string()), move |r| {
                r.expect("delivered");
                called.fetch_add(1, Ordering::Relaxed);
            })
            .await
            .unwrap();
        }
        if run % 2 == 0 {
            p.flush().await.unwrap();
            assert_eq!(
                called.load(Ordering::Relaxed),
                N,
                "run {run}: after flush()"
            );
            p.close(Duration::from_secs(10)).await;
        } else {
            let report = p.close(Duration::from_secs(60)).await;
            assert_eq!(report.undelivered, 0);
            assert_eq!(
                called.load(Ordering::Relaxed),
                N,
                "run {run}: after close()"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_fails_alone_and_the_rest_go_through() {
    let _bound = crate::support::watchdog(
        "defects::an_oversized_record_fails_alone_and_the_rest_go_through",
        300,
    );
    crate::support::init_logging();
    // lz4: the too-large batch was sent packed (compressed, its bodies
    // freed), so splitting it unpacks it first.
    for codec in ["none", "lz4"] {
        oversized_fails_alone(codec).await;
    }
}

/// Hex of random bytes: lz4 finds no matches in it, so it stays large.
fn incompressible(rng: &mut fastrand::Rng, tag: &str, len: usize) -> Vec<u8> {
    let mut v = tag.as_bytes().to_vec();
    while v.len() < len {
        v.extend_from_slice(format!("{:016x}", rng.u64(..)).as_bytes());
    }
    v.truncate(len);
    v
}

async fn oversized_fails_alone(codec: &str) {
    let admin = client().await.admin();
    let topic = unique(&format!("too-large-{codec}"));
    admin
        .create_topic(NewTopic::new(&topic, 1, 1).config("max.message.bytes", "10000"))
        .await
        .unwrap();
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "100")
        .set("batch.size", "65536")
        .set("compression.type", codec)
        .build()
        .await
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let start = Instant::now();
    let mut futs = Vec::new();
    let mut expect: Vec<Vec<u8>> = Vec::new();
    for i in 0..5 {
        expect.push(format!("small-{i}").into_bytes());
        futs.push(
            p.send(ProducerRecord::new(&topic).value(format!("small-{i}")))
                .await
                .unwrap(),
        );
    }
    let big = p
        .send(ProducerRecord::new(&topic).value(incompressible(&mut rng, "big", 50_000)))
        .await
        .unwrap();
    for i in 5..10 {
        expect.push(format!("small-{i}").into_bytes());
        futs.push(
            p.send(ProducerRecord::new(&topic).value(format!("small-{i}")))
                .await
                .unwrap(),
        );
    }
    // A batch of several records that is too large as a whole is split.
    for i in 0..10 {
        let v = incompressible(&mut rng, &format!("mid-{i}-"), 3000);
        expect.push(v.clone());
        futs.push(p.send(ProducerRecord::new(&topic).value(v)).await.unwrap());
    }
    let e = big.await.unwrap_err();
    assert!(
        matches!(e, Error::RecordTooLarge { size, max: None } if size > 50_000),
        "{codec}: {e:?}"
    );
    let mut offsets = Vec::new();
    for f in futs {
        offsets.push(f.await.expect("every other record is delivered").offset);
    }
    eprintln!(
        "{codec}: all delivered {:?} after the first send",
        start.elapsed()
    );
    assert_eq!(
        offsets,
        (0..20).collect::<Vec<i64>>(),
        "{codec}: in order, no gaps"
    );
    p.close(Duration::from_secs(5)).await;

    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("auto.offset.reset", "earliest")
        .build()
        .await
        .unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 20 {
        for r in c.poll(Duration::from_millis(500)).await.unwrap() {
            got.push(r.value.unwrap().to_vec());
        }
    }
    assert!(got == expect, "{codec}: the records read back differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_be_read_is_an_error_and_other_partitions_flow() {
    let _bound = crate::support::watchdog(
        "defects::a_batch_that_cannot_be_read_is_an_error_and_other_partitions_flow",
        300,
    );
    let topic = unique("corrupt");
    create_topic(&topic, 2).await;
    // Partition 0 starts with a gzip batch that inflates past the
    // consumer's fetch.max.bytes (its decompression cap).
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("compression.type", "gzip")
        .set("linger.ms", "50")
        .set("batch.size", "1048576")
        .build()
        .await
        .unwrap();
    let mut futs = Vec::new();
    for _ in 0..100 {
        futs.push(
            p.send(
                ProducerRecord::new(&topic)
                    .partition(0)
                    .value(vec![0u8; 4096]),
            )
            .await
            .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
    for i in 0..5 {
        p.send(
            ProducerRecord::new(&topic)
                .partition(0)
                .value(format!("after-{i}")),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    for i in 0..50 {
        p.send(
            ProducerRecord::new(&topic)
                .partition(1)
                .value(format!("p1-{i}")),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    p.close(Duration::from_secs(5)).await;

    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "65536")
        .set("max.partition.fetch.bytes", "65536")
        .build()
        .await
        .unwrap();
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    c.assign(&[p0.clone(), p1.clone()]).await.unwrap();
    let mut p1_seen = 0;
    let mut failure = None;
    while p1_seen < 50 || failure.is_none() {
        match c.poll(Duration::from_millis(500)).await {
            Ok(rs) => {
                assert!(
                    rs.iter().all(|r| r.partition == 1),
                    "nothing from the stuck partition"
                );
                p1_seen += rs.len();
            }
            Err(e) => failure = Some(e),
        }
    }
    let Some(Error::CorruptRecords {
        partition, offset, ..
    }) = &failure
    else {
        panic!("expected CorruptRecords, got {failure:?}");
    };
    assert_eq!((*partition, *offset), (0, 0));
    assert!(failure.unwrap().to_string().contains("seek past offset 0"));
    // The application skips the batch: the records after it flow.
    c.seek(&p0, 100).unwrap();
    let mut after = Vec::new();
    while after.len() < 5 {
        for r in c.poll(Duration::from_millis(500)).await.unwrap() {
            after.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(
        after,
        (0..5).map(|i| format!("after-{i}")).collect::<Vec<_>>()
    );
    assert!(matches!(
        c.seek(&p0, -1),
        Err(Error::InvalidArgument { .. })
    ));
}

/// Member A stops polling, so a rebalance started by B waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_honours_its_timeout_during_a_rebalance_and_can_be_dropped() {
    let _bound = crate::support::watchdog(
        "defects::poll_honours_its_timeout_during_a_rebalance_and_can_be_dropped",
        300,
    );
    let topic = unique("poll-timeout");
    create_topic(&topic, 2).await;
    let group = unique("pt");
    let a = group_builder(&group, &[]).build().await.unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    while a.assignment().is_empty() {
        a.poll(Duration::from_millis(200)).await.unwrap();
    }
    // B's JoinGroup is held by the broker until A rejoins (A polls again).
    let b = group_builder(&group, &[]).build().await.unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let start = Instant::now();
    let got = b.poll(Duration::from_millis(500)).await.unwrap();
    assert!(got.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "poll took {:?}",
        start.elapsed()
    );
    // Drop polls mid-join, many times.
    for _ in 0..5 {
        tokio::select! {
            _ = b.poll(Duration::from_secs(10)) => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    // A rejoins; B's join (still running in the background) completes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.assignment().is_empty() || a.assignment().len() != 1 {
        a.poll(Duration::from_millis(100)).await.unwrap();
        b.poll(Duration::from_millis(100)).await.unwrap();
        assert!(Instant::now() < deadline, "rebalance did not finish");
    }
    // B now idles past the session timeout (6 s): only its heartbeats
    // keep it in the group (they stopped for good if a dropped poll left
    // it "joining").
    tokio::time::sleep(Duration::from_secs(8)).await;
    let desc = client().await.admin().describe_group(&group).await.unwrap();
    assert_eq!(desc.members.len(), 2, "{desc:?}");
    assert!(b.poll(Duration::from_millis(200)).await.is_ok());
    assert_eq!(b.assignment().len(), 1, "B kept its partition");
    a.close().await;
    b.close().await;
}

/// A's JoinGroup waits for the slow member B; meanwhile A's retained
/// partitions keep fetching and its commits succeed (they used to queue
/// behind the JoinGroup on the one shared connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_join_does_not_hold_back_fetches_or_commits() {
    let _bound = crate::support::watchdog(
        "defects::a_pending_join_does_not_hold_back_fetches_or_commits",
        300,
    );
    let topic = unique("join-roles");
    create_topic(&topic, 4).await;
    let group = unique("jr");
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let a = group_builder(&group, &coop).build().await.unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    let b = group_builder(&group, &coop).build().await.unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.assignment().len() != 2 || b.assignment().len() != 2 {
        a.poll(Duration::from_millis(100)).await.unwrap();
        b.poll(Duration::from_millis(100)).await.unwrap();
        assert!(Instant::now() < deadline, "two members did not settle");
    }
    // C joins; A rejoins at once, B stays silent (slow), holding the round.
    let c = group_builder(&group, &coop).build().await.unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let joiner = tokio::spawn(async move {
        for _ in 0..100 {
            let _ = c.poll(Duration::from_millis(100)).await;
        }
        c
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mine = a.assignment();
    let before = client().await.admin().describe_group(&group).await.unwrap();
    assert_ne!(
        before.state, "Stable",
        "a rebalance is in progress: {before:?}"
    );
    produce(&topic, 0, 200).await;
    let mut got = 0;
    let mut commits = 0;
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(4) {
        let rs = a.poll(Duration::from_millis(200)).await.unwrap();
        assert!(rs
            .iter()
            .all(|r| mine.contains(&TopicPartition::new(&*r.topic, r.partition))));
        got += rs.len();
        if !rs.is_empty() {
            let offsets: BTreeMap<TopicPartition, i64> = rs
                .iter()
                .map(|r| (TopicPartition::new(&*r.topic, r.partition), r.offset + 1))
                .collect();
            tokio::time::timeout(Duration::from_secs(3), a.commit_offsets(&offsets))
                .await
                .expect("a commit is answered while the join waits")
                .unwrap();
            commits += 1;
        }
    }
    assert!(got > 0, "A fetched its retained partitions while joining");
    assert!(commits > 0);
    let during = client().await.admin().describe_group(&group).await.unwrap();
    assert_ne!(
        during.state, "Stable",
        "B still holds the round: {during:?}"
    );
    // B wakes up; everyone settles.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        a.poll(Duration::from_millis(100)).await.unwrap();
        b.poll(Duration::from_millis(100)).await.unwrap();
        let d = client().await.admin().describe_group(&group).await.unwrap();
        if d.state == "Stable"
            && d.members.len() == 3
            && d.members.iter().all(|m| !m.assignment.is_empty())
        {
            break;
        }
        assert!(Instant::now() < deadline, "did not settle: {d:?}");
    }
    let c = joiner.await.unwrap();
    a.close().await;
    b.close().await;
    c.close().await;
}

/// A panic in a background task is not lost: the next API call reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_task_failure_reaches_the_caller() {
    let _bound =
        crate::support::watchdog("defects::a_background_task_failure_reaches_the_caller", 300);
    let topic = unique("task-fail");
    create_topic(&topic, 1).await;
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("auto.offset.reset", "earliest")
        .build()
        .await
        .unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).await.unwrap();
    c.poll(Duration::from_millis(100)).await.unwrap();
    kafka_ingest::internals::panic_a_consumer_task(&c);
    let start = Instant::now();
    let e = loop {
        match c.poll(Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(_) => assert!(start.elapsed() < Duration::from_secs(10), "never reported"),
        }
    };
    assert!(matches!(e, Error::Background { .. }), "{e:?}");
    assert!(e.to_string().contains("injected fault"), "{e}");
    c.close().await;

    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    p.send(ProducerRecord::new(&topic).value("ok"))
        .await
        .unwrap()
        .await
        .unwrap();
    kafka_ingest::internals::panic_a_producer_task(&p);
    let start = Instant::now();
    let e = loop {
        match p.flush().await {
            Err(e) => break e,
            Ok(()) => assert!(start.elapsed() < Duration::from_secs(10), "never reported"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(matches!(e, Error::Background { .. }), "{e:?}");
    let e = p
        .send(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    p.close(Duration::from_secs(5)).await;
}
