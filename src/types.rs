//! Plain data types shared by the layers and the public API. No logic, no IO.

use std::collections::BTreeMap;

/// A map on the per-record path, keyed by topic or partition: foldhash, not
/// SipHash (keys are the application's own names, not an attacker's), and
/// hashbrown's `entry_ref`, which finds or inserts with one lookup and no
/// key clone.
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// For `entry_ref`: the key is cloned only when it is inserted.
impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        tp.clone()
    }
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
    /// `classic` (JoinGroup/SyncGroup) or `consumer` (KIP-848, `group.protocol=consumer`).
    pub group_type: String,
    /// Coordinator's state name (Stable, PreparingRebalance, Empty, Reconciling...).
    pub state: String,
    /// Broker id of the group's coordinator.
    pub coordinator: i32,
    /// Chosen assignor (the broker-side assignor of a `consumer` group).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
    /// Offsets by partition.
    pub offsets: Vec<GroupOffset>,
}

/// A group as listed by [`list_groups`](crate::Admin::list_groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group: String,
    /// `consumer` for consumer groups (either protocol), else e.g. `connect`.
    pub protocol_type: String,
    /// State (Stable, Empty, ...); empty when the broker predates ListGroups v4.
    pub state: String,
    /// `classic` or `consumer` (KIP-848); empty before ListGroups v5.
    pub group_type: String,
}

/// The kind of a [`ConfigResource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic's configs.
    Topic,
    /// A broker's configs (name: the broker id; empty for the cluster-wide default).
    Broker,
    /// A broker's log4j loggers.
    BrokerLogger,
}

impl ConfigResourceType {
    pub(crate) fn wire(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
        }
    }
}

/// A topic or broker whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// Topic, broker or broker logger.
    pub kind: ConfigResourceType,
    /// Topic name or broker id.
    pub name: String,
}

impl ConfigResource {
    /// A topic's configs.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            kind: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// One broker's configs.
    pub fn broker(id: i32) -> Self {
        ConfigResource {
            kind: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ConfigResourceType::Topic => write!(f, "topic `{}`", self.name),
            ConfigResourceType::Broker if self.name.is_empty() => {
                f.write_str("the broker defaults")
            }
            ConfigResourceType::Broker => write!(f, "broker {}", self.name),
            ConfigResourceType::BrokerLogger => write!(f, "the loggers of broker {}", self.name),
        }
    }
}

/// Where a config value comes from (Java's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the cluster-wide broker default.
    DynamicDefaultBroker,
    /// From the broker's server.properties.
    StaticBroker,
    /// Kafka's built-in default.
    Default,
    /// A dynamic logger level.
    DynamicBrokerLogger,
    /// Anything else the broker reports.
    Unknown,
}

impl ConfigSource {
    pub(crate) fn from_wire(v: i8) -> Self {
        match v {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            _ => ConfigSource::Unknown,
        }
    }

    /// Java's name, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::Unknown => "UNKNOWN",
        }
    }
}

/// One config of a described resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name, e.g. `retention.ms`.
    pub name: String,
    /// Value; `None` for sensitive configs (and unset ones).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is Kafka's default.
    pub is_default: bool,
    /// Whether the value is a secret (the broker never sends it).
    pub is_sensitive: bool,
    /// Whether it cannot be changed at run time.
    pub read_only: bool,
}

/// The configs of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigResourceDescription {
    /// The resource.
    pub resource: ConfigResource,
    /// Its configs, sorted by name.
    pub entries: Vec<ConfigEntry>,
}

/// One change of [`incremental_alter_configs`](crate::Admin::incremental_alter_configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets `name` to `value`.
    Set(String, String),
    /// Removes the override, so the default applies again.
    Delete(String),
    /// Adds `value` to a list config.
    Append(String, String),
    /// Removes `value` from a list config.
    Subtract(String, String),
}

/// A client-quota entity: entity types (`user`, `client-id`, `ip`) to a
/// name, `None` meaning the type's default entity.
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// How a [`ClientQuotaFilter`] component matches an entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// Exactly this name.
    Exact(String),
    /// The type's default entity.
    Default,
    /// Any name, the default included.
    Any,
}

/// Which quotas [`describe_client_quotas`](crate::Admin::describe_client_quotas) returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientQuotaFilter {
    /// Entity type (`user`, `client-id`, `ip`) and how it must match.
    pub components: Vec<(String, QuotaMatch)>,
    /// Only entities with no other entity types than the components name.
    pub strict: bool,
}

/// The quotas of one entity (e.g. `producer_byte_rate`, `consumer_byte_rate`,
/// `request_percentage`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotas {
    /// The entity.
    pub entity: QuotaEntity,
    /// Quota name to value.
    pub values: BTreeMap<String, f64>,
}

/// Changes to one entity's quotas: `Some(v)` sets, `None` removes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaAlteration {
    /// The entity.
    pub entity: QuotaEntity,
    /// Quota name to new value, or `None` to remove it.
    pub ops: Vec<(String, Option<f64>)>,
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
