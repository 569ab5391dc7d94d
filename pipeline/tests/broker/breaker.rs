//! The DLQ breaker trips on a run of fatal errors and holds the partition
//! until reset.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use kafka_ingest::TopicPartition;
use kafka_ingest_pipeline::{
    DlqLimit, Event, FailureKind, HandlerError, Ordering, Pipeline, Reason,
};

use crate::support::*;

#[tokio::test]
async fn breaker_trips_and_holds_until_reset() {
    let topic = unique("breaker");
    create_topic(&topic, 1).await;
    // 8 bad records in a row, then 10 good ones.
    let records: Vec<_> = (0..18)
        .map(|i| {
            (
                0,
                format!("k{i}"),
                if i < 8 {
                    "bad".to_owned()
                } else {
                    "ok".to_owned()
                },
            )
        })
        .collect();
    produce(&topic, &records).await;
    let events: Log<String> = log();
    let ok = Arc::new(AtomicUsize::new(0));
    let (e2, ok2) = (events.clone(), ok.clone());
    let builder = Pipeline::builder(consumer(&unique("breaker-g")), producer().await)
        .topics([&topic])
        .ordering(Ordering::Partition)
        .dlq_limit(DlqLimit::consecutive(5))
        .on_event(move |e| {
            if let Event::BreakerOpen { partition } = e {
                e2.lock().unwrap().push(partition.to_string());
            }
        });
    let run = Running::start(builder, move |rec| {
        let ok = ok2.clone();
        async move {
            if rec.value.as_deref() == Some(&b"bad"[..]) {
                return Err(HandlerError::new(FailureKind::Fatal, "test::Bad", "bad"));
            }
            ok.fetch_add(1, AtomicOrdering::Relaxed);
            Ok(())
        }
    });
    run.wait("breaker open", Duration::from_secs(30), |m| {
        m.breaker_open == 1
    })
    .await;
    // It stays open: give it time to (wrongly) go on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = run.handle.metrics();
    assert_eq!(m.dead_lettered, 5, "only the allowed run reached the DLQ");
    assert_eq!(m.processed, 0, "nothing behind the held record ran");
    assert_eq!(m.paused.get(&Reason::Breaker), Some(&1));
    assert_eq!(ok.load(AtomicOrdering::Relaxed), 0);
    assert_eq!(log_end(&format!("{topic}-dlt")).await, 5);
    assert_eq!(*events.lock().unwrap(), vec![format!("{topic}-0")]);

    run.handle
        .reset_breaker(Some(&[TopicPartition::new(&topic, 0)]));
    run.wait("the rest after reset", Duration::from_secs(30), |m| {
        m.processed == 10 && m.dead_lettered == 8
    })
    .await;
    let m = run.stop().await;
    assert_eq!(m.breaker_open, 0);
    assert!(!m.paused.contains_key(&Reason::Breaker));
    assert_eq!(log_end(&format!("{topic}-dlt")).await, 8);
}
