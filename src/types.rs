//! Plain data types shared by the layers and the public API. No logic, no IO.

use std::collections::BTreeMap;
use std::fmt;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; `-1` takes the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; `-1` takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs such as `min.insync.replicas` or `cleanup.policy`.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// A Kafka topic id, printed as the Java tools print it (URL-safe base64).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine as _;
        // Java's Uuid.toString: URL-safe base64 without padding.
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, if there is one.
    pub leader: Option<i32>,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Offline replica broker ids.
    pub offline: Vec<i32>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: TopicId,
    /// Whether Kafka uses the topic internally (e.g. `__consumer_offsets`).
    pub internal: bool,
    /// Partitions in index order.
    pub partitions: Vec<PartitionDescription>,
}

/// A broker in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

/// The cluster as seen in metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller id as reported to clients (in KRaft, a broker that forwards).
    pub controller_id: Option<i32>,
    /// Brokers by id.
    pub brokers: Vec<BrokerDescription>,
}

/// Which offset [`list_offsets`](crate::Admin::list_offsets) looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the next offset to be written).
    Latest,
    /// The earliest offset whose timestamp is at least this (ms since epoch).
    Timestamp(i64),
    /// The offset of the record with the largest timestamp (KIP-734).
    MaxTimestamp,
}

impl OffsetSpec {
    pub(crate) fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// Result of one offset lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `-1` when no record matches a timestamp lookup.
    pub offset: i64,
    /// The timestamp of that record, or `-1`.
    pub timestamp: i64,
    /// Leader epoch of the partition when answered, or `-1`.
    pub leader_epoch: i32,
}

/// How one API is supported by a broker and the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSupport {
    /// API name, e.g. `Metadata`.
    pub api: &'static str,
    /// API key.
    pub key: i16,
    /// The broker's advertised range, if it knows the API.
    pub broker: Option<(i16, i16)>,
    /// The client's implemented range.
    pub client: (i16, i16),
    /// The version used: the highest both support.
    pub negotiated: Option<i16>,
}

/// A consumer group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the broker saw it.
    pub host: String,
    /// Partitions assigned to it.
    pub assignment: Vec<TopicPartition>,
}

/// Committed offset and lag of one partition of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// Log-end offset.
    pub log_end: i64,
    /// `log_end - committed`, when committed.
    pub lag: Option<i64>,
    /// Member that owns it now.
    pub owner: Option<String>,
}

/// A described consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// Coordinator's state name (Stable, PreparingRebalance, Empty, Dead...).
    pub state: String,
    /// Broker id of the group's coordinator.
    pub coordinator: i32,
    /// Chosen assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
    /// Offsets by partition.
    pub offsets: Vec<GroupOffset>,
}

/// A committed offset with its metadata string (Java's `OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// Free-form metadata stored with the commit; at most the broker's
    /// `offset.metadata.max.bytes` (default 4096) bytes.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset with metadata.
    pub fn new(offset: i64, metadata: impl Into<String>) -> Self {
        OffsetAndMetadata {
            offset,
            metadata: metadata.into(),
        }
    }
}

/// A resource whose configs [`describe_configs`](crate::Admin::describe_configs) reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResource {
    /// A topic's configs.
    Topic(String),
    /// One broker's configs, by broker id.
    Broker(i32),
}

impl ConfigResource {
    pub(crate) fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(t) => write!(f, "topic `{t}`"),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
        }
    }
}

/// One config value as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name, e.g. `retention.ms`.
    pub name: String,
    /// The value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Whether the value cannot be changed at runtime.
    pub read_only: bool,
    /// Whether the value is the default (not set on the resource or broker).
    pub is_default: bool,
    /// Whether the value is sensitive (and therefore hidden).
    pub sensitive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_id_prints_like_java() {
        // java.util.UUID 00000000-0000-0001-0000-000000000001 -> Kafka Uuid string.
        let mut b = [0u8; 16];
        b[7] = 1;
        b[15] = 1;
        assert_eq!(TopicId(b).to_string(), "AAAAAAAAAAEAAAAAAAAAAQ");
    }
}
