//! The 3-node cluster: replicated topics and a broker killed mid-request.

use std::time::{Duration, Instant};

use kafka_ingest::{Error, NewTopic, OffsetSpec, RetryAction, TopicPartition};

use crate::support::{cluster_client, cluster_lock, unique, KilledNode};

#[tokio::test]
async fn replicated_topic_and_broker_failure() {
    let _bound = crate::support::watchdog("cluster::replicated_topic_and_broker_failure", 420);
    let _serial = cluster_lock().await;
    let client = cluster_client().await;
    let admin = client.admin();
    let c = admin.describe_cluster().await.unwrap();
    assert_eq!(c.brokers.len(), 3, "{c:?}");

    let name = unique("rf3");
    admin
        .create_topic(NewTopic::new(&name, 6, 3).config("min.insync.replicas", "2"))
        .await
        .unwrap();
    let d = admin.describe_topic(&name).await.unwrap();
    assert_eq!(d.partitions.len(), 6);
    for p in &d.partitions {
        assert!(p.leader.is_some(), "{p:?}");
        assert_eq!(p.replicas.len(), 3, "{p:?}");
        assert_eq!(p.isr.len(), 3, "{p:?}");
    }
    let specs: Vec<_> = (0..6)
        .map(|p| (TopicPartition::new(&name, p), OffsetSpec::Latest))
        .collect();
    let offs = admin.list_offsets(&specs).await.unwrap();
    assert!(offs.values().all(|o| o.offset == 0), "{offs:?}");

    // Hold a long-poll Fetch open on partition 0's leader, then SIGKILL it.
    let tp = TopicPartition::new(&name, 0);
    let victim = d.partitions[0].leader.unwrap();
    let poller = {
        let admin = admin.clone();
        let tp = tp.clone();
        tokio::spawn(async move {
            kafka_ingest::internals::wait_for_records(&admin, &tp, 0, Duration::from_secs(25)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!poller.is_finished(), "the fetch should still be in flight");
    let killed_at = Instant::now();
    let killed = KilledNode::kill(victim);
    let e = poller
        .await
        .unwrap()
        .expect_err("the broker holding the fetch was killed");
    assert!(
        matches!(e, Error::Connection { .. }),
        "in-flight request fails with a connection error: {e:?}"
    );
    assert_eq!(e.retry_action(), RetryAction::Retry);
    assert!(
        killed_at.elapsed() < Duration::from_secs(20),
        "failed promptly, not by timeout"
    );

    // The rest of the cluster keeps answering while the node is down.
    let offs = admin.list_offsets(&specs).await.unwrap();
    assert_eq!(offs.len(), 6);

    killed.restart();
    // The next request to the restarted broker succeeds (after reconnect).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match admin.api_versions(victim).await {
            Ok(apis) => {
                assert!(apis.iter().any(|a| a.negotiated.is_some()));
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("broker {victim} not back yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("broker {victim} did not come back: {e}"),
        }
    }
    assert!(
        !kafka_ingest::internals::wait_for_records(&admin, &tp, 0, Duration::from_millis(200))
            .await
            .unwrap()
    );
    admin.delete_topic(&name).await.unwrap();
}
