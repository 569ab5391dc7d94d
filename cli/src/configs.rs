//! `kafka-ingest configs describe|alter`: kafka-configs.sh for topics,
//! brokers and client quotas.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use kafka_ingest::{
    Admin, AlterConfigOp, ClientQuotaAlteration, ClientQuotaFilter, ConfigResource,
    ConfigResourceType, Error, QuotaEntity, QuotaMatch, Result,
};

use crate::Global;

#[derive(Args)]
#[command(group(ArgGroup::new("entity").required(true).multiple(true).args(["topic", "broker", "broker_defaults", "client", "user"])))]
pub(crate) struct Entity {
    /// A topic's configs.
    #[arg(long, conflicts_with_all = ["broker", "broker_defaults", "client", "user"])]
    topic: Option<String>,
    /// One broker's configs (its id).
    #[arg(long, conflicts_with_all = ["broker_defaults", "client", "user"])]
    broker: Option<i32>,
    /// The cluster-wide broker defaults.
    #[arg(long, conflicts_with_all = ["client", "user"])]
    broker_defaults: bool,
    /// Client quotas of this client.id (`default`: the default client entity).
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
    /// Client quotas of this user principal (`default`: the default user entity).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum ConfigsCmd {
    /// Show configs: overrides only, or every config with --all.
    Describe {
        #[command(flatten)]
        entity: Entity,
        /// Also list configs at their defaults.
        #[arg(long)]
        all: bool,
    },
    /// Set and delete configs incrementally; other configs stay as they are.
    Alter {
        #[command(flatten)]
        entity: Entity,
        /// Set KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove KEY's override so the default applies (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

impl Entity {
    fn resource(&self) -> Option<ConfigResource> {
        if let Some(t) = &self.topic {
            return Some(ConfigResource::topic(t));
        }
        if let Some(b) = self.broker {
            return Some(ConfigResource::broker(b));
        }
        self.broker_defaults.then(|| ConfigResource {
            kind: ConfigResourceType::Broker,
            name: String::new(),
        })
    }

    fn quota_entity(&self) -> QuotaEntity {
        let name = |n: &String| (n != "default").then(|| n.clone());
        let mut e = QuotaEntity::new();
        if let Some(c) = &self.client {
            e.insert("client-id".into(), name(c));
        }
        if let Some(u) = &self.user {
            e.insert("user".into(), name(u));
        }
        e
    }
}

fn entity_text(e: &QuotaEntity) -> String {
    e.iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) async fn run(global: &Global, cmd: ConfigsCmd) -> Result<ExitCode> {
    let client = global.client().await?;
    let admin = client.admin();
    let code = configs(&admin, cmd).await;
    client.close();
    code
}

async fn configs(admin: &Admin, cmd: ConfigsCmd) -> Result<ExitCode> {
    match cmd {
        ConfigsCmd::Describe { entity, all } => match entity.resource() {
            Some(r) => {
                let d = admin.describe_configs(std::slice::from_ref(&r)).await?;
                crate::out!("Configs of {r}:");
                for e in d.iter().flat_map(|d| &d.entries) {
                    if e.is_default && !all {
                        continue;
                    }
                    let value = if e.is_sensitive {
                        "(sensitive)".to_owned()
                    } else {
                        e.value.clone().unwrap_or_else(|| "null".into())
                    };
                    crate::out!(
                        "  {}={value}\t{}{}",
                        e.name,
                        e.source.name(),
                        if e.read_only { "\tread-only" } else { "" }
                    );
                }
            }
            None => {
                let entity = entity.quota_entity();
                let filter = ClientQuotaFilter {
                    components: entity
                        .iter()
                        .map(|(k, v)| {
                            let m = match v {
                                Some(n) => QuotaMatch::Exact(n.clone()),
                                None => QuotaMatch::Default,
                            };
                            (k.clone(), m)
                        })
                        .collect(),
                    strict: true,
                };
                crate::out!("Quotas of {}:", entity_text(&entity));
                for q in admin.describe_client_quotas(&filter).await? {
                    for (k, v) in &q.values {
                        crate::out!("  {k}={v:?}");
                    }
                }
            }
        },
        ConfigsCmd::Alter {
            entity,
            set,
            delete,
        } => {
            if set.is_empty() && delete.is_empty() {
                return Err(Error::InvalidArgument {
                    message: "configs alter needs --set KEY=VALUE or --delete KEY".into(),
                });
            }
            let mut sets = Vec::new();
            for kv in &set {
                sets.push(crate::settings::key_value("--set", kv)?);
            }
            match entity.resource() {
                Some(r) => {
                    let mut ops: Vec<AlterConfigOp> = sets
                        .into_iter()
                        .map(|(k, v)| AlterConfigOp::Set(k, v))
                        .collect();
                    ops.extend(delete.iter().cloned().map(AlterConfigOp::Delete));
                    admin.incremental_alter_configs(&[(r.clone(), ops)]).await?;
                    crate::out!("altered the configs of {r}");
                }
                None => {
                    let mut ops = Vec::new();
                    for (k, v) in sets {
                        let n = v
                            .trim()
                            .parse::<f64>()
                            .map_err(|_| Error::InvalidArgument {
                                message: format!("--set {k}: `{v}` is not a number"),
                            })?;
                        ops.push((k, Some(n)));
                    }
                    ops.extend(delete.into_iter().map(|k| (k, None)));
                    let entity = entity.quota_entity();
                    admin
                        .alter_client_quotas(&[ClientQuotaAlteration {
                            entity: entity.clone(),
                            ops,
                        }])
                        .await?;
                    crate::out!("altered the quotas of {}", entity_text(&entity));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
