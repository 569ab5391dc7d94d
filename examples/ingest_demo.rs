//! The ingestion demo (README command 1): prepares the `ingest-events` topic
//! and reports what the cluster looks like.

use std::time::Duration;

use kafka_ingest::{Client, NewTopic, OffsetSpec, TopicPartition};

const TOPIC: &str = "ingest-events";

#[tokio::main]
async fn main() -> kafka_ingest::Result<()> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let client = Client::builder().bootstrap(&bootstrap).api_timeout(Duration::from_secs(20)).build().await?;
    let admin = client.admin();
    let cluster = admin.describe_cluster().await?;
    println!(
        "connected to cluster {} ({} broker(s))",
        cluster.cluster_id.as_deref().unwrap_or("?"),
        cluster.brokers.len()
    );
    match admin.create_topic(NewTopic::new(TOPIC, 6, 1)).await {
        Ok(()) => println!("created topic {TOPIC} with 6 partitions"),
        Err(e) if e.code().is_some_and(|c| c.0 == 36) => println!("topic {TOPIC} already exists"),
        Err(e) => return Err(e),
    }
    let topic = admin.describe_topic(TOPIC).await?;
    let specs: Vec<_> =
        topic.partitions.iter().map(|p| (TopicPartition::new(TOPIC, p.partition), OffsetSpec::Latest)).collect();
    let latest = admin.list_offsets(&specs).await?;
    for p in &topic.partitions {
        let end = latest.get(&TopicPartition::new(TOPIC, p.partition)).map_or(-1, |o| o.offset);
        println!("  partition {} leader {:?} end offset {end}", p.partition, p.leader);
    }
    client.close();
    Ok(())
}
