//! `kafka-ingest topics ...` and `kafka-ingest metadata`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kafka_ingest::{Admin, NewTopic, OffsetSpec, Result, TopicDescription, TopicPartition};

use crate::Global;

#[derive(Subcommand)]
pub(crate) enum TopicsCmd {
    /// Create a topic.
    Create {
        /// Topic name (ASCII letters, digits, `.`, `_`, `-`; at most 249).
        name: String,
        /// Number of partitions (-1: the broker's num.partitions).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        partitions: i32,
        /// Copies of each partition (-1: the broker's default.replication.factor).
        #[arg(
            long = "replication-factor",
            default_value_t = 1,
            allow_negative_numbers = true
        )]
        replication_factor: i16,
        /// Topic config KEY=VALUE (repeatable), e.g. retention.ms=3600000.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
    /// List topics.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leader, replicas, ISR and earliest/latest offsets.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Raise a topic's partition count (kafka-topics.sh --alter --partitions).
    AddPartitions {
        /// Topic name.
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: i32,
    },
    /// Delete the records before an offset (kafka-delete-records.sh).
    Truncate {
        /// Topic name.
        name: String,
        /// Only these partitions (repeatable; default: all).
        #[arg(long = "partition", short = 'p')]
        partitions: Vec<i32>,
        /// Delete records before this offset; `end` deletes everything written so far.
        #[arg(long, value_name = "OFFSET|end")]
        before: String,
    },
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn list(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn partitions_of(t: &TopicDescription) -> Vec<TopicPartition> {
    t.partitions
        .iter()
        .map(|p| TopicPartition::new(&t.name, p.partition))
        .collect()
}

pub(crate) async fn run(global: &Global, cmd: TopicsCmd) -> Result<ExitCode> {
    let client = global.client().await?;
    let admin = client.admin();
    let code = topics(&admin, cmd).await;
    client.close();
    code
}

async fn topics(admin: &Admin, cmd: TopicsCmd) -> Result<ExitCode> {
    match cmd {
        TopicsCmd::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut topic = NewTopic::new(&name, partitions, replication_factor);
            for kv in configs {
                let (k, v) = crate::settings::key_value("--config", &kv)?;
                topic = topic.config(k, v);
            }
            admin.create_topic(topic).await?;
            crate::out!(
                "created topic {name} ({}, replication factor {replication_factor})",
                plural(partitions.max(0) as usize, "partition", "partitions")
            );
        }
        TopicsCmd::Delete { name } => {
            admin.delete_topic(&name).await?;
            crate::out!("deleted topic {name}");
        }
        TopicsCmd::List { internal } => {
            for t in admin.list_topics(internal).await? {
                crate::out!(
                    "{}\t{}",
                    t.name,
                    plural(t.partitions.len(), "partition", "partitions")
                );
            }
        }
        TopicsCmd::Describe { name } => {
            let t = admin.describe_topic(&name).await?;
            let tps = partitions_of(&t);
            let spec = |s: OffsetSpec| tps.iter().map(|tp| (tp.clone(), s)).collect::<Vec<_>>();
            let earliest = admin.list_offsets(&spec(OffsetSpec::Earliest)).await?;
            let latest = admin.list_offsets(&spec(OffsetSpec::Latest)).await?;
            crate::out!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}",
                t.name,
                t.id,
                t.partitions.len()
            );
            for (p, tp) in t.partitions.iter().zip(&tps) {
                crate::out!(
                    "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tEarliest: {}\tLatest: {}",
                    p.partition,
                    p.leader.map_or("none".to_owned(), |l| l.to_string()),
                    list(&p.replicas),
                    list(&p.isr),
                    earliest.get(tp).map_or(-1, |o| o.offset),
                    latest.get(tp).map_or(-1, |o| o.offset),
                );
            }
        }
        TopicsCmd::AddPartitions { name, partitions } => {
            let mut r = admin
                .create_partitions(&[(name.clone(), partitions)])
                .await?;
            if let Some((_, r)) = r.pop() {
                r?;
            }
            crate::out!(
                "topic {name} now has {}",
                plural(partitions.max(0) as usize, "partition", "partitions")
            );
        }
        TopicsCmd::Truncate {
            name,
            partitions,
            before,
        } => {
            let offset = match before.as_str() {
                "end" => -1,
                n => match n.parse::<i64>() {
                    Ok(o) if o >= 0 => o,
                    _ => {
                        return Err(kafka_ingest::Error::InvalidArgument {
                            message: format!("--before expects an offset or `end`, got `{n}`"),
                        })
                    }
                },
            };
            let t = admin.describe_topic(&name).await?;
            let tps: Vec<TopicPartition> = if partitions.is_empty() {
                partitions_of(&t)
            } else {
                partitions
                    .iter()
                    .map(|p| TopicPartition::new(&name, *p))
                    .collect()
            };
            let before: BTreeMap<TopicPartition, i64> =
                tps.into_iter().map(|tp| (tp, offset)).collect();
            for (tp, low) in admin.delete_records(&before).await? {
                crate::out!("{}\t{}\tlow watermark {low}", tp.topic, tp.partition);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct MetadataArgs {
    /// Only this topic (repeatable; default: every topic).
    #[arg(long, short)]
    topic: Vec<String>,
    /// Include internal topics.
    #[arg(long)]
    internal: bool,
}

/// `kcat -L`: brokers, controller, topics, partitions.
pub(crate) async fn metadata(global: &Global, args: MetadataArgs) -> Result<ExitCode> {
    let client = global.client().await?;
    let admin = client.admin();
    let cluster = admin.describe_cluster().await?;
    let topics = if args.topic.is_empty() {
        admin.list_topics(args.internal).await?
    } else {
        admin.describe_topics(&args.topic).await?
    };
    client.close();
    crate::out!(
        "Cluster: {}\tController: {}",
        cluster.cluster_id.as_deref().unwrap_or("-"),
        cluster.controller_id.map_or("-".into(), |c| c.to_string())
    );
    crate::out!("{}:", plural(cluster.brokers.len(), "broker", "brokers"));
    for b in &cluster.brokers {
        let controller = if Some(b.id) == cluster.controller_id {
            " (controller)"
        } else {
            ""
        };
        let rack = b
            .rack
            .as_deref()
            .map(|r| format!(" rack {r}"))
            .unwrap_or_default();
        crate::out!(
            "  broker {} at {}:{}{rack}{controller}",
            b.id,
            b.host,
            b.port
        );
    }
    crate::out!("{}:", plural(topics.len(), "topic", "topics"));
    for t in &topics {
        crate::out!(
            "  topic \"{}\" with {}:",
            t.name,
            plural(t.partitions.len(), "partition", "partitions")
        );
        for p in &t.partitions {
            crate::out!(
                "    partition {}, leader {}, replicas: {}, isrs: {}",
                p.partition,
                p.leader.map_or("none".to_owned(), |l| l.to_string()),
                list(&p.replicas),
                list(&p.isr)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
