//! Admin requests: topics, cluster, offsets; configs, groups, records and
//! quotas in the submodules.

mod configs;
mod groups;
mod quotas;
mod records;

pub(crate) use configs::{describe_configs, incremental_alter_configs};
pub(crate) use groups::{
    alter_group_offsets, delete_group_offsets, delete_groups, describe_group, list_groups,
};
pub(crate) use quotas::{alter_client_quotas, describe_client_quotas};
pub(crate) use records::{create_partitions, delete_records};

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::retry::{retry, Exhausted, RetryAction, RetryPolicy};

use crate::cluster::{msg, versions, Cluster, ClusterError, ErrorCode, Metadata, Topics};
use crate::types::{
    ApiSupport, BrokerDescription, ClusterDescription, ListedOffset, NewTopic, OffsetSpec,
    PartitionDescription, TopicDescription, TopicId, TopicPartition,
};

use msg::topic_name as name;

fn s(v: &str) -> msg::StrBytes {
    msg::StrBytes::from_string(v.to_owned())
}

/// A per-item error code as a `ClusterError` naming the item (`None` on success).
fn item_error(
    what: impl FnOnce() -> String,
    code: i16,
    message: Option<msg::StrBytes>,
) -> Result<(), ClusterError> {
    match ErrorCode::check(code) {
        None => Ok(()),
        Some(code) => Err(ClusterError::broker(
            what(),
            code,
            message.map(|m| m.to_string()),
        )),
    }
}

