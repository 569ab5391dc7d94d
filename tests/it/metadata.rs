//! Commit metadata and DescribeConfigs against the single-node broker.

use std::collections::BTreeMap;

use kafka_ingest::{ConfigResource, OffsetAndMetadata, TopicPartition};

use crate::consumer::consumer;
use crate::support::{client, create_topic, unique};

#[tokio::test]
async fn commit_with_metadata_round_trips() {
    let topic = unique("meta");
    create_topic(&topic, 2).await;
    let group = unique("meta-g");
    let c = consumer(&group, &[]).await;
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    let none = c
        .committed_with_metadata(std::slice::from_ref(&p0))
        .await
        .unwrap();
    assert_eq!(none[&p0], None, "nothing committed yet");

    let mut offsets = BTreeMap::new();
    offsets.insert(p0.clone(), OffsetAndMetadata::new(0, "ki:abc=+/"));
    offsets.insert(p1.clone(), OffsetAndMetadata::new(0, ""));
    c.commit_offsets_with_metadata(&offsets).await.unwrap();
    let got = c
        .committed_with_metadata(&[p0.clone(), p1.clone()])
        .await
        .unwrap();
    assert_eq!(got[&p0], Some(OffsetAndMetadata::new(0, "ki:abc=+/")));
    assert_eq!(got[&p1], Some(OffsetAndMetadata::new(0, "")));
    // A plain commit clears the metadata; committed() still sees the offset.
    c.commit_offsets(&BTreeMap::from([(p0.clone(), 0)]))
        .await
        .unwrap();
    let got = c
        .committed_with_metadata(std::slice::from_ref(&p0))
        .await
        .unwrap();
    assert_eq!(got[&p0], Some(OffsetAndMetadata::new(0, "")));
    assert_eq!(
        c.committed(std::slice::from_ref(&p0)).await.unwrap()[&p0],
        Some(0)
    );

    // Longer than offset.metadata.max.bytes (4096 by default): a typed broker error.
    let huge = BTreeMap::from([(p0.clone(), OffsetAndMetadata::new(0, "x".repeat(5000)))]);
    let e = c.commit_offsets_with_metadata(&huge).await.unwrap_err();
    assert_eq!(
        e.code().map(|c| c.0),
        Some(12),
        "OFFSET_METADATA_TOO_LARGE: {e}"
    );
    c.close().await;
}

#[tokio::test]
async fn describe_configs_of_topic_and_broker() {
    let admin = client().await.admin();
    let topic = unique("cfg");
    admin
        .create_topic(kafka_ingest::NewTopic::new(&topic, 1, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();
    let broker = admin.describe_cluster().await.unwrap().brokers[0].id;
    let got = admin
        .describe_configs(&[
            ConfigResource::topic(&topic),
            ConfigResource::broker(broker),
        ])
        .await
        .unwrap();
    let entry = |i: usize, name: &str| {
        got[i]
            .entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", got[i].resource))
            .clone()
    };
    assert_eq!(got[0].resource, ConfigResource::topic(&topic));
    assert_eq!(entry(0, "retention.ms").value.as_deref(), Some("3600000"));
    assert!(!entry(0, "retention.ms").is_default);
    assert!(entry(0, "cleanup.policy").is_default);
    let max = entry(1, "offset.metadata.max.bytes");
    assert_eq!(max.value.as_deref(), Some("4096"), "{max:?}");

    let e = admin
        .describe_configs(&[ConfigResource::topic(unique("no-such"))])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no-such"), "{e}");
}
