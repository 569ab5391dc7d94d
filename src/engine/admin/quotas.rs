//! DescribeClientQuotas and AlterClientQuotas (KIP-546).

use super::{item_error, s};
use crate::cluster::{msg, versions, Cluster, ClusterError};
use crate::types::{ClientQuotaAlteration, ClientQuotaFilter, ClientQuotas, QuotaMatch};

/// The quotas of every entity the filter matches.
pub(crate) async fn describe_client_quotas(
    cluster: &Cluster,
    filter: &ClientQuotaFilter,
) -> Result<Vec<ClientQuotas>, ClusterError> {
    use msg::describe_client_quotas_request::ComponentData;
    let req = msg::DescribeClientQuotasRequest::default()
        .with_strict(filter.strict)
        .with_components(
            filter
                .components
                .iter()
                .map(|(kind, m)| {
                    let (match_type, name) = match m {
                        QuotaMatch::Exact(n) => (0, Some(s(n))),
                        QuotaMatch::Default => (1, None),
                        QuotaMatch::Any => (2, None),
                    };
                    ComponentData::default()
                        .with_entity_type(s(kind))
                        .with_match_type(match_type)
                        .with_match(name)
                })
                .collect(),
        );
    let resp = cluster
        .retrying("DescribeClientQuotas", || async {
            let conn = cluster.any_broker().await?;
            let (resp, _) = conn.send(&req, versions::DESCRIBE_CLIENT_QUOTAS).await?;
            item_error(
                || "describing client quotas".to_owned(),
                resp.error_code,
                resp.error_message.clone(),
            )?;
            Ok(resp)
        })
        .await?;
    Ok(resp
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| ClientQuotas {
            entity: e
                .entity
                .into_iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.map(|n| n.to_string()),
                    )
                })
                .collect(),
            values: e
                .values
                .into_iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect(),
        })
        .collect())
}

/// Sets and removes quotas; the first entity the broker refuses is the error.
pub(crate) async fn alter_client_quotas(
    cluster: &Cluster,
    changes: &[ClientQuotaAlteration],
) -> Result<(), ClusterError> {
    use msg::alter_client_quotas_request::{EntityData, EntryData, OpData};
    let req = msg::AlterClientQuotasRequest::default().with_entries(
        changes
            .iter()
            .map(|c| {
                EntryData::default()
                    .with_entity(
                        c.entity
                            .iter()
                            .map(|(k, n)| {
                                EntityData::default()
                                    .with_entity_type(s(k))
                                    .with_entity_name(n.as_deref().map(s))
                            })
                            .collect(),
                    )
                    .with_ops(
                        c.ops
                            .iter()
                            .map(|(k, v)| {
                                OpData::default()
                                    .with_key(s(k))
                                    .with_value(v.unwrap_or(0.0))
                                    .with_remove(v.is_none())
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    cluster
        .retrying("AlterClientQuotas", || async {
            let conn = cluster.any_broker().await?;
            let (resp, _) = conn.send(&req, versions::ALTER_CLIENT_QUOTAS).await?;
            for e in resp.entries {
                let who: Vec<String> = e
                    .entity
                    .iter()
                    .map(|d| {
                        format!(
                            "{}={}",
                            d.entity_type,
                            d.entity_name.as_deref().unwrap_or("<default>")
                        )
                    })
                    .collect();
                item_error(
                    || format!("altering the quotas of {}", who.join(",")),
                    e.error_code,
                    e.error_message,
                )?;
            }
            Ok(())
        })
        .await
}