fn timeout_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Creates topics; returns one result per topic in input order. When
/// `wait` is set, returns only once every new partition has a leader.
pub(crate) async fn create_topics(
    cluster: &Cluster,
    topics: &[NewTopic],
    validate_only: bool,
) -> Result<Vec<(String, Result<(), ClusterError>)>, ClusterError> {
    let timeout = cluster.config().conn.request_timeout;
    let req = msg::CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms(timeout))
        .with_validate_only(validate_only)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    msg::CreatableTopic::default()
                        .with_name(name(&t.name))
                        .with_num_partitions(t.partitions)
                        .with_replication_factor(t.replication_factor)
                        .with_configs(
                            t.configs
                                .iter()
                                .map(|(k, v)| {
                                    msg::CreatableTopicConfig::default()
                                        .with_name(msg::StrBytes::from_string(k.clone()))
                                        .with_value(Some(msg::StrBytes::from_string(v.clone())))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let resp = cluster
        .retrying("CreateTopics", || async {
            let conn = cluster.controller().await?;
            let (resp, _) = conn.send(&req, versions::CREATE_TOPICS).await?;
            // NOT_CONTROLLER for the whole batch means: find the controller again.
            if let Some(t) = resp
                .topics
                .iter()
                .find(|t| t.error_code == crate::cluster::codes::NOT_CONTROLLER)
            {
                return Err(ClusterError::broker(
                    "CreateTopics",
                    ErrorCode(t.error_code),
                    None,
                ));
            }
            Ok(resp)
        })
        .await?;
    let mut by_name: HashMap<String, Result<(), ClusterError>> = resp
        .topics
        .into_iter()
        .map(|t| {
            let n = t.name.0.to_string();
            let r = match ErrorCode::check(t.error_code) {
                None => Ok(()),
                Some(code) => Err(ClusterError::broker(
                    format!("creating topic `{n}`"),
                    code,
                    t.error_message.map(|m| m.to_string()),
                )),
            };
            (n, r)
        })
        .collect();
    let created: Vec<String> = by_name
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    if !validate_only && !created.is_empty() {
        let counts: Vec<(String, i32)> = topics
            .iter()
            .filter(|t| created.contains(&t.name))
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        wait_for_leaders(cluster, &counts).await?;
    }
    Ok(topics
        .iter()
        .map(|t| {
            let r = by_name.remove(&t.name).unwrap_or_else(|| {
                Err(ClusterError::broker(
                    format!("creating topic `{}`", t.name),
                    ErrorCode(-1),
                    Some("no result in response".into()),
                ))
            });
            (t.name.clone(), r)
        })
        .collect())
}

/// Topic creation is asynchronous in Kafka; wait until every broker's
/// metadata shows at least the given partition count (each with a leader)
/// for every topic, so the topic is usable at once whichever broker a later
/// request reaches.
pub(super) async fn wait_for_leaders(
    cluster: &Cluster,
    counts: &[(String, i32)],
) -> Result<(), ClusterError> {
    let topics: Vec<String> = counts.iter().map(|(t, _)| t.clone()).collect();
    let topics = &topics[..];
    let want = |t: &str| {
        counts
            .iter()
            .find(|(n, _)| n == t)
            .map_or(1, |(_, c)| (*c).max(1))
    };
    let req = msg::MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            topics
                .iter()
                .map(|t| msg::MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ));
    let brokers: Vec<i32> = cluster
        .refresh(Topics::Some(topics))
        .await?
        .brokers
        .keys()
        .copied()
        .collect();
    let policy = RetryPolicy::within(
        Duration::from_millis(50),
        Duration::from_millis(200),
        cluster.config().api_timeout,
    );
    for id in brokers {
        let ready = retry(
            policy,
            || async {
                let conn = match cluster.broker(id).await {
                    Ok(c) => c,
                    // A broker that is down cannot serve stale metadata either.
                    Err(_) => return Ok(()),
                };
                let (resp, _) = conn.send(&req, versions::METADATA).await?;
                let all = resp.topics.iter().all(|t| {
                    let n = t.name.as_ref().map_or("", |n| n.0.as_str());
                    t.error_code == 0
                        && t.partitions.len() >= want(n) as usize
                        && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
                });
                if all {
                    Ok(())
                } else {
                    Err(ClusterError::LeaderNotAvailable {
                        topic: topics.join(", "),
                        partition: -1,
                    })
                }
            },
            // Not ready yet, or a transient failure: look again.
            |_| RetryAction::Retry,
            |_, _| {},
        )
        .await;
        if let Err(Exhausted::Failed(e) | Exhausted::GaveUp { last: Some(e), .. }) = &ready {
            tracing::debug!(broker = id, error = %e, "leaders not visible yet");
        }
        if ready.is_err() {
            return Err(ClusterError::Timeout {
                what: format!(
                    "waiting for leaders of {} on broker {id}",
                    topics.join(", ")
                ),
                after: cluster.config().api_timeout,
                last: None,
            });
        }
    }
    cluster.refresh(Topics::Some(topics)).await?;
    Ok(())
}

/// Deletes topics by name; one result per topic.
pub(crate) async fn delete_topics(
    cluster: &Cluster,
    names: &[String],
) -> Result<Vec<(String, Result<(), ClusterError>)>, ClusterError> {
    let timeout = cluster.config().conn.request_timeout;
    let resp = cluster
        .retrying("DeleteTopics", || async {
            let conn = cluster.controller().await?;
            let version = conn.version(versions::DELETE_TOPICS)?;
            let mut req = msg::DeleteTopicsRequest::default().with_timeout_ms(timeout_ms(timeout));
            // v6 names topics in `topics`, earlier versions in `topic_names`.
            if version >= 6 {
                req = req.with_topics(
                    names
                        .iter()
                        .map(|n| msg::DeleteTopicState::default().with_name(Some(name(n))))
                        .collect(),
                );
            } else {
                req = req.with_topic_names(names.iter().map(|n| name(n)).collect());
            }
            let (resp, _) = conn.send(&req, versions::DELETE_TOPICS).await?;
            if let Some(t) = resp
                .responses
                .iter()
                .find(|t| t.error_code == crate::cluster::codes::NOT_CONTROLLER)
            {
                return Err(ClusterError::broker(
                    "DeleteTopics",
                    ErrorCode(t.error_code),
                    None,
                ));
            }
            Ok(resp)
        })
        .await?;
    let mut by_name: HashMap<String, Result<(), ClusterError>> = resp
        .responses
        .into_iter()
        .filter_map(|t| {
            let n = t.name?.0.to_string();
            let r = match ErrorCode::check(t.error_code) {
                None => Ok(()),
                Some(code) => Err(ClusterError::broker(
                    format!("deleting topic `{n}`"),
                    code,
                    t.error_message.map(|m| m.to_string()),
                )),
            };
            Some((n, r))
        })
        .collect();
    cluster.invalidate();
    Ok(names
        .iter()
        .map(|n| {
            let r = by_name
                .remove(n)
                .unwrap_or_else(|| Err(ClusterError::UnknownTopic(n.clone())));
            (n.clone(), r)
        })
        .collect())
}

fn describe(t: &crate::cluster::TopicMeta) -> TopicDescription {
    TopicDescription {
        name: t.name.clone(),
        id: TopicId(t.id),
        internal: t.internal,
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition,
                leader: (p.leader >= 0).then_some(p.leader),
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline: p.offline.clone(),
            })
            .collect(),
    }
}

