//! Confluent's native Rust client (confluent-kafka): KafkaProducer's
//! byte-slice `send` with a completion callback; KafkaConsumer with the
//! zero-copy BytesDeserializer. Its groups speak only KIP-848.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confluent_kafka::common::serialization::{ByteArraySerializer, BytesDeserializer};
use confluent_kafka::common::TopicPartition;
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};
use confluent_kafka::producer::{KafkaProducer, Producer, ProducerConfig, ProducerRecord};

use crate::{pairs, payload, Cmd, Latencies, Pace, Tally};

pub async fn run(bootstrap: &str, cmd: Cmd) {
    match cmd {
        Cmd::Produce {
            topic,
            num_records,
            record_size,
            props,
            throughput,
        } => {
            let mut cfg = HashMap::from([("bootstrap.servers".to_string(), bootstrap.to_string())]);
            cfg.extend(pairs(&props));
            let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
                ProducerConfig::new(&cfg).expect("producer config"),
                ByteArraySerializer::new(),
                ByteArraySerializer::new(),
            )
            .expect("producer");
            // Connected, with the topic's leaders known, before the clock starts.
            producer.partitions_for(&topic).await.expect("metadata");
            let payload = payload(record_size);
            let lat = Arc::new(Latencies::new());
            let t0 = Instant::now();
            let pace = Pace::new(throughput);
            for i in 0..num_records {
                if let Some(p) = &pace {
                    tokio::time::sleep_until(p.due(i).into()).await;
                }
                let sent_at = Instant::now();
                let l = lat.clone();
                let rec = ProducerRecord::with_partition_timestamp_key(
                    topic.clone(),
                    None,
                    None,
                    None,
                    Some(&payload[..]),
                )
                .expect("record");
                // Resolves once the record is in the accumulator (waits for
                // buffer memory); the callback reports the acknowledgement.
                producer
                    .send(
                        rec,
                        Some(Box::new(move |_: Option<&_>, e: Option<&_>| match e {
                            None => l.ok(sent_at),
                            Some(e) => l.failed(e),
                        })),
                    )
                    .await
                    .expect("send");
            }
            producer.flush().await.expect("flush");
            let elapsed = t0.elapsed();
            producer
                .close_with_timeout(Duration::from_secs(10))
                .await
                .expect("close");
            lat.report(num_records, record_size, elapsed);
        }
        Cmd::Consume {
            topic,
            partitions,
            group,
            num_records,
            props,
        } => {
            let mut cfg = HashMap::from([
                ("bootstrap.servers".to_string(), bootstrap.to_string()),
                ("group.protocol".to_string(), "consumer".to_string()),
                ("auto.offset.reset".to_string(), "earliest".to_string()),
            ]);
            if let Some(g) = &group {
                cfg.insert("group.id".into(), g.clone());
            }
            cfg.extend(pairs(&props));
            let mut consumer = KafkaConsumer::<Bytes, Bytes>::new(
                ConsumerConfig::new(&cfg).expect("consumer config"),
                BytesDeserializer::new(),
                BytesDeserializer::new(),
            )
            .expect("consumer");
            match &group {
                Some(_) => consumer
                    .subscribe_with_topics(vec![topic.clone()])
                    .await
                    .expect("subscribe"),
                None => {
                    let tps: Vec<TopicPartition> = (0..partitions)
                        .map(|p| TopicPartition::new(topic.as_str(), p))
                        .collect();
                    consumer.assign(tps.clone()).await.expect("assign");
                    consumer.seek_to_beginning(&tps).await.expect("seek");
                }
            }
            let mut t = Tally::new(group.is_some());
            while t.more(num_records) {
                let rs = consumer
                    .poll(Duration::from_millis(500))
                    .await
                    .expect("poll");
                let bytes: usize = (&rs)
                    .into_iter()
                    .map(|r| r.value().map_or(0, |v| v.len()))
                    .sum();
                t.add(rs.count() as u64, bytes as u64);
            }
            t.report(num_records);
            consumer.close().await.expect("close");
        }
    }
}
