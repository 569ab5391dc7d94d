//! Safe commits with the offset map: a restart does not redo completed
//! records; a map that would not fit stops new work; foreign or forged
//! metadata is rejected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use kafka_ingest::{OffsetAndMetadata, TopicPartition};
use kafka_ingest_pipeline::{
    Error, FailureKind, HandlerError, InvalidMetadata, MapError, OffsetMap, Ordering, Pipeline,
    Reason, Retry,
};

use crate::support::*;

/// The group's committed offset and metadata of `tp`.
async fn committed_of(group: &str, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
    let c = consumer(group).build().await.unwrap();
    let found = c
        .committed_with_metadata(std::slice::from_ref(tp))
        .await
        .unwrap();
    c.close().await;
    found[tp].clone()
}

fn stuck() -> HandlerError {
    HandlerError::new(FailureKind::Retryable, "test::Stuck", "not yet")
}

#[tokio::test]
async fn restart_skips_what_the_offset_map_says_is_done() {
    let topic = unique("omap");
    create_topic(&topic, 1).await;
    let records: Vec<_> = (0..200)
        .map(|i| (0, format!("k{i}"), format!("{i}")))
        .collect();
    produce(&topic, &records).await;
    let group = unique("omap-g");
    // Offset 0 keeps failing (long backoff); the rest complete.
    let builder = Pipeline::builder(consumer(&group), producer().await)
        .topics([&topic])
        .ordering(Ordering::Unordered)
        .retry(Retry::exponential(Duration::from_secs(60), Duration::from_secs(60)).max_attempts(5))
        .commit_interval(Duration::from_millis(100));
    let run = Running::start(builder, |rec| async move {
        if rec.offset == 0 {
            Err(stuck())
        } else {
            Ok(())
        }
    });
    run.wait(
        "199 processed and committed",
        Duration::from_secs(30),
        |m| m.processed == 199 && m.commits > 0 && m.commit_lag == 200,
    )
    .await;
    let m = run.stop().await;
    assert_eq!(m.processed, 199);

    let tp = TopicPartition::new(&topic, 0);
    let committed = committed_of(&group, &tp).await.expect("committed");
    assert_eq!(committed.offset, 0, "never past the incomplete record");
    let map = OffsetMap::decode(&committed.metadata, 0, Some(200)).unwrap();
    assert_eq!(map.ranges(), &[1..200]);
    assert!(committed.metadata.len() <= 32, "{}", committed.metadata);

    // Restart: only offset 0 runs again.
    let seen: Log<i64> = log();
    let s2 = seen.clone();
    let builder = Pipeline::builder(consumer(&group), producer().await).topics([&topic]);
    let run = Running::start(builder, move |rec| {
        let seen = s2.clone();
        async move {
            seen.lock().unwrap().push(rec.offset);
            Ok(())
        }
    });
    run.wait("the one left", Duration::from_secs(30), |m| {
        m.processed == 1 && m.skipped == 199
    })
    .await;
    let m = run.stop().await;
    assert_eq!(*seen.lock().unwrap(), vec![0]);
    assert_eq!(m.skipped, 199);
    let committed = committed_of(&group, &tp).await;
    assert_eq!(committed, Some(OffsetAndMetadata::new(200, "")));
}

#[tokio::test]
async fn a_full_offset_map_stops_new_work_until_it_shrinks() {
    let topic = unique("omap-full");
    create_topic(&topic, 1).await;
    let n = 300;
    let records: Vec<_> = (0..n)
        .map(|i| (0, format!("k{i}"), format!("{i}")))
        .collect();
    produce(&topic, &records).await;
    let group = unique("omap-full-g");
    let release = Arc::new(AtomicBool::new(false));
    let r2 = release.clone();
    let limit = 64;
    // Every third record is stuck until released: the map fragments.
    let builder = Pipeline::builder(consumer(&group), producer().await)
        .topics([&topic])
        .ordering(Ordering::Unordered)
        .max_in_flight(32)
        .max_metadata_bytes(limit)
        .retry(
            Retry::exponential(Duration::from_millis(200), Duration::from_millis(200))
                .max_attempts(1000),
        )
        .commit_interval(Duration::from_millis(100));
    let run = Running::start(builder, move |rec| {
        let release = r2.clone();
        async move {
            if rec.offset % 3 == 0 && !release.load(AtomicOrdering::Relaxed) {
                Err(stuck())
            } else {
                Ok(())
            }
        }
    });
    run.wait("offset-map pause", Duration::from_secs(30), |m| {
        m.paused.get(&Reason::OffsetMap) == Some(&1)
    })
    .await;
    let before = run.handle.metrics().processed;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = run.handle.metrics();
    // 200 records are not stuck: the pipeline stopped before reaching them all.
    assert!(
        m.processed < 200,
        "work stopped before the map outgrew {limit} bytes: {m:?}"
    );
    assert!(
        m.processed <= before + 32,
        "no new work while full: {before} -> {}",
        m.processed
    );
    let tp = TopicPartition::new(&topic, 0);
    let committed = committed_of(&group, &tp).await;
    if let Some(c) = &committed {
        assert!(
            c.metadata.len() <= limit,
            "committed map of {} bytes",
            c.metadata.len()
        );
    }

    release.store(true, AtomicOrdering::Relaxed);
    run.wait("everything after release", Duration::from_secs(60), |m| {
        m.processed == n as u64
    })
    .await;
    let m = run.stop().await;
    assert!(!m.paused.contains_key(&Reason::OffsetMap));
    let committed = committed_of(&group, &tp).await;
    assert_eq!(committed, Some(OffsetAndMetadata::new(n as i64, "")));
}