/// Every topic, sorted by name.
pub(crate) async fn list_topics(
    cluster: &Cluster,
    include_internal: bool,
) -> Result<Vec<TopicDescription>, ClusterError> {
    let m = cluster
        .retrying("Metadata", || cluster.refresh(Topics::All))
        .await?;
    let mut out: Vec<TopicDescription> = m
        .topics
        .values()
        .filter(|t| include_internal || !t.internal)
        .map(describe)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The named topics, fresh from the broker.
pub(crate) async fn describe_topics(
    cluster: &Cluster,
    names: &[String],
) -> Result<Vec<TopicDescription>, ClusterError> {
    let m = cluster
        .retrying("Metadata", || cluster.refresh(Topics::Some(names)))
        .await?;
    names
        .iter()
        .map(|n| match m.topics.get(n) {
            Some(t) => match t.error {
                Some(code) => Err(ClusterError::broker(
                    format!("describing topic `{n}`"),
                    code,
                    None,
                )),
                None => Ok(describe(t)),
            },
            None => Err(ClusterError::UnknownTopic(n.clone())),
        })
        .collect()
}

/// Cluster id, controller and brokers.
pub(crate) async fn describe_cluster(
    cluster: &Cluster,
) -> Result<ClusterDescription, ClusterError> {
    let m = cluster
        .retrying("Metadata", || cluster.refresh(Topics::Some(&[])))
        .await?;
    Ok(cluster_description(&m))
}

fn cluster_description(m: &Metadata) -> ClusterDescription {
    ClusterDescription {
        cluster_id: m.cluster_id.clone(),
        controller_id: (m.controller_id >= 0).then_some(m.controller_id),
        brokers: m
            .brokers
            .values()
            .map(|b| BrokerDescription {
                id: b.id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
            })
            .collect(),
    }
}

/// Looks up offsets, asking each partition's leader; retries after
/// leadership changes.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    specs: &[(TopicPartition, OffsetSpec)],
    read_committed: bool,
) -> Result<BTreeMap<TopicPartition, ListedOffset>, ClusterError> {
    cluster
        .retrying("ListOffsets", || {
            list_offsets_once(cluster, specs, read_committed)
        })
        .await
}

