//! Bounded buffering under a burst, and rate limits.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_ingest_pipeline::{BufferLimits, Ordering, Pipeline, Rate, RateLimits, Reason};

use crate::support::*;

/// A slow handler (4 at once, 10 ms each: ~400 records/s) under a burst
/// produced ten times faster: the buffer stays within its limit, the
/// partitions are paused, and resumed once it drains.
#[tokio::test]
async fn slow_handler_under_a_burst() {
    let topic = unique("burst");
    create_topic(&topic, 3).await;
    let limit = 48 * 1024;
    let done = Arc::new(AtomicUsize::new(0));
    let d2 = done.clone();
    let builder = Pipeline::builder(
        consumer(&unique("burst-g")).set("max.poll.records", "50"),
        producer().await,
    )
    .topics([&topic])
    .ordering(Ordering::Unordered)
    .max_in_flight(4)
    .buffer(BufferLimits {
        max_bytes: limit,
        high: 0.8,
        low: 0.5,
    });
    let run = Running::start(builder, move |_rec| {
        let done = d2.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            done.fetch_add(1, AtomicOrdering::Relaxed);
            Ok(())
        }
    });
    run.wait("assignment", Duration::from_secs(30), |m| m.assigned == 3)
        .await;
    // The burst: 2000 records of ~250 bytes in well under a second.
    let n = 2000;
    let body = "x".repeat(240);
    let started = Instant::now();
    let records: Vec<_> = (0..n)
        .map(|i| (i % 3, format!("k{i}"), format!("{i:06}{body}")))
        .collect();
    produce(&topic, &records).await;
    let produce_rate = n as f64 / started.elapsed().as_secs_f64();
    let (mut max_buffered, mut saw_pause) = (0usize, false);
    let samples = Arc::new(Mutex::new(0usize));
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(AtomicOrdering::Relaxed) < n as usize {
        assert!(Instant::now() < deadline, "burst not drained in 60 s");
        let m = run.handle.metrics();
        max_buffered = max_buffered.max(m.buffered_bytes);
        saw_pause |= m.paused.get(&Reason::Buffer).copied().unwrap_or(0) == 3;
        *samples.lock().unwrap() += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.wait("drained and resumed", Duration::from_secs(10), |m| {
        m.buffered_bytes == 0 && !m.paused.contains_key(&Reason::Buffer)
    })
    .await;
    let m = run.stop().await;
    eprintln!(
        "burst at {produce_rate:.0} records/s; buffered at most {max_buffered} B (pipeline's own high-water {} B) of {limit}; {} samples",
        m.max_buffered_bytes,
        samples.lock().unwrap()
    );
    assert!(
        produce_rate > 4000.0,
        "the burst must be ~10x the handler: {produce_rate:.0}/s"
    );
    assert!(saw_pause, "partitions were paused for the buffer");
    assert!(max_buffered <= limit, "sampled {max_buffered} > {limit}");
    assert!(
        m.max_buffered_bytes <= limit,
        "high-water {} > {limit}",
        m.max_buffered_bytes
    );
    assert_eq!(m.processed, n as u64);
}

/// A global 500 records/s limit holds within ±5% over 20 s; changed to
/// 1500/s while running, the new rate holds too. Limited partitions are
/// paused (reason rate-limit), not busy-waited.
#[tokio::test]
async fn rate_limit_holds_and_changes_live() {
    let topic = unique("rate");
    create_topic(&topic, 3).await;
    let n = 20_000;
    let records: Vec<_> = (0..n)
        .map(|i| (i % 3, format!("k{i}"), format!("{i}")))
        .collect();
    produce(&topic, &records).await;
    let starts: Log<Instant> = log();
    let s2 = starts.clone();
    let builder = Pipeline::builder(consumer(&unique("rate-g")), producer().await)
        .topics([&topic])
        .ordering(Ordering::Unordered)
        .max_in_flight(16)
        .rate_limit(Rate::per_second(500.0));
    let run = Running::start(builder, move |_rec| {
        let s = s2.clone();
        async move {
            s.lock().unwrap().push(Instant::now());
            Ok(())
        }
    });
    run.wait("first records", Duration::from_secs(30), |m| {
        m.processed > 0
    })
    .await;
    let t0 = Instant::now() + Duration::from_secs(1);
    let mut saw_rate_pause = false;
    while Instant::now() < t0 + Duration::from_secs(20) {
        let m = run.handle.metrics();
        saw_rate_pause |= m.paused.contains_key(&Reason::RateLimit);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let count = |from: Instant, to: Instant| {
        starts
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count() as f64
    };
    let slow = count(t0, t0 + Duration::from_secs(20)) / 20.0;
    run.handle.set_rate_limits(RateLimits {
        records: Some(Rate::per_second(1500.0)),
        ..Default::default()
    });
    let t1 = Instant::now() + Duration::from_secs(1);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let fast = count(t1, t1 + Duration::from_secs(5)) / 5.0;
    let m = run.stop().await;
    eprintln!(
        "rate: {slow:.1}/s (limit 500), then {fast:.1}/s (limit 1500); throttled {} ms",
        m.throttled_ms
    );
    assert!((475.0..=525.0).contains(&slow), "{slow}/s is not 500 ± 5%");
    assert!(
        (1425.0..=1575.0).contains(&fast),
        "{fast}/s is not 1500 ± 5%"
    );
    assert!(saw_rate_pause, "partitions were paused for the rate limit");
    assert!(m.throttled_ms > 0);
}