#[tokio::test]
async fn foreign_and_forged_metadata_are_rejected() {
    let topic = unique("omap-bad");
    create_topic(&topic, 1).await;
    let records: Vec<_> = (0..10)
        .map(|i| (0, format!("k{i}"), format!("{i}")))
        .collect();
    produce(&topic, &records).await;
    let tp = TopicPartition::new(&topic, 0);
    let commit = |group: String, meta: String| {
        let tp = tp.clone();
        async move {
            let c = consumer(&group).build().await.unwrap();
            c.commit_offsets_with_metadata(&BTreeMap::from([(
                tp,
                OffsetAndMetadata::new(2, meta),
            )]))
            .await
            .unwrap();
            c.close().await;
        }
    };
    let run_with = |group: String, policy: InvalidMetadata| {
        let topic = topic.clone();
        async move {
            let builder = Pipeline::builder(consumer(&group), producer().await)
                .topics([&topic])
                .invalid_metadata(policy);
            Running::start(builder, |_| async { Ok(()) })
        }
    };

    let foreign = unique("omap-foreign");
    commit(foreign.clone(), "parallel-consumer:abc".into()).await;
    let e = run_with(foreign, InvalidMetadata::Fail)
        .await
        .join()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OffsetMap { partition, source: MapError::Foreign { .. } } if *partition == tp),
        "{e}"
    );
    assert!(e.to_string().contains(&tp.to_string()), "{e}");

    let forged = unique("omap-forged");
    let map = OffsetMap::from_ranges(2, vec![3..1000]).unwrap();
    commit(forged.clone(), map.encode(2)).await;
    let e = run_with(forged, InvalidMetadata::Fail)
        .await
        .join()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::OffsetMap {
                source: MapError::PastLogEnd {
                    claimed: 1000,
                    log_end: 10
                },
                ..
            }
        ),
        "{e}"
    );

    let ignored = unique("omap-ignored");
    commit(ignored.clone(), "parallel-consumer:abc".into()).await;
    let run = run_with(ignored, InvalidMetadata::Ignore).await;
    run.wait(
        "records after the committed offset",
        Duration::from_secs(30),
        |m| m.processed == 8,
    )
    .await;
    run.stop().await;
}

/// Shutdown cancels a handler that outlives the shutdown timeout, commits
/// what completed (the cancelled record stays uncommitted) and leaves.
#[tokio::test]
async fn shutdown_cancels_after_its_timeout_and_commits_the_rest() {
    let topic = unique("omap-stop");
    create_topic(&topic, 1).await;
    let records: Vec<_> = (0..20)
        .map(|i| (0, format!("k{i}"), format!("{i}")))
        .collect();
    produce(&topic, &records).await;
    let group = unique("omap-stop-g");
    let builder = Pipeline::builder(consumer(&group), producer().await)
        .topics([&topic])
        .ordering(Ordering::Unordered)
        .shutdown_timeout(Duration::from_millis(500));
    let run = Running::start(builder, |rec| async move {
        if rec.offset == 5 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(())
    });
    run.wait("all but the hung one", Duration::from_secs(30), |m| {
        m.processed == 19
    })
    .await;
    let started = std::time::Instant::now();
    let m = run.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(m.processed, 19);
    let tp = TopicPartition::new(&topic, 0);
    let committed = committed_of(&group, &tp)
        .await
        .expect("committed on shutdown");
    assert_eq!(committed.offset, 5);
    let map = OffsetMap::decode(&committed.metadata, 5, Some(20)).unwrap();
    assert_eq!(map.ranges(), &[6..20]);
    let g = client().await.admin().describe_group(&group).await.unwrap();
    assert!(g.members.is_empty(), "left the group: {g:?}");
}