async fn list_offsets_once(
    cluster: &Cluster,
    specs: &[(TopicPartition, OffsetSpec)],
    read_committed: bool,
) -> Result<BTreeMap<TopicPartition, ListedOffset>, ClusterError> {
    let topics: Vec<String> = {
        let mut t: Vec<String> = specs.iter().map(|(tp, _)| tp.topic.clone()).collect();
        t.sort();
        t.dedup();
        t
    };
    let m = cluster.metadata(Topics::Some(&topics)).await?;
    // Group by leader so each broker gets one request.
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<msg::ListOffsetsPartition>>> =
        BTreeMap::new();
    for (tp, spec) in specs {
        let leader = crate::cluster::leader_of(&m, &tp.topic, tp.partition)?;
        by_leader
            .entry(leader)
            .or_default()
            .entry(tp.topic.clone())
            .or_default()
            .push(
                msg::ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(spec.wire()),
            );
    }
    let requests = by_leader.into_iter().map(|(leader, topics)| async move {
        let conn = cluster.broker(leader).await?;
        let req = msg::ListOffsetsRequest::default()
            .with_replica_id(msg::BrokerId(-1))
            .with_isolation_level(i8::from(read_committed))
            .with_timeout_ms(timeout_ms(cluster.config().conn.request_timeout))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, parts)| {
                        msg::ListOffsetsTopic::default()
                            .with_name(name(t.as_str()))
                            .with_partitions(parts)
                    })
                    .collect(),
            );
        let (resp, _) = conn.send(&req, versions::LIST_OFFSETS).await?;
        Ok::<_, ClusterError>(resp)
    });
    let mut out = BTreeMap::new();
    for resp in futures_util::future::join_all(requests).await {
        for t in resp?.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                if let Some(code) = ErrorCode::check(p.error_code) {
                    return Err(ClusterError::broker(
                        format!("listing offsets of {tp}"),
                        code,
                        None,
                    ));
                }
                out.insert(
                    tp,
                    ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: p.leader_epoch,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// API versions of one broker against the client's.
pub(crate) async fn api_versions(
    cluster: &Cluster,
    broker: i32,
) -> Result<Vec<ApiSupport>, ClusterError> {
    let conn = cluster.broker(broker).await?;
    let v = conn.versions();
    Ok(versions::ALL
        .iter()
        .map(|r| ApiSupport {
            api: crate::cluster::api_name(r.key),
            key: r.key,
            broker: v.broker_range(r.key),
            client: (r.min, r.max),
            negotiated: v.pick(*r),
        })
        .collect())
}

/// Long-polls the leader of `tp` with a Fetch until a record at or after
/// `offset` exists or `max_wait` passes; returns whether one exists.
#[cfg(feature = "unstable-internals")]
pub(crate) async fn wait_for_records(
    cluster: &Cluster,
    tp: &TopicPartition,
    offset: i64,
    max_wait: Duration,
) -> Result<bool, ClusterError> {
    // A new partition may be in metadata before its leader serves fetches:
    // retry leadership errors; a broken connection is reported at once.
    let result = retry(
        cluster.retry_policy(),
        || fetch_probe(cluster, tp, offset, max_wait),
        |e| match e {
            ClusterError::Broker { code, .. }
                if crate::cluster::codes::needs_metadata_refresh(code.0) =>
            {
                RetryAction::RefreshMetadataAndRetry
            }
            _ => RetryAction::NoRetry,
        },
        |_, _| cluster.invalidate(),
    )
    .await;
    cluster.settle("Fetch", result)
}

#[cfg(feature = "unstable-internals")]
async fn fetch_probe(
    cluster: &Cluster,
    tp: &TopicPartition,
    offset: i64,
    max_wait: Duration,
) -> Result<bool, ClusterError> {
    let (_, conn) = cluster.leader(&tp.topic, tp.partition).await?;
    let req = msg::FetchRequest::default()
        .with_replica_id(msg::BrokerId(-1))
        .with_max_wait_ms(timeout_ms(max_wait))
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![msg::FetchTopic::default()
            .with_topic(name(&tp.topic))
            .with_partitions(vec![msg::FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1024 * 1024)])]);
    let (resp, _) = conn.send_long(&req, versions::FETCH, max_wait).await?;
    if let Some(code) = ErrorCode::check(resp.error_code) {
        return Err(ClusterError::broker("Fetch", code, None));
    }
    // One topic, one partition asked: the first partition is the answer.
    let Some(p) = resp.responses.into_iter().flat_map(|t| t.partitions).next() else {
        return Ok(false);
    };
    if let Some(code) = ErrorCode::check(p.error_code) {
        return Err(ClusterError::broker(format!("fetching {tp}"), code, None));
    }
    Ok(p.records.is_some_and(|r| !r.is_empty()))
}
