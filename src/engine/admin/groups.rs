//! Group administration: describe (classic and KIP-848 groups), list,
//! delete, delete offsets, alter offsets.

use std::collections::BTreeMap;

use super::{item_error, list_offsets, name, s};
use crate::cluster::{codes, msg, versions, Cluster, ClusterError, Connection, ErrorCode, Topics};
use crate::engine::consumer::group::find_coordinator;
use crate::engine::consumer::offsets::{self, Committer};
use crate::types::TopicPartition;
use crate::types::{GroupDescription, GroupListing, GroupMember, GroupOffset, OffsetSpec};

const GROUP_ID_NOT_FOUND: i16 = 69;

fn gid(group: &str) -> msg::GroupId {
    msg::GroupId(s(group))
}

/// The coordinator of `group` and a connection to it.
async fn coordinator(cluster: &Cluster, group: &str) -> Result<(i32, Connection), ClusterError> {
    let node = find_coordinator(cluster, group).await?;
    Ok((node, cluster.broker(node).await?))
}

/// Members, assignments and committed offsets of a consumer group, with the
/// log-end offset of every partition it has committed or been assigned.
/// A group that does not exist is `UnknownGroup`.
pub(crate) async fn describe_group(
    cluster: &Cluster,
    group: &str,
) -> Result<GroupDescription, ClusterError> {
    // A new coordinator answers COORDINATOR_LOAD_IN_PROGRESS while it loads offsets.
    cluster
        .retrying("DescribeGroups", || describe_group_once(cluster, group))
        .await
}

/// What the coordinator says about a group, before offsets are added.
struct Described {
    group_type: &'static str,
    state: String,
    protocol: String,
    members: Vec<GroupMember>,
}

async fn describe_group_once(
    cluster: &Cluster,
    group: &str,
) -> Result<GroupDescription, ClusterError> {
    let (node, conn) = coordinator(cluster, group).await?;
    let described = match describe_consumer_group(&conn, group).await? {
        Some(d) => d,
        None => describe_classic_group(&conn, group).await?,
    };
    let offs = fetch_all_offsets(&conn, group).await?;
    if described.state == "Dead" && offs.is_empty() {
        return Err(ClusterError::UnknownGroup(group.to_owned()));
    }
    let mut tps: Vec<TopicPartition> = described
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().cloned())
        .collect();
    tps.extend(offs.keys().cloned());
    tps.sort();
    tps.dedup();
    let specs: Vec<_> = tps
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let ends = if specs.is_empty() {
        BTreeMap::new()
    } else {
        list_offsets(cluster, &specs, false).await?
    };
    let offsets = tps
        .into_iter()
        .map(|tp| {
            let c = offs.get(&tp).copied();
            let end = ends.get(&tp).map_or(-1, |o| o.offset);
            let owner = described
                .members
                .iter()
                .find(|m| m.assignment.contains(&tp))
                .map(|m| m.member_id.clone());
            GroupOffset {
                lag: c.map(|c| (end - c).max(0)),
                partition: tp,
                committed: c,
                log_end: end,
                owner,
            }
        })
        .collect();
    Ok(GroupDescription {
        group: group.to_owned(),
        group_type: described.group_type.to_owned(),
        state: described.state,
        coordinator: node,
        protocol: described.protocol,
        members: described.members,
        offsets,
    })
}

/// ConsumerGroupDescribe (KIP-848); `None` when the group is not a
/// consumer-protocol group (or the broker predates the API).
async fn describe_consumer_group(
    conn: &Connection,
    group: &str,
) -> Result<Option<Described>, ClusterError> {
    if conn.version(versions::CONSUMER_GROUP_DESCRIBE).is_err() {
        return Ok(None);
    }
    let req = msg::ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(group)]);
    let (resp, _) = conn.send(&req, versions::CONSUMER_GROUP_DESCRIBE).await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Err(empty("ConsumerGroupDescribe"));
    };
    // A classic group, or none: DescribeGroups tells which.
    if g.error_code == GROUP_ID_NOT_FOUND {
        return Ok(None);
    }
    item_error(
        || format!("describing group `{group}`"),
        g.error_code,
        g.error_message,
    )?;
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let mut assignment: Vec<TopicPartition> = m
                .assignment
                .topic_partitions
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic_name.0.to_string();
                    t.partitions
                        .into_iter()
                        .map(move |p| TopicPartition::new(topic.clone(), p))
                })
                .collect();
            assignment.sort();
            GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect();
    Ok(Some(Described {
        group_type: "consumer",
        state: g.group_state.to_string(),
        protocol: g.assignor_name.to_string(),
        members,
    }))
}

