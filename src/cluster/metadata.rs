//! The metadata cache: brokers, topics, partitions and their leaders.

use std::collections::BTreeMap;

use crate::types::FastMap;
use std::time::Instant;

use crate::conn::{msg, ErrorCode};

/// A broker as listed in metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerMeta {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerMeta {
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PartitionMeta {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicMeta {
    pub name: String,
    pub id: [u8; 16],
    pub internal: bool,
    pub error: Option<ErrorCode>,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMeta>,
    /// Indexes of partitions with a leader (for the sticky partitioner).
    pub available: Vec<i32>,
}

/// One immutable snapshot; refreshes build a new one.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, BrokerMeta>,
    pub topics: FastMap<String, TopicMeta>,
    pub fetched: Instant,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            cluster_id: None,
            controller_id: -1,
            brokers: BTreeMap::new(),
            topics: FastMap::default(),
            // Far enough back that the first use refreshes.
            fetched: Instant::now()
                .checked_sub(std::time::Duration::from_secs(86_400))
                .unwrap_or_else(Instant::now),
        }
    }
}

impl Metadata {
    /// Merges a response into a new snapshot. With `all_topics` the topic set
    /// is replaced; otherwise the listed topics are updated in place.
    pub(crate) fn merge(&self, resp: msg::MetadataResponse, all_topics: bool) -> Metadata {
        let brokers = resp
            .brokers
            .into_iter()
            .map(|b| {
                let id = b.node_id.0;
                (
                    id,
                    BrokerMeta {
                        id,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let mut topics = if all_topics {
            FastMap::default()
        } else {
            self.topics.clone()
        };
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            let error = ErrorCode::check(t.error_code);
            if error.is_some_and(|e| e.0 == crate::conn::codes::UNKNOWN_TOPIC_OR_PARTITION) {
                topics.remove(&name);
                continue;
            }
            let mut partitions: Vec<PartitionMeta> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMeta {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.into_iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let available = partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| p.partition)
                .collect();
            let meta = TopicMeta {
                name: name.clone(),
                id: *t.topic_id.as_bytes(),
                internal: t.is_internal,
                error,
                partitions,
                available,
            };
            topics.insert(name, meta);
        }
        Metadata {
            cluster_id: resp.cluster_id.map(|c| c.to_string()),
            controller_id: resp.controller_id.0,
            brokers,
            topics,
            fetched: Instant::now(),
        }
    }

    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        let t = self.topics.get(topic)?;
        t.partitions
            .get(usize::try_from(partition).ok()?)
            .filter(|p| p.partition == partition)
    }
}
