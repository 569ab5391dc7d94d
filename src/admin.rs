//! Admin API: topics, cluster and offsets.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::{admin, Cluster};
use crate::error::{Error, Result};
use crate::types::{
    ApiSupport, ClusterDescription, ConfigEntry, ConfigResource, GroupDescription, ListedOffset,
    NewTopic, OffsetSpec, TopicDescription, TopicPartition,
};

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
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<Vec<(String, Result<()>)>> {
        let r = admin::create_topics(&self.cluster, &topics, false).await?;
        Ok(r.into_iter()
            .map(|(n, r)| (n, r.map_err(Error::from)))
            .collect())
    }

    /// Asks the controller to validate topics without creating them.
    pub async fn validate_topics(
        &self,
        topics: Vec<NewTopic>,
    ) -> Result<Vec<(String, Result<()>)>> {
        let r = admin::create_topics(&self.cluster, &topics, true).await?;
        Ok(r.into_iter()
            .map(|(n, r)| (n, r.map_err(Error::from)))
            .collect())
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut r = self.delete_topics(&[name.to_owned()]).await?;
        r.pop().map(|(_, r)| r).unwrap_or(Ok(()))
    }

    /// Deletes topics; returns each topic's own outcome in input order.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let r = admin::delete_topics(&self.cluster, names).await?;
        Ok(r.into_iter()
            .map(|(n, r)| (n, r.map_err(Error::from)))
            .collect())
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

    /// Configs of topics and brokers (DescribeConfigs), by resource and name.
    /// A broker resource is asked of that broker, so its dynamic values show.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<BTreeMap<ConfigResource, BTreeMap<String, ConfigEntry>>> {
        Ok(admin::describe_configs(&self.cluster, resources).await?)
    }

    /// Members, assignment, committed offsets, log-end offsets and lag of a group.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        Ok(admin::describe_group(&self.cluster, group).await?)
    }
}
