//! The admin API of issue 14 (configs, partitions, records, groups,
//! quotas) and the consumer's `offsets_for_times` / `subscribe_pattern`,
//! against the single-node broker.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_ingest::{
    AlterConfigOp, ClientQuotaAlteration, ClientQuotaFilter, ConfigResource, ConfigSource,
    Consumer, Error, NewTopic, Producer, ProducerRecord, QuotaEntity, QuotaMatch, TopicPartition,
};

use crate::support::{bootstrap, client, eventually, unique};

async fn produce(topic: &str, partition: i32, n: usize) {
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    for i in 0..n {
        let mut r = ProducerRecord::new(topic).value(format!("v{i}"));
        r.partition = Some(partition);
        p.send(r).await.unwrap().await.unwrap();
    }
    p.close(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn configs_partitions_and_records() {
    let _bound = crate::support::watchdog("admin_api::configs_partitions_and_records", 120);
    let admin = client().await.admin();
    let t = unique("api-cfg");
    admin.create_topic(NewTopic::new(&t, 1, 1)).await.unwrap();
    let r = ConfigResource::topic(&t);
    admin
        .incremental_alter_configs(&[(
            r.clone(),
            vec![AlterConfigOp::Set("retention.ms".into(), "1000".into())],
        )])
        .await
        .unwrap();
    // Config and quota changes reach the broker's view asynchronously.
    let d = eventually("retention.ms=1000", || async {
        let d = admin
            .describe_configs(&[r.clone(), ConfigResource::broker(1)])
            .await
            .unwrap();
        let set = d[0]
            .entries
            .iter()
            .any(|e| e.name == "retention.ms" && e.value.as_deref() == Some("1000"));
        set.then_some(d)
    })
    .await;
    let e = d[0]
        .entries
        .iter()
        .find(|e| e.name == "retention.ms")
        .unwrap();
    assert_eq!(
        (e.value.as_deref(), e.source, e.is_default),
        (Some("1000"), ConfigSource::DynamicTopic, false)
    );
    assert!(d[1]
        .entries
        .iter()
        .any(|e| e.name == "broker.id" && e.read_only));
    admin
        .incremental_alter_configs(&[(
            r.clone(),
            vec![AlterConfigOp::Delete("retention.ms".into())],
        )])
        .await
        .unwrap();
    eventually("retention.ms back to its default", || async {
        let d = admin
            .describe_configs(std::slice::from_ref(&r))
            .await
            .unwrap();
        d[0].entries
            .iter()
            .any(|e| e.name == "retention.ms" && e.is_default)
            .then_some(())
    })
    .await;
    let bad = admin
        .describe_configs(&[ConfigResource::topic("bad name")])
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidArgument { .. }), "{bad}");

    let grown = admin.create_partitions(&[(t.clone(), 2)]).await.unwrap();
    grown[0].1.as_ref().unwrap();
    assert_eq!(admin.describe_topic(&t).await.unwrap().partitions.len(), 2);
    produce(&t, 1, 5).await;
    let tp = TopicPartition::new(&t, 1);
    let low = admin
        .delete_records(&BTreeMap::from([(tp.clone(), 3)]))
        .await
        .unwrap();
    assert_eq!(low[&tp], 3);
    let all = admin
        .delete_records(&BTreeMap::from([(tp.clone(), -1)]))
        .await
        .unwrap();
    assert_eq!(all[&tp], 5, "-1 is the high watermark");
}

