//! `kafka-ingest topics ...`

use std::process::ExitCode;

use clap::Subcommand;
use kafka_ingest::{NewTopic, OffsetSpec, Result, TopicPartition};

use crate::Global;

#[derive(Subcommand)]
pub(crate) enum TopicsCmd {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long = "replication-factor", default_value_t = 1)]
        replication_factor: i16,
        /// Topic config KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete a topic.
    Delete { name: String },
    /// List topics.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leader, replicas, ISR and earliest/latest offsets.
    Describe { name: String },
}

pub(crate) async fn run(global: &Global, cmd: TopicsCmd) -> Result<ExitCode> {
    let client = global.builder()?.build().await?;
    let admin = client.admin();
    match cmd {
        TopicsCmd::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut topic = NewTopic::new(&name, partitions, replication_factor);
            for kv in configs {
                let Some((k, v)) = kv.split_once('=') else {
                    eprintln!("error: --config expects KEY=VALUE, got `{kv}`");
                    return Ok(ExitCode::from(2));
                };
                topic = topic.config(k, v);
            }
            admin.create_topic(topic).await?;
            println!("created topic {name} ({partitions} partitions, replication factor {replication_factor})");
        }
        TopicsCmd::Delete { name } => {
            admin.delete_topic(&name).await?;
            println!("deleted topic {name}");
        }
        TopicsCmd::List { internal } => {
            for t in admin.list_topics(internal).await? {
                println!("{}\t{} partitions", t.name, t.partitions.len());
            }
        }
        TopicsCmd::Describe { name } => {
            let t = admin.describe_topic(&name).await?;
            let tps: Vec<TopicPartition> = t
                .partitions
                .iter()
                .map(|p| TopicPartition::new(&name, p.partition))
                .collect();
            let spec = |s: OffsetSpec| tps.iter().map(|tp| (tp.clone(), s)).collect::<Vec<_>>();
            let earliest = admin.list_offsets(&spec(OffsetSpec::Earliest)).await?;
            let latest = admin.list_offsets(&spec(OffsetSpec::Latest)).await?;
            println!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}",
                t.name,
                t.id,
                t.partitions.len()
            );
            for (p, tp) in t.partitions.iter().zip(&tps) {
                let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                println!(
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
    }
    client.close();
    Ok(ExitCode::SUCCESS)
}