async fn describe_classic_group(conn: &Connection, group: &str) -> Result<Described, ClusterError> {
    let req = msg::DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    let (resp, _) = conn.send(&req, versions::DESCRIBE_GROUPS).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| empty("DescribeGroups"))?;
    if g.error_code == GROUP_ID_NOT_FOUND {
        return Err(ClusterError::UnknownGroup(group.to_owned()));
    }
    item_error(
        || format!("describing group `{group}`"),
        g.error_code,
        g.error_message,
    )?;
    let members = g
        .members
        .into_iter()
        .map(|m| GroupMember {
            assignment: crate::cluster::wire::decode_assignment(m.member_assignment)
                .map(|a| {
                    a.partitions
                        .into_iter()
                        .flat_map(|(t, ps)| {
                            ps.into_iter()
                                .map(move |p| TopicPartition::new(t.clone(), p))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
        })
        .collect();
    Ok(Described {
        group_type: "classic",
        state: g.group_state.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

fn empty(api: &str) -> ClusterError {
    ClusterError::broker(api, ErrorCode(-1), Some("empty response".into()))
}

/// Every committed offset of a group (OffsetFetch with topics = null).
async fn fetch_all_offsets(
    conn: &Connection,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, ClusterError> {
    let fetch = msg::OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(None);
    let (offs, _) = conn.send(&fetch, versions::OFFSET_FETCH).await?;
    item_error(
        || format!("fetching offsets of group `{group}`"),
        offs.error_code,
        None,
    )?;
    let mut committed = BTreeMap::new();
    for t in offs.topics {
        for p in t.partitions {
            if p.committed_offset >= 0 {
                committed.insert(
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(committed)
}

/// Every group of every broker (each broker lists the groups it coordinates).
pub(crate) async fn list_groups(cluster: &Cluster) -> Result<Vec<GroupListing>, ClusterError> {
    let m = cluster
        .retrying("Metadata", || cluster.refresh(Topics::Some(&[])))
        .await?;
    let brokers: Vec<i32> = m.brokers.keys().copied().collect();
    let per_broker = brokers.iter().map(|&id| {
        cluster.retrying("ListGroups", move || async move {
            let conn = cluster.broker(id).await?;
            let (resp, _) = conn
                .send(&msg::ListGroupsRequest::default(), versions::LIST_GROUPS)
                .await?;
            item_error(
                || format!("listing the groups of broker {id}"),
                resp.error_code,
                None,
            )?;
            Ok(resp.groups)
        })
    });
    let mut out = Vec::new();
    for groups in futures_util::future::join_all(per_broker).await {
        out.extend(groups?.into_iter().map(|g| GroupListing {
            group: g.group_id.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
            group_type: g.group_type.to_string(),
        }));
    }
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out.dedup_by(|a, b| a.group == b.group);
    Ok(out)
}

/// Deletes groups (they must have no members); one result per group.
pub(crate) async fn delete_groups(
    cluster: &Cluster,
    groups: &[String],
) -> Vec<(String, Result<(), ClusterError>)> {
    let each = groups.iter().map(|g| async move {
        let r = cluster
            .retrying("DeleteGroups", || async move {
                let (_, conn) = coordinator(cluster, g).await?;
                let req = msg::DeleteGroupsRequest::default().with_groups_names(vec![gid(g)]);
                let (resp, _) = conn.send(&req, versions::DELETE_GROUPS).await?;
                let r = resp
                    .results
                    .into_iter()
                    .next()
                    .ok_or_else(|| empty("DeleteGroups"))?;
                if r.error_code == GROUP_ID_NOT_FOUND {
                    return Err(ClusterError::UnknownGroup(g.clone()));
                }
                item_error(|| format!("deleting group `{g}`"), r.error_code, None)
            })
            .await;
        (g.clone(), r)
    });
    futures_util::future::join_all(each).await
}

/// Deletes a group's committed offsets of `partitions` (OffsetDelete); the
/// group must not be subscribed to their topics.
pub(crate) async fn delete_group_offsets(
    cluster: &Cluster,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<(), ClusterError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let req = msg::OffsetDeleteRequest::default()
        .with_group_id(gid(group))
        .with_topics(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    msg::offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name(t))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    msg::offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    cluster
        .retrying("OffsetDelete", || async {
            let (_, conn) = coordinator(cluster, group).await?;
            let (resp, _) = conn.send(&req, versions::OFFSET_DELETE).await?;
            if resp.error_code == GROUP_ID_NOT_FOUND {
                return Err(ClusterError::UnknownGroup(group.to_owned()));
            }
            item_error(
                || format!("deleting offsets of group `{group}`"),
                resp.error_code,
                None,
            )?;
            for t in resp.topics {
                for p in t.partitions {
                    item_error(
                        || {
                            format!(
                                "deleting the offset of {}-{} in group `{group}`",
                                t.name.0, p.partition_index
                            )
                        },
                        p.error_code,
                        None,
                    )?;
                }
            }
            Ok(())
        })
        .await
}

/// Sets a group's committed offsets as an admin (no generation): the group
/// must have no active members, or the coordinator refuses.
pub(crate) async fn alter_group_offsets(
    cluster: &Cluster,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), ClusterError> {
    let offsets: BTreeMap<TopicPartition, crate::types::OffsetAndMetadata> = offsets
        .iter()
        .map(|(tp, o)| (tp.clone(), crate::types::OffsetAndMetadata::new(*o, "")))
        .collect();
    let offsets = &offsets;
    let who = Committer {
        group: group.to_owned(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
    };
    cluster
        .retrying("OffsetCommit", || async {
            let (_, conn) = coordinator(cluster, group).await?;
            offsets::commit(&conn, &who, offsets)
                .await
                .map_err(|e| match e {
                    // The coordinator's word for "members are active".
                    ClusterError::Broker { code, .. } if code.0 == codes::UNKNOWN_MEMBER_ID => {
                        ClusterError::broker(
                            format!("altering offsets of group `{group}`"),
                            code,
                            Some("the group has active members; stop them first".into()),
                        )
                    }
                    e => e,
                })
        })
        .await
}