#[tokio::test]
async fn groups_offsets_and_quotas() {
    let _bound = crate::support::watchdog("admin_api::groups_offsets_and_quotas", 120);
    let admin = client().await.admin();
    let t = unique("api-grp");
    admin.create_topic(NewTopic::new(&t, 1, 1)).await.unwrap();
    produce(&t, 0, 4).await;
    let g = unique("api-g");
    let tp = TopicPartition::new(&t, 0);
    assert!(matches!(
        admin.describe_group(&g).await,
        Err(Error::UnknownGroup(_))
    ));
    admin
        .alter_group_offsets(&g, &BTreeMap::from([(tp.clone(), 2)]))
        .await
        .unwrap();
    let d = admin.describe_group(&g).await.unwrap();
    assert_eq!(
        (d.state.as_str(), d.offsets[0].committed, d.offsets[0].lag),
        ("Empty", Some(2), Some(2))
    );
    assert!(admin
        .list_groups()
        .await
        .unwrap()
        .iter()
        .any(|l| l.group == g && l.group_type == "classic"));
    admin
        .delete_group_offsets(&g, std::slice::from_ref(&tp))
        .await
        .unwrap();
    assert!(admin.describe_group(&g).await.unwrap().offsets.is_empty());
    let deleted = admin.delete_groups(std::slice::from_ref(&g)).await.unwrap();
    deleted[0].1.as_ref().unwrap();
    let again = admin.delete_groups(std::slice::from_ref(&g)).await.unwrap();
    assert!(
        matches!(again[0].1, Err(Error::UnknownGroup(_))),
        "{:?}",
        again[0].1
    );

    let entity: QuotaEntity = BTreeMap::from([("client-id".to_owned(), Some(unique("q")))]);
    let set = ClientQuotaAlteration {
        entity: entity.clone(),
        ops: vec![("producer_byte_rate".into(), Some(4096.0))],
    };
    admin.alter_client_quotas(&[set]).await.unwrap();
    let filter = ClientQuotaFilter {
        components: entity
            .iter()
            .map(|(k, v)| (k.clone(), QuotaMatch::Exact(v.clone().unwrap())))
            .collect(),
        strict: true,
    };
    let q = eventually("the quota", || async {
        let q = admin.describe_client_quotas(&filter).await.unwrap();
        (!q.is_empty()).then_some(q)
    })
    .await;
    assert_eq!(q[0].values["producer_byte_rate"], 4096.0);
    let remove = ClientQuotaAlteration {
        entity,
        ops: vec![("producer_byte_rate".into(), None)],
    };
    admin.alter_client_quotas(&[remove]).await.unwrap();
    eventually("the quota's removal", || async {
        admin
            .describe_client_quotas(&filter)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn offsets_for_times_and_pattern_subscription() {
    let _bound =
        crate::support::watchdog("admin_api::offsets_for_times_and_pattern_subscription", 120);
    let admin = client().await.admin();
    let prefix = unique("api-pat");
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    admin.create_topic(NewTopic::new(&a, 1, 1)).await.unwrap();
    produce(&a, 0, 3).await;
    let consumer = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", &unique("api-pat-g"))
        .set("auto.offset.reset", "earliest")
        .set("metadata.max.age.ms", "500")
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(&a, 0);
    let times = consumer
        .offsets_for_times(&BTreeMap::from([(tp.clone(), 0)]))
        .await
        .unwrap();
    assert_eq!(times[&tp].map(|o| o.offset), Some(0));
    let future = consumer
        .offsets_for_times(&BTreeMap::from([(tp.clone(), i64::MAX / 2)]))
        .await
        .unwrap();
    assert_eq!(future[&tp], None);
    assert!(consumer.subscribe_pattern("(").await.is_err());
    consumer
        .subscribe_pattern(&format!("{prefix}-."))
        .await
        .unwrap();
    let mut seen = BTreeMap::<String, usize>::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut created = false;
    while seen.get(&b).copied().unwrap_or(0) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "seen {seen:?}");
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            *seen.entry(r.topic.to_string()).or_default() += 1;
        }
        if !created && seen.get(&a) == Some(&3) {
            admin.create_topic(NewTopic::new(&b, 2, 1)).await.unwrap();
            produce(&b, 0, 1).await;
            produce(&b, 1, 1).await;
            created = true;
        }
    }
    consumer.close().await;
}
