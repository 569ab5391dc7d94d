//! Admin API: topics, partitions, records, configs, groups, offsets and quotas.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::{admin, Cluster};
use crate::error::{Error, Result};
use crate::topic_name::{validate_all, validate_partitions, validate_topic_name};
use crate::types::{
    AlterConfigOp, ApiSupport, ClientQuotaAlteration, ClientQuotaFilter, ClientQuotas,
    ClusterDescription, ConfigResource, ConfigResourceDescription, ConfigResourceType,
    GroupDescription, GroupListing, ListedOffset, NewTopic, OffsetSpec, TopicDescription,
    TopicPartition,
};

/// Per-item outcomes, in input order.
type Outcomes = Vec<(String, Result<()>)>;

fn outcomes(r: Vec<(String, std::result::Result<(), crate::engine::ClusterError>)>) -> Outcomes {
    r.into_iter()
        .map(|(n, r)| (n, r.map_err(Error::from)))
        .collect()
}

fn check_resources<'a>(resources: impl IntoIterator<Item = &'a ConfigResource>) -> Result<()> {
    for r in resources {
        match r.kind {
            ConfigResourceType::Topic => validate_topic_name(&r.name)?,
            ConfigResourceType::Broker if r.name.is_empty() => {}
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => {
                if r.name.parse::<i32>().is_err() {
                    return Err(Error::invalid(format!(
                        "broker `{}` is not a broker id",
                        r.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Cluster administration. Cheap to clone; shares the client's connections.
#[derive(Clone)]
pub struct Admin {
    pub(crate) cluster: Arc<Cluster>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Creates one topic and waits until every partition has a leader.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let mut r = self.create_topics(vec![topic]).await?;
        r.pop().map(|(_, r)| r).unwrap_or(Ok(()))
    }

    /// Creates topics; returns each topic's own outcome in input order.
    /// Successful topics are usable (have leaders) when this returns.
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<Outcomes> {
        validate_all(&topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())?;
        Ok(outcomes(
            admin::create_topics(&self.cluster, &topics, false).await?,
        ))
    }

    /// Asks the controller to validate topics without creating them.
    pub async fn validate_topics(&self, topics: Vec<NewTopic>) -> Result<Outcomes> {
        validate_all(&topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())?;
        Ok(outcomes(
            admin::create_topics(&self.cluster, &topics, true).await?,
        ))
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut r = self.delete_topics(&[name.to_owned()]).await?;
        r.pop().map(|(_, r)| r).unwrap_or(Ok(()))
    }

    /// Deletes topics; returns each topic's own outcome in input order.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Outcomes> {
        validate_all(names)?;
        Ok(outcomes(admin::delete_topics(&self.cluster, names).await?))
    }

    /// All topics, sorted by name.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicDescription>> {
        Ok(admin::list_topics(&self.cluster, include_internal).await?)
    }

    /// Describes one topic: partitions, leaders, replicas, ISR.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let mut d = self.describe_topics(&[name.to_owned()]).await?;
        d.pop().ok_or_else(|| Error::UnknownTopic(name.to_owned()))
    }

    /// Describes topics; fails if any is missing.
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicDescription>> {
        validate_all(names)?;
        Ok(admin::describe_topics(&self.cluster, names).await?)
    }

    /// Cluster id, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        Ok(admin::describe_cluster(&self.cluster).await?)
    }

    /// Offsets by spec (earliest, latest, by timestamp), read uncommitted.
    pub async fn list_offsets(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        Ok(admin::list_offsets(&self.cluster, specs, false).await?)
    }

    /// Like [`list_offsets`](Self::list_offsets) with `isolation.level=read_committed`
    /// (latest is then the last stable offset).
    pub async fn list_offsets_committed(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        Ok(admin::list_offsets(&self.cluster, specs, true).await?)
    }

    /// The APIs the client uses, with the broker's range and the version chosen.
    pub async fn api_versions(&self, broker: i32) -> Result<Vec<ApiSupport>> {
        Ok(admin::api_versions(&self.cluster, broker).await?)
    }

    /// Members, assignment, committed offsets, log-end offsets and lag of
    /// a group, classic or KIP-848 (`group.protocol=consumer`, described
    /// with ConsumerGroupDescribe). A group that does not exist is
    /// [`Error::UnknownGroup`].
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        Ok(admin::describe_group(&self.cluster, group).await?)
    }

    /// Describes several groups (in input order); fails on the first that
    /// cannot be described.
    pub async fn describe_groups(&self, groups: &[String]) -> Result<Vec<GroupDescription>> {
        let all = groups.iter().map(|g| self.describe_group(g));
        futures_util::future::join_all(all)
            .await
            .into_iter()
            .collect()
    }

    /// Every group the cluster knows (every broker is asked), sorted by id,
    /// with its state, protocol type and group type.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        Ok(admin::list_groups(&self.cluster).await?)
    }

    /// Deletes groups, which must have no active members; one outcome per group.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Outcomes> {
        Ok(outcomes(admin::delete_groups(&self.cluster, groups).await))
    }

    /// Deletes a group's committed offsets of these partitions (Kafka
    /// refuses while the group is subscribed to their topic).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        validate_partitions(partitions.iter())?;
        Ok(admin::delete_group_offsets(&self.cluster, group, partitions).await?)
    }

    /// Sets a group's committed offsets (the next offset to consume), as
    /// kafka-consumer-groups.sh `--reset-offsets --execute` does. The group
    /// must have no active members.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        validate_partitions(offsets.keys())?;
        if let Some((tp, o)) = offsets.iter().find(|(_, o)| **o < 0) {
            return Err(Error::invalid(format!(
                "cannot set the offset of {tp} to {o}: offsets are >= 0"
            )));
        }
        Ok(admin::alter_group_offsets(&self.cluster, group, offsets).await?)
    }

    /// Raises topics' partition counts to the given totals (Kafka cannot
    /// lower them); one outcome per topic. New partitions have leaders when
    /// this returns.
    pub async fn create_partitions(&self, totals: &[(String, i32)]) -> Result<Outcomes> {
        validate_all(&totals.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>())?;
        Ok(outcomes(
            admin::create_partitions(&self.cluster, totals).await?,
        ))
    }

    /// Deletes every record before the given offset of each partition
    /// (`-1`: everything up to the high watermark); returns the new log
    /// start offsets.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        validate_partitions(before.keys())?;
        if let Some((tp, o)) = before.iter().find(|(_, o)| **o < -1) {
            return Err(Error::invalid(format!(
                "cannot delete records of {tp} before offset {o}"
            )));
        }
        Ok(admin::delete_records(&self.cluster, before).await?)
    }

    /// Every config of each topic or broker (in input order), with its
    /// source and flags. Broker resources are asked of that broker.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<ConfigResourceDescription>> {
        check_resources(resources)?;
        Ok(admin::describe_configs(&self.cluster, resources).await?)
    }

    /// Sets, deletes, appends to or subtracts from configs of topics and
    /// brokers (KIP-339: other configs stay as they are).
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
    ) -> Result<()> {
        check_resources(changes.iter().map(|(r, _)| r))?;
        Ok(admin::incremental_alter_configs(&self.cluster, changes).await?)
    }

    /// Client quotas (`producer_byte_rate`, `consumer_byte_rate`,
    /// `request_percentage`, ...) of the entities the filter matches.
    pub async fn describe_client_quotas(
        &self,
        filter: &ClientQuotaFilter,
    ) -> Result<Vec<ClientQuotas>> {
        Ok(admin::describe_client_quotas(&self.cluster, filter).await?)
    }

    /// Sets or removes client quotas.
    pub async fn alter_client_quotas(&self, changes: &[ClientQuotaAlteration]) -> Result<()> {
        if let Some(c) = changes.iter().find(|c| c.entity.is_empty()) {
            return Err(Error::invalid(format!(
                "a quota change needs an entity (user, client-id or ip): {c:?}"
            )));
        }
        Ok(admin::alter_client_quotas(&self.cluster, changes).await?)
    }
}
