//! CreatePartitions and DeleteRecords.

use std::collections::{BTreeMap, HashMap};

use super::{item_error, name, timeout_ms, wait_for_leaders};
use crate::cluster::{codes, msg, versions, Cluster, ClusterError, ErrorCode, Topics};
use crate::types::TopicPartition;

/// Raises topics' partition counts to the given totals; one result per
/// topic. Returns once every new partition has a leader on every broker.
pub(crate) async fn create_partitions(
    cluster: &Cluster,
    totals: &[(String, i32)],
) -> Result<Vec<(String, Result<(), ClusterError>)>, ClusterError> {
    let req = msg::CreatePartitionsRequest::default()
        .with_timeout_ms(timeout_ms(cluster.config().conn.request_timeout))
        .with_topics(
            totals
                .iter()
                .map(|(t, n)| {
                    msg::create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(name(t))
                        .with_count(*n)
                        .with_assignments(None)
                })
                .collect(),
        );
    let resp = cluster
        .retrying("CreatePartitions", || async {
            let conn = cluster.controller().await?;
            let (resp, _) = conn.send(&req, versions::CREATE_PARTITIONS).await?;
            if let Some(r) = resp
                .results
                .iter()
                .find(|r| r.error_code == codes::NOT_CONTROLLER)
            {
                return Err(ClusterError::broker(
                    "CreatePartitions",
                    ErrorCode(r.error_code),
                    None,
                ));
            }
            Ok(resp)
        })
        .await?;
    let mut by_name: HashMap<String, Result<(), ClusterError>> = resp
        .results
        .into_iter()
        .map(|r| {
            let n = r.name.0.to_string();
            let res = item_error(
                || format!("adding partitions to topic `{n}`"),
                r.error_code,
                r.error_message,
            );
            (n, res)
        })
        .collect();
    let grown: Vec<(String, i32)> = totals
        .iter()
        .filter(|(t, _)| matches!(by_name.get(t), Some(Ok(()))))
        .cloned()
        .collect();
    if !grown.is_empty() {
        wait_for_leaders(cluster, &grown).await?;
    }
    Ok(totals
        .iter()
        .map(|(t, _)| {
            let r = by_name
                .remove(t)
                .unwrap_or_else(|| Err(ClusterError::UnknownTopic(t.clone())));
            (t.clone(), r)
        })
        .collect())
}

/// Deletes the records before each offset (`-1`: the high watermark) and
/// returns each partition's new log start offset.
pub(crate) async fn delete_records(
    cluster: &Cluster,
    before: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeMap<TopicPartition, i64>, ClusterError> {
    cluster
        .retrying("DeleteRecords", || delete_records_once(cluster, before))
        .await
}

async fn delete_records_once(
    cluster: &Cluster,
    before: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeMap<TopicPartition, i64>, ClusterError> {
    let mut topics: Vec<String> = before.keys().map(|tp| tp.topic.clone()).collect();
    topics.dedup();
    let m = cluster.metadata(Topics::Some(&topics)).await?;
    // leader -> topic -> (partition, offset)
    type ByTopic<'a> = BTreeMap<&'a str, Vec<(i32, i64)>>;
    let mut by_leader: BTreeMap<i32, ByTopic<'_>> = BTreeMap::new();
    for (tp, off) in before {
        let leader = crate::cluster::leader_of(&m, &tp.topic, tp.partition)?;
        by_leader
            .entry(leader)
            .or_default()
            .entry(&tp.topic)
            .or_default()
            .push((tp.partition, *off));
    }
    let requests = by_leader.into_iter().map(|(leader, topics)| async move {
        let req = msg::DeleteRecordsRequest::default()
            .with_timeout_ms(timeout_ms(cluster.config().conn.request_timeout))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        msg::delete_records_request::DeleteRecordsTopic::default()
                            .with_name(name(t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| {
                                        msg::delete_records_request::DeleteRecordsPartition::default()
                                            .with_partition_index(p)
                                            .with_offset(o)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = cluster.broker(leader).await?;
        let (resp, _) = conn.send(&req, versions::DELETE_RECORDS).await?;
        Ok::<_, ClusterError>(resp)
    });
    let mut out = BTreeMap::new();
    for resp in futures_util::future::join_all(requests).await {
        for t in resp?.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                item_error(|| format!("deleting records of {tp}"), p.error_code, None)?;
                out.insert(tp, p.low_watermark);
            }
        }
    }
    Ok(out)
}
