//! The ingestion demo (README command 1): a producer streams ingestion events,
//! Avro-encoded against `schemas/ingest_event_v1.avsc` through the schema
//! registry, into `ingest-events`; three consumers in one group decode and
//! validate them, commit manually, and the demo reports counts and the group's
//! final lag. Ctrl-C stops it gracefully: the producer flushes, consumers
//! commit and leave the group.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_ingest::schema_registry::{
    AvroDeserializer, AvroSerializer, RecordPart, SchemaRegistryClient, SchemaRegistryConfig,
};
use kafka_ingest::{Client, Consumer, NewTopic, Producer, ProducerRecord};

const SCHEMA: &str = include_str!("../schemas/ingest_event_v1.avsc");

const TOPIC: &str = "ingest-events";
const GROUP: &str = "ingest-demo";
const CONSUMERS: usize = 3;
const SENSORS: u64 = 24;

fn event(id: u64) -> (String, String) {
    let sensor = format!("sensor-{:02}", id % SENSORS);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let status = if id % 10 == 0 { "warning" } else { "ok" };
    let value = 20.0 + (id % 50) as f64 / 10.0;
    let json = format!(
        r#"{{"event_id":{id},"timestamp":{ts:.3},"status":"{status}","data":{{"sensor":"{sensor}","value":{value:.1}}}}}"#
    );
    (sensor, json)
}

#[tokio::main]
async fn main() -> kafka_ingest::Result<()> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let total: u64 = std::env::var("DEMO_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let registry_url = std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| kafka_ingest::schema_registry::DEFAULT_URL.to_owned());
    let registry_config = SchemaRegistryConfig::new(&registry_url);
    let registry = SchemaRegistryClient::new(&registry_config).map_err(demo_err)?;
    let serializer = AvroSerializer::new(
        registry.clone(),
        &registry_config,
        RecordPart::Value,
        SCHEMA,
    )
    .map_err(demo_err)?;
    let id = serializer.schema_id(TOPIC).await.map_err(demo_err)?;
    println!("registered IngestEvent v1 as schema id {id} under {TOPIC}-value at {registry_url}");
    let client = Client::builder()
        .bootstrap(&bootstrap)
        .api_timeout(Duration::from_secs(20))
        .build()
        .await?;
    let admin = client.admin();
    match admin.create_topic(NewTopic::new(TOPIC, 6, 1)).await {
        Ok(()) => println!("created topic {TOPIC} (6 partitions)"),
        Err(e) if e.code().is_some_and(|c| c.0 == 36) => println!("using topic {TOPIC}"),
        Err(e) => return Err(e),
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                println!("\nCtrl-C: stopping gracefully");
                stop.store(true, Ordering::SeqCst);
            }
        });
    }

    // Consumers first, so they are in the group when events arrive.
    let consumed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for n in 0..CONSUMERS {
        let consumer = Consumer::builder()
            .bootstrap(&bootstrap)
            .set("group.id", GROUP)
            .set("client.id", &format!("demo-consumer-{n}"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("heartbeat.interval.ms", "500")
            .build()
            .await?;
        consumer.subscribe(&[TOPIC]).await?;
        let (stop, consumed) = (stop.clone(), consumed.clone());
        let decoder =
            AvroDeserializer::with_reader_schema(registry.clone(), SCHEMA).map_err(demo_err)?;
        workers.push(tokio::spawn(async move {
            let mut mine = 0usize;
            let mut warnings = 0usize;
            let mut invalid = 0usize;
            let mut idle_since = Instant::now();
            loop {
                let records = consumer.poll(Duration::from_millis(200)).await?;
                for r in &records {
                    // "Processing": decode against the schema and look at the event.
                    match decoder
                        .deserialize_json(r.value.as_deref().unwrap_or_default())
                        .await
                    {
                        Ok(json) if json.contains(r#""status":"warning""#) => warnings += 1,
                        Ok(_) => {}
                        Err(_) => invalid += 1,
                    }
                }
                if !records.is_empty() {
                    consumer.commit().await?; // at-least-once: commit after processing
                    mine += records.len();
                    consumed.fetch_add(records.len(), Ordering::SeqCst);
                    idle_since = Instant::now();
                }
                // Done when stopped, or when everything is in and this member has been idle a while.
                if stop.load(Ordering::SeqCst) && idle_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            let parts = consumer.assignment().len();
            consumer.close().await; // leaves the group: no waiting for the session timeout
            Ok::<_, kafka_ingest::Error>((n, mine, warnings, invalid, parts))
        }));
    }

    // Let the group settle (every member owns partitions) before events flow.
    let settle = Instant::now();
    loop {
        let g = admin.describe_group(GROUP).await?;
        let owners = g
            .members
            .iter()
            .filter(|m| !m.assignment.is_empty())
            .count();
        if g.state == "Stable" && owners == CONSUMERS {
            println!(
                "group {GROUP} is stable: {CONSUMERS} members, {} partitions each",
                6 / CONSUMERS
            );
            break;
        }
        if settle.elapsed() > Duration::from_secs(30) || stop.load(Ordering::SeqCst) {
            println!("group {GROUP} not settled yet ({} of {CONSUMERS} members own partitions); producing anyway", owners);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let producer = Producer::builder()
        .bootstrap(&bootstrap)
        .set("linger.ms", "10")
        .set("compression.type", "lz4")
        .build()
        .await?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut batch = Vec::new();
    while sent < total && !stop.load(Ordering::SeqCst) {
        let (key, json) = event(sent);
        let value = serializer
            .serialize_json(TOPIC, &json)
            .await
            .map_err(demo_err)?;
        batch.push(
            producer
                .send(ProducerRecord::new(TOPIC).key(key).value(value))
                .await?,
        );
        sent += 1;
        if batch.len() == 1000 || sent == total {
            let mut last = None;
            for d in batch.drain(..) {
                last = Some(d.await?);
            }
            if let Some(m) = last {
                println!(
                    "delivered {sent} events (last: partition {} offset {})",
                    m.partition, m.offset
                );
            }
        }
    }
    for d in batch.drain(..) {
        d.await?;
    }
    producer.close(Duration::from_secs(10)).await;
    println!("produced {sent} events in {:.2?}", start.elapsed());

    // Wait until the group has caught up, then stop the consumers.
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumed.load(Ordering::SeqCst) < sent as usize
        && Instant::now() < deadline
        && !stop.load(Ordering::SeqCst)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let (n, count, warnings, invalid, parts) = w.await.expect("consumer task")?;
        println!(
            "consumer {n}: processed {count} events ({warnings} warnings, {invalid} not valid IngestEvent Avro), \
             owned {parts} partitions at the end"
        );
    }
    let g = admin.describe_group(GROUP).await?;
    let lag: i64 = g.offsets.iter().filter_map(|o| o.lag).sum();
    println!("group {GROUP}: state {}, total lag {lag}", g.state);
    client.close();
    Ok(())
}

/// Registry errors are their own type; the demo reports them as config errors.
fn demo_err(e: kafka_ingest::schema_registry::Error) -> kafka_ingest::Error {
    kafka_ingest::Error::Config {
        key: "schema.registry.url".into(),
        message: e.to_string(),
    }
}
