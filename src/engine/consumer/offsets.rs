//! OffsetFetch and OffsetCommit against the group coordinator.

use std::collections::BTreeMap;

use crate::cluster::{msg, versions, ClusterError, Connection, ErrorCode};
use crate::types::{OffsetAndMetadata, TopicPartition};

use msg::topic_name as name;

fn s(v: &str) -> msg::StrBytes {
    msg::StrBytes::from_string(v.to_owned())
}

fn by_topic<T: Clone>(
    items: impl IntoIterator<Item = (TopicPartition, T)>,
) -> BTreeMap<String, Vec<(i32, T)>> {
    let mut out: BTreeMap<String, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, v) in items {
        out.entry(tp.topic).or_default().push((tp.partition, v));
    }
    out
}

/// Committed offsets of `tps` for `group` (`None` where nothing is committed).
pub(crate) async fn committed(
    conn: &Connection,
    group: &str,
    tps: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, Option<i64>>, ClusterError> {
    let found = committed_with_metadata(conn, group, tps).await?;
    Ok(found
        .into_iter()
        .map(|(tp, o)| (tp, o.map(|o| o.offset)))
        .collect())
}

/// Committed offsets and their metadata (`None` where nothing is committed).
pub(crate) async fn committed_with_metadata(
    conn: &Connection,
    group: &str,
    tps: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ClusterError> {
    let topics = by_topic(tps.iter().map(|tp| (tp.clone(), ())))
        .into_iter()
        .map(|(t, ps)| {
            msg::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name(&t))
                .with_partition_indexes(ps.into_iter().map(|(p, _)| p).collect())
        })
        .collect();
    let req = msg::OffsetFetchRequest::default()
        .with_group_id(msg::GroupId(s(group)))
        .with_topics(Some(topics));
    let (resp, _) = conn.send(&req, versions::OFFSET_FETCH).await?;
    if let Some(code) = ErrorCode::check(resp.error_code) {
        return Err(ClusterError::broker(
            format!("fetching committed offsets of group `{group}`"),
            code,
            None,
        ));
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
            if let Some(code) = ErrorCode::check(p.error_code) {
                return Err(ClusterError::broker(
                    format!("fetching the committed offset of {tp}"),
                    code,
                    None,
                ));
            }
            let found = (p.committed_offset >= 0).then(|| OffsetAndMetadata {
                offset: p.committed_offset,
                metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
            });
            out.insert(tp, found);
        }
    }
    Ok(out)
}

/// Who commits: a group member (generation, member id) or a standalone consumer.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// Commits `offsets` (the next offset to consume, as Kafka expects) with their metadata.
pub(crate) async fn commit(
    conn: &Connection,
    who: &Committer,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Result<(), ClusterError> {
    let topics = by_topic(offsets.iter().map(|(tp, o)| (tp.clone(), o.clone())))
        .into_iter()
        .map(|(t, ps)| {
            msg::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name(&t))
                .with_partitions(
                    ps.into_iter()
                        .map(|(p, o)| {
                            msg::offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o.offset)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(s(&o.metadata)))
                        })
                        .collect(),
                )
        })
        .collect();
    let version = conn.version(versions::OFFSET_COMMIT)?;
    let mut req = msg::OffsetCommitRequest::default()
        .with_group_id(msg::GroupId(s(&who.group)))
        .with_generation_id_or_member_epoch(who.generation)
        .with_member_id(s(&who.member_id))
        .with_topics(topics);
    if version >= 7 {
        req = req.with_group_instance_id(who.instance_id.as_deref().map(s));
    }
    if version <= 4 {
        req = req.with_retention_time_ms(-1);
    }
    let (resp, _) = conn.send(&req, versions::OFFSET_COMMIT).await?;
    for t in resp.topics {
        for p in t.partitions {
            if let Some(code) = ErrorCode::check(p.error_code) {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                return Err(ClusterError::broker(
                    format!("committing the offset of {tp}"),
                    code,
                    None,
                ));
            }
        }
    }
    Ok(())
}
