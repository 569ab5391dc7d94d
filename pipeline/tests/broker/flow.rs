//! Retries in place, retry tiers, the DLQ and per-key order.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use kafka_ingest_pipeline::headers::{self, Provenance};
use kafka_ingest_pipeline::{FailureKind, HandlerError, Jitter, Ordering, Pipeline, Retry};

use crate::support::*;

#[derive(Debug, Clone)]
struct Call {
    key: String,
    seq: u64,
    attempt: u32,
    tier: Option<usize>,
    /// Order of start and end among all calls.
    start: u64,
    end: u64,
    started_ms: i64,
    due: Option<i64>,
}

/// kind: 0 ok, 1 fatal, 2 always fails, 3 fails once.
fn kind_of(i: u64) -> u64 {
    match i % 20 {
        3 => 1,
        7 => 2,
        11 | 15 => 3,
        _ => 0,
    }
}

#[tokio::test]
async fn retries_tiers_dlq_and_key_order() {
    let topic = unique("flow");
    create_topic(&topic, 3).await;
    let keys = 40u64;
    let n = 1200u64;
    let records: Vec<(i32, String, String)> = (0..n)
        .map(|i| {
            let key = i % keys;
            let seq = i / keys;
            (
                (key % 3) as i32,
                format!("k{key}"),
                format!("{key}:{seq}:{}", kind_of(i)),
            )
        })
        .collect();
    let offsets = produce(&topic, &records).await;

    let calls: Log<Call> = log();
    let clock = Arc::new(AtomicU64::new(0));
    let builder = Pipeline::builder(consumer(&unique("flow-g")), producer().await)
        .topics([&topic])
        .ordering(Ordering::Key)
        .max_in_flight(16)
        .retry(
            Retry::exponential(Duration::from_millis(5), Duration::from_millis(40))
                .jitter(Jitter::Full)
                .max_attempts(2),
        )
        .retry_topics(["1s", "2s"])
        .commit_interval(Duration::from_millis(200));
    let (c2, k2) = (calls.clone(), clock.clone());
    let run = Running::start(builder, move |rec| {
        let (calls, clock) = (c2.clone(), k2.clone());
        async move {
            let start = clock.fetch_add(1, AtomicOrdering::SeqCst);
            let started_ms = now_ms();
            let v = String::from_utf8(rec.value.clone().unwrap().to_vec()).unwrap();
            let mut it = v.split(':').map(|x| x.parse::<u64>().unwrap());
            let (key, seq, kind) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            // Some work, so calls overlap if ordering were broken.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let result = match kind {
                1 => Err(HandlerError::new(FailureKind::Fatal, "test::Bad", "bad")),
                2 => Err(HandlerError::new(
                    FailureKind::Retryable,
                    "test::Always",
                    "always",
                )),
                3 if rec.attempt() == 1 => Err(HandlerError::new(
                    FailureKind::Retryable,
                    "test::Once",
                    "once",
                )),
                _ => Ok(()),
            };
            let end = clock.fetch_add(1, AtomicOrdering::SeqCst);
            calls.lock().unwrap().push(Call {
                key: format!("k{key}"),
                seq,
                attempt: rec.attempt(),
                tier: rec.tier(),
                start,
                end,
                started_ms,
                due: headers::due(&rec.headers),
            });
            result
        }
    });
    let bad = (0..n).filter(|i| kind_of(*i) == 1).count() as u64;
    let always = (0..n).filter(|i| kind_of(*i) == 2).count() as u64;
    run.wait(
        "every record processed or dead-lettered",
        Duration::from_secs(90),
        |m| m.processed + m.dead_lettered == n,
    )
    .await;
    let m = run.stop().await;
    assert_eq!(m.processed, n - bad - always);
    assert_eq!(m.dead_lettered, bad + always);
    assert_eq!(m.fatal, bad);
    assert_eq!(m.tiers[0].forwarded, always, "{m:?}");
    assert_eq!(m.tiers[1].forwarded, always);
    assert!(m.paused.is_empty(), "nothing left paused: {:?}", m.paused);

    let calls = calls.lock().unwrap().clone();
    // Per key, source calls never overlap and never go back in seq.
    let mut by_key: BTreeMap<String, Vec<&Call>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.tier.is_none()) {
        by_key.entry(c.key.clone()).or_default().push(c);
    }
    for (k, cs) in &mut by_key {
        cs.sort_by_key(|c| c.start);
        for w in cs.windows(2) {
            assert!(
                w[0].end < w[1].start,
                "{k}: calls overlap: {:?} {:?}",
                w[0],
                w[1]
            );
            assert!(
                w[0].seq <= w[1].seq,
                "{k}: seq went back: {:?} {:?}",
                w[0],
                w[1]
            );
        }
        // Attempts in place: 1 for ok/fatal, 2 for the failing kinds.
        let tries = |seq: u64| cs.iter().filter(|c| c.seq == seq).count();
        for seq in 0..n / keys {
            let kind = kind_of(seq * keys + k[1..].parse::<u64>().unwrap());
            let want = if kind >= 2 { 2 } else { 1 };
            assert_eq!(tries(seq), want, "{k} seq {seq} kind {kind}");
        }
    }
    // Tier calls: one per tier per always-failing record, never before due.
    let mut lateness: HashMap<usize, Vec<i64>> = HashMap::new();
    for c in calls.iter().filter(|c| c.tier.is_some()) {
        let due = c.due.expect("tier record has a due time");
        assert!(
            c.started_ms >= due,
            "processed {} ms early: {c:?}",
            due - c.started_ms
        );
        lateness
            .entry(c.tier.unwrap())
            .or_default()
            .push(c.started_ms - due);
        assert_eq!(
            c.attempt,
            3 + c.tier.unwrap() as u32,
            "attempt numbers run on: {c:?}"
        );
    }
    for (tier, mut l) in lateness {
        l.sort();
        assert_eq!(l.len() as u64, always);
        eprintln!(
            "tier {tier}: lateness p50 {} ms, p99 {} ms, max {} ms (metrics: {:?})",
            l[l.len() / 2],
            l[l.len() * 99 / 100],
            l[l.len() - 1],
            m.tiers[tier]
        );
        assert_eq!(m.tiers[tier].early, 0);
    }

    // The DLQ: every bad and always-failing record, once, naming its origin.
    let dlq = read_all(&format!("{topic}-dlt")).await;
    assert_eq!(dlq.len() as u64, bad + always);
    let mut seen = std::collections::HashSet::new();
    for r in &dlq {
        let p = Provenance::from_headers(&r.headers).expect("provenance headers");
        assert_eq!(p.topic, topic);
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        let (key, seq): (u64, u64) = {
            let mut it = v.split(':').map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        };
        let i = seq * keys + key;
        assert_eq!(p.partition, records[i as usize].0, "{v}");
        assert_eq!(p.offset, offsets[i as usize], "{v}");
        assert_eq!(r.partition, p.partition, "same partition as the original");
        assert!(seen.insert(i), "{v} dead-lettered twice");
        let attempts = headers::attempts(&r.headers);
        let fqcn = headers::first(&r.headers, headers::names::EXCEPTION_FQCN).unwrap();
        if kind_of(i) == 1 {
            assert_eq!(&fqcn[..], b"test::Bad");
            assert_eq!(attempts, 2, "Spring: attempts made + 1");
        } else {
            assert_eq!(&fqcn[..], b"test::Always");
            assert_eq!(attempts, 5, "2 in place + 2 tiers, + 1");
        }
        assert_eq!(
            &headers::first(&r.headers, headers::names::ORIGINAL_CONSUMER_GROUP).unwrap()[..],
            headers::first(&dlq[0].headers, headers::names::ORIGINAL_CONSUMER_GROUP)
                .unwrap()
                .as_ref()
        );
    }
}
