//! A partition paused for retry-delay that moves to another member is
//! resumed there, and one handed back to the same member is not left
//! paused (the bug users hit in Parallel Consumer and Spring); a partition
//! a member keeps through a cooperative rebalance stays paused.

use std::time::Duration;

use kafka_ingest_pipeline::headers;
use kafka_ingest_pipeline::{FailureKind, HandlerError, Ordering, Pipeline, Reason, Retry};

use crate::support::*;

#[derive(Debug, Clone)]
struct Seen {
    member: &'static str,
    partition: i32,
    started_ms: i64,
    due: i64,
}

fn member(
    name: &'static str,
    group: &str,
    topic: &str,
    seen: Log<Seen>,
) -> impl FnOnce(kafka_ingest::Producer) -> Running {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    move |producer| {
        let builder = Pipeline::builder(
            // Range: each member gets one partition of each topic.
            consumer(&group).set("partition.assignment.strategy", "range"),
            producer,
        )
        .topics([&topic])
        .ordering(Ordering::Unordered)
        .retry(Retry::none())
        .retry_topics(["8s"]);
        Running::start(builder, move |rec| {
            let seen = seen.clone();
            async move {
                if rec.tier().is_none() {
                    return Err(HandlerError::new(
                        FailureKind::Retryable,
                        "test::First",
                        "first try fails",
                    ));
                }
                seen.lock().unwrap().push(Seen {
                    member: name,
                    partition: rec.partition,
                    started_ms: now_ms(),
                    due: headers::due(&rec.headers).expect("due"),
                });
                Ok(())
            }
        })
    }
}

#[tokio::test]
async fn retry_delay_pause_moves_with_the_partition() {
    let topic = unique("moved");
    create_topic(&topic, 2).await;
    let group = unique("moved-g");
    let seen: Log<Seen> = log();
    let a = member("a", &group, &topic, seen.clone())(producer().await);
    a.wait("assigned", Duration::from_secs(30), |m| m.assigned == 4)
        .await;
    produce(
        &topic,
        &[(0, "k0".into(), "0".into()), (1, "k1".into(), "1".into())],
    )
    .await;
    a.wait("both tier partitions held", Duration::from_secs(30), |m| {
        m.tiers[0].forwarded == 2 && m.paused.get(&Reason::RetryDelay) == Some(&2)
    })
    .await;

    // A second member joins: one tier partition moves to it, the other
    // goes back to the first member (eager: revoked, then reassigned).
    let b = member("b", &group, &topic, seen.clone())(producer().await);
    b.wait("b owns a share", Duration::from_secs(30), |m| {
        m.assigned == 2
    })
    .await;
    a.wait("a keeps a share", Duration::from_secs(30), |m| {
        m.assigned == 2
    })
    .await;
    wait_until(
        "both tier records processed",
        Duration::from_secs(30),
        || seen.lock().unwrap().len() >= 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ma, mb) = (a.handle.metrics(), b.handle.metrics());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "each once: {seen:?}");
    let mut parts: Vec<i32> = seen.iter().map(|s| s.partition).collect();
    parts.sort();
    assert_eq!(parts, vec![0, 1]);
    assert!(
        seen.iter().any(|s| s.member == "a") && seen.iter().any(|s| s.member == "b"),
        "{seen:?}"
    );
    for s in &seen {
        assert!(
            s.started_ms >= s.due,
            "early by {} ms: {s:?}",
            s.due - s.started_ms
        );
        eprintln!(
            "member {} resumed tier partition {} {} ms after due",
            s.member,
            s.partition,
            s.started_ms - s.due
        );
    }
    assert!(
        !ma.paused.contains_key(&Reason::RetryDelay),
        "a: {:?}",
        ma.paused
    );
    assert!(
        !mb.paused.contains_key(&Reason::RetryDelay),
        "b: {:?}",
        mb.paused
    );
    b.stop().await;
    a.stop().await;
}

/// A member on the cooperative protocol that logs (member, partition) of
/// every record it handles.
async fn cooperative(
    name: &'static str,
    group: &str,
    topic: &str,
    seen: Log<(&'static str, i32)>,
) -> Running {
    let builder = Pipeline::builder(
        consumer(group).set("partition.assignment.strategy", "cooperative-sticky"),
        producer().await,
    )
    .topics([topic]);
    Running::start(builder, move |rec| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((name, rec.partition));
            Ok(())
        }
    })
}

#[tokio::test]
async fn a_retained_partition_stays_paused_through_a_cooperative_rebalance() {
    let topic = unique("coop-pause");
    create_topic(&topic, 4).await;
    let group = unique("coop-pause-g");
    let seen: Log<(&'static str, i32)> = log();
    let a = cooperative("a", &group, &topic, seen.clone()).await;
    a.wait("a owns all four", Duration::from_secs(30), |m| {
        m.assigned == 4
    })
    .await;
    a.handle.pause_all();
    a.wait("all four paused", Duration::from_secs(10), |m| {
        m.paused.get(&Reason::Manual) == Some(&4)
    })
    .await;

    // Cooperative: b takes two partitions; a keeps two without a revoke,
    // and their manual pause must survive.
    let b = cooperative("b", &group, &topic, seen.clone()).await;
    b.wait("b owns two", Duration::from_secs(30), |m| m.assigned == 2)
        .await;
    a.wait("a keeps two, still paused", Duration::from_secs(30), |m| {
        m.assigned == 2 && m.paused.get(&Reason::Manual) == Some(&2)
    })
    .await;
    let kept: Vec<i32> = a
        .handle
        .assignment()
        .iter()
        .map(|tp| tp.partition)
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    produce(
        &topic,
        &(0..4)
            .map(|p| (p, format!("k{p}"), format!("{p}")))
            .collect::<Vec<_>>(),
    )
    .await;
    wait_until("b handles its two", Duration::from_secs(30), || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| *m == "b")
            .count()
            == 2
    })
    .await;
    // a's paused partitions got nothing meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !seen.lock().unwrap().iter().any(|(m, _)| *m == "a"),
        "a handled a paused partition: {:?}",
        seen.lock().unwrap()
    );
    a.handle.resume_all();
    wait_until(
        "a handles its two once resumed",
        Duration::from_secs(30),
        || seen.lock().unwrap().len() == 4,
    )
    .await;
    let mut by_a: Vec<i32> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| *m == "a")
        .map(|(_, p)| *p)
        .collect();
    by_a.sort();
    let mut kept = kept;
    kept.sort();
    assert_eq!(by_a, kept, "a handled exactly the partitions it kept");
    b.stop().await;
    a.stop().await;
}
