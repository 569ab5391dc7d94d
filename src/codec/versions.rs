//! ApiVersions negotiation: the client's supported range per API, and the
//! highest version both sides speak.

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;

/// The versions of one API that the client implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// Protocol API key.
    pub key: i16,
    /// Lowest version we can speak (4.0 brokers drop pre-2.1 versions, KIP-896).
    pub min: i16,
    /// Highest version whose semantics we implement.
    pub max: i16,
}

const fn r(key: ApiKey, min: i16, max: i16) -> ApiVersionRange {
    ApiVersionRange {
        key: key as i16,
        min,
        max,
    }
}

// Capped below kafka-protocol's maxima where a newer version changes meaning
// (e.g. Fetch v13 and Produce v13 address topics by id).
pub(crate) const API_VERSIONS: ApiVersionRange = r(ApiKey::ApiVersions, 0, 3);
pub(crate) const METADATA: ApiVersionRange = r(ApiKey::Metadata, 4, 12);
pub(crate) const CREATE_TOPICS: ApiVersionRange = r(ApiKey::CreateTopics, 2, 7);
pub(crate) const DELETE_TOPICS: ApiVersionRange = r(ApiKey::DeleteTopics, 1, 6);
pub(crate) const LIST_OFFSETS: ApiVersionRange = r(ApiKey::ListOffsets, 1, 9);
pub(crate) const DESCRIBE_CONFIGS: ApiVersionRange = r(ApiKey::DescribeConfigs, 1, 4);
pub(crate) const PRODUCE: ApiVersionRange = r(ApiKey::Produce, 3, 11);
pub(crate) const FETCH: ApiVersionRange = r(ApiKey::Fetch, 4, 12);
pub(crate) const INIT_PRODUCER_ID: ApiVersionRange = r(ApiKey::InitProducerId, 0, 5);
pub(crate) const FIND_COORDINATOR: ApiVersionRange = r(ApiKey::FindCoordinator, 1, 6);
pub(crate) const JOIN_GROUP: ApiVersionRange = r(ApiKey::JoinGroup, 2, 9);
pub(crate) const SYNC_GROUP: ApiVersionRange = r(ApiKey::SyncGroup, 1, 5);
pub(crate) const HEARTBEAT: ApiVersionRange = r(ApiKey::Heartbeat, 1, 4);
pub(crate) const LEAVE_GROUP: ApiVersionRange = r(ApiKey::LeaveGroup, 1, 5);
pub(crate) const OFFSET_COMMIT: ApiVersionRange = r(ApiKey::OffsetCommit, 2, 8);
// v8+ batches groups in a different layout; one group per request is enough.
pub(crate) const OFFSET_FETCH: ApiVersionRange = r(ApiKey::OffsetFetch, 1, 7);
// v6 answers GROUP_ID_NOT_FOUND for a group that does not exist (KIP-1043).
pub(crate) const DESCRIBE_GROUPS: ApiVersionRange = r(ApiKey::DescribeGroups, 0, 6);
pub(crate) const CREATE_PARTITIONS: ApiVersionRange = r(ApiKey::CreatePartitions, 0, 3);
pub(crate) const INCREMENTAL_ALTER_CONFIGS: ApiVersionRange =
    r(ApiKey::IncrementalAlterConfigs, 0, 1);
pub(crate) const DELETE_RECORDS: ApiVersionRange = r(ApiKey::DeleteRecords, 0, 2);
// v4 reports states, v5 group types (classic, consumer).
pub(crate) const LIST_GROUPS: ApiVersionRange = r(ApiKey::ListGroups, 0, 5);
pub(crate) const DELETE_GROUPS: ApiVersionRange = r(ApiKey::DeleteGroups, 0, 2);
pub(crate) const OFFSET_DELETE: ApiVersionRange = r(ApiKey::OffsetDelete, 0, 0);
pub(crate) const DESCRIBE_CLIENT_QUOTAS: ApiVersionRange = r(ApiKey::DescribeClientQuotas, 0, 1);
pub(crate) const ALTER_CLIENT_QUOTAS: ApiVersionRange = r(ApiKey::AlterClientQuotas, 0, 1);
// KIP-848 groups (group.protocol=consumer).
pub(crate) const CONSUMER_GROUP_DESCRIBE: ApiVersionRange = r(ApiKey::ConsumerGroupDescribe, 0, 1);
// v0 sent raw tokens outside Kafka framing; 4.0 dropped it (KIP-896). v1 + SaslAuthenticate (KIP-152).
pub(crate) const SASL_HANDSHAKE: ApiVersionRange = r(ApiKey::SaslHandshake, 1, 1);
// v1 adds session_lifetime_ms (KIP-368); v2 is flexible.
pub(crate) const SASL_AUTHENTICATE: ApiVersionRange = r(ApiKey::SaslAuthenticate, 0, 2);

/// Every API the client may use, for reports and negotiation checks.
pub(crate) const ALL: &[ApiVersionRange] = &[
    API_VERSIONS,
    METADATA,
    CREATE_TOPICS,
    DELETE_TOPICS,
    LIST_OFFSETS,
    DESCRIBE_CONFIGS,
    PRODUCE,
    FETCH,
    INIT_PRODUCER_ID,
    FIND_COORDINATOR,
    JOIN_GROUP,
    SYNC_GROUP,
    HEARTBEAT,
    LEAVE_GROUP,
    OFFSET_COMMIT,
    OFFSET_FETCH,
    DESCRIBE_GROUPS,
    CREATE_PARTITIONS,
    INCREMENTAL_ALTER_CONFIGS,
    DELETE_RECORDS,
    LIST_GROUPS,
    DELETE_GROUPS,
    OFFSET_DELETE,
    DESCRIBE_CLIENT_QUOTAS,
    ALTER_CLIENT_QUOTAS,
    CONSUMER_GROUP_DESCRIBE,
    SASL_HANDSHAKE,
    SASL_AUTHENTICATE,
];

/// What one broker advertised in its ApiVersions response.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    broker: HashMap<i16, (i16, i16)>,
}

impl Versions {
    /// Builds from `(key, min, max)` triples as advertised by the broker.
    pub(crate) fn from_advertised(apis: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        Versions {
            broker: apis.into_iter().map(|(k, lo, hi)| (k, (lo, hi))).collect(),
        }
    }

    /// The broker's advertised range for `key`, if any.
    pub fn broker_range(&self, key: i16) -> Option<(i16, i16)> {
        self.broker.get(&key).copied()
    }

    /// Highest version both sides support, or `None` when the ranges miss.
    pub fn pick(&self, ours: ApiVersionRange) -> Option<i16> {
        let (lo, hi) = self.broker_range(ours.key)?;
        let v = hi.min(ours.max);
        (v >= lo.max(ours.min)).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_version() {
        let v = Versions::from_advertised([(3, 0, 13), (0, 0, 2)]);
        assert_eq!(v.pick(METADATA), Some(12));
        assert_eq!(v.pick(PRODUCE), None, "broker max 2 is below our min 3");
        assert_eq!(v.pick(FETCH), None, "not advertised");
    }
}
