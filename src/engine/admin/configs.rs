//! DescribeConfigs and IncrementalAlterConfigs for topics and brokers.

use std::collections::BTreeMap;

use super::{item_error, s};
use crate::cluster::{msg, versions, Cluster, ClusterError, Connection};
use crate::types::{
    AlterConfigOp, ConfigEntry, ConfigResource, ConfigResourceDescription, ConfigResourceType,
    ConfigSource,
};

/// Broker configs must be asked of that broker; topics and the cluster
/// default of any broker.
fn target(r: &ConfigResource) -> Option<i32> {
    match r.kind {
        ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => r.name.parse().ok(),
        ConfigResourceType::Topic => None,
    }
}

async fn connect(cluster: &Cluster, target: Option<i32>) -> Result<Connection, ClusterError> {
    match target {
        Some(id) => cluster.broker(id).await,
        None => cluster.any_broker().await,
    }
}

/// Splits resources by the broker they must go to, keeping their indexes.
fn by_target<T>(
    items: &[T],
    res: impl Fn(&T) -> &ConfigResource,
) -> BTreeMap<Option<i32>, Vec<usize>> {
    let mut out: BTreeMap<Option<i32>, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        out.entry(target(res(it))).or_default().push(i);
    }
    out
}

/// Every config of each resource, in input order; entries sorted by name.
pub(crate) async fn describe_configs(
    cluster: &Cluster,
    resources: &[ConfigResource],
) -> Result<Vec<ConfigResourceDescription>, ClusterError> {
    let mut out: Vec<Option<ConfigResourceDescription>> = vec![None; resources.len()];
    for (target, idx) in by_target(resources, |r| r) {
        let req = msg::DescribeConfigsRequest::default().with_resources(
            idx.iter()
                .map(|&i| {
                    msg::describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(resources[i].kind.wire())
                        .with_resource_name(s(&resources[i].name))
                        .with_configuration_keys(None)
                })
                .collect(),
        );
        let results = cluster
            .retrying("DescribeConfigs", || async {
                let conn = connect(cluster, target).await?;
                let (resp, _) = conn.send(&req, versions::DESCRIBE_CONFIGS).await?;
                for (r, &i) in resp.results.iter().zip(&idx) {
                    item_error(
                        || format!("describing the configs of {}", resources[i]),
                        r.error_code,
                        r.error_message.clone(),
                    )?;
                }
                Ok(resp.results)
            })
            .await?;
        for (r, &i) in results.into_iter().zip(&idx) {
            let mut entries: Vec<ConfigEntry> = r
                .configs
                .into_iter()
                .map(|c| {
                    let source = ConfigSource::from_wire(c.config_source);
                    ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.map(|v| v.to_string()),
                        is_default: source == ConfigSource::Default,
                        source,
                        is_sensitive: c.is_sensitive,
                        read_only: c.read_only,
                    }
                })
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            out[i] = Some(ConfigResourceDescription {
                resource: resources[i].clone(),
                entries,
            });
        }
    }
    out.into_iter()
        .zip(resources)
        .map(|(d, r)| {
            d.ok_or_else(|| {
                ClusterError::broker(
                    format!("describing the configs of {r}"),
                    crate::cluster::ErrorCode(-1),
                    Some("no result in response".into()),
                )
            })
        })
        .collect()
}

/// Applies incremental changes (KIP-339); the first resource the broker
/// refuses is the error. Unchanged resources are left alone.
pub(crate) async fn incremental_alter_configs(
    cluster: &Cluster,
    changes: &[(ConfigResource, Vec<AlterConfigOp>)],
) -> Result<(), ClusterError> {
    for (target, idx) in by_target(changes, |(r, _)| r) {
        let req = msg::IncrementalAlterConfigsRequest::default().with_resources(
            idx.iter()
                .map(|&i| {
                    let (r, ops) = &changes[i];
                    msg::incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(r.kind.wire())
                        .with_resource_name(s(&r.name))
                        .with_configs(ops.iter().map(alterable).collect())
                })
                .collect(),
        );
        cluster
            .retrying("IncrementalAlterConfigs", || async {
                let conn = connect(cluster, target).await?;
                let (resp, _) = conn.send(&req, versions::INCREMENTAL_ALTER_CONFIGS).await?;
                for (r, &i) in resp.responses.into_iter().zip(&idx) {
                    item_error(
                        || format!("altering the configs of {}", changes[i].0),
                        r.error_code,
                        r.error_message,
                    )?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

fn alterable(op: &AlterConfigOp) -> msg::incremental_alter_configs_request::AlterableConfig {
    let (op, name, value) = match op {
        AlterConfigOp::Set(k, v) => (0, k, Some(v)),
        AlterConfigOp::Delete(k) => (1, k, None),
        AlterConfigOp::Append(k, v) => (2, k, Some(v)),
        AlterConfigOp::Subtract(k, v) => (3, k, Some(v)),
    };
    msg::incremental_alter_configs_request::AlterableConfig::default()
        .with_name(s(name))
        .with_config_operation(op)
        .with_value(value.map(|v| s(v)))
}
