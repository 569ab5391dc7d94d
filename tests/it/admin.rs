//! Admin against the single-node broker.

use std::time::Duration;

use kafka_ingest::{Error, NewTopic, OffsetSpec, RetryAction, TopicPartition};

use crate::support::{client, unique};

#[tokio::test]
async fn api_versions_are_negotiated() {
    let _bound = crate::support::watchdog("admin::api_versions_are_negotiated", 300);
    let client = client().await;
    let admin = client.admin();
    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert!(cluster.cluster_id.is_some());
    let apis = admin.api_versions(cluster.brokers[0].id).await.unwrap();
    let get = |name: &str| {
        apis.iter()
            .find(|a| a.api == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    for name in [
        "Metadata",
        "Produce",
        "Fetch",
        "ListOffsets",
        "CreateTopics",
        "DeleteTopics",
        "JoinGroup",
    ] {
        let a = get(name);
        let (lo, hi) = a
            .broker
            .unwrap_or_else(|| panic!("broker does not advertise {name}"));
        let v = a
            .negotiated
            .unwrap_or_else(|| panic!("{name}: no common version"));
        assert!(
            v >= lo && v <= hi && v >= a.client.0 && v <= a.client.1,
            "{a:?}"
        );
        // Highest common version, not merely a common one.
        assert_eq!(v, hi.min(a.client.1), "{a:?}");
    }
}

#[tokio::test]
async fn create_describe_list_offsets_delete() {
    let _bound = crate::support::watchdog("admin::create_describe_list_offsets_delete", 300);
    let client = client().await;
    let admin = client.admin();
    let name = unique("admin");
    admin
        .create_topic(NewTopic::new(&name, 6, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();

    let d = admin.describe_topic(&name).await.unwrap();
    assert_eq!(d.partitions.len(), 6);
    assert!(
        d.partitions
            .iter()
            .all(|p| p.leader.is_some() && p.replicas.len() == 1 && p.isr.len() == 1),
        "{d:?}"
    );
    assert!(!d.internal);
    assert_eq!(d.id.to_string().len(), 22);

    let listed = admin.list_topics(false).await.unwrap();
    assert!(listed.iter().any(|t| t.name == name));
    assert!(!listed.iter().any(|t| t.internal));

    for spec in [
        OffsetSpec::Earliest,
        OffsetSpec::Latest,
        OffsetSpec::Timestamp(0),
        OffsetSpec::MaxTimestamp,
    ] {
        let specs: Vec<_> = (0..6)
            .map(|p| (TopicPartition::new(&name, p), spec))
            .collect();
        let offs = admin.list_offsets(&specs).await.unwrap();
        assert_eq!(offs.len(), 6, "{spec:?}");
        for o in offs.values() {
            let want = match spec {
                OffsetSpec::Earliest | OffsetSpec::Latest => 0,
                // No record matches a timestamp on an empty partition.
                _ => -1,
            };
            assert_eq!(o.offset, want, "{spec:?}: {o:?}");
        }
    }

    let again = admin
        .create_topic(NewTopic::new(&name, 6, 1))
        .await
        .unwrap_err();
    assert_eq!(again.code().map(|c| c.0), Some(36), "{again}");
    assert_eq!(again.retry_action(), RetryAction::NoRetry);
    assert!(again.to_string().contains("TopicAlreadyExists"), "{again}");

    admin.delete_topic(&name).await.unwrap();
    // Deletion propagates asynchronously; it must disappear soon.
    let mut gone = false;
    for _ in 0..100 {
        match admin.describe_topic(&name).await {
            Err(Error::UnknownTopic(t)) => {
                assert_eq!(t, name);
                gone = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(gone, "topic still described after delete");
    client.close();
}

#[tokio::test]
async fn bad_requests_give_typed_errors() {
    let _bound = crate::support::watchdog("admin::bad_requests_give_typed_errors", 300);
    let client = client().await;
    let admin = client.admin();
    let e = admin
        .create_topic(NewTopic::new(unique("bad"), 1, 1).config("no.such.config", "1"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Broker { .. }), "{e:?}");
    let e = admin.describe_topic(&unique("missing")).await.unwrap_err();
    assert!(matches!(e, Error::UnknownTopic(_)), "{e:?}");
    let e = admin
        .list_offsets(&[(
            TopicPartition::new(unique("missing"), 0),
            OffsetSpec::Latest,
        )])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTopic(_)), "{e:?}");
}

#[tokio::test]
async fn long_poll_sees_no_records_on_an_empty_partition() {
    let _bound = crate::support::watchdog(
        "admin::long_poll_sees_no_records_on_an_empty_partition",
        300,
    );
    let client = client().await;
    let admin = client.admin();
    let name = unique("poll");
    admin
        .create_topic(NewTopic::new(&name, 1, 1))
        .await
        .unwrap();
    let has = kafka_ingest::internals::wait_for_records(
        &admin,
        &TopicPartition::new(&name, 0),
        0,
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert!(!has);
    admin.delete_topic(&name).await.unwrap();
}
