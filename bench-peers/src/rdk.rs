//! librdkafka through the rdkafka crate: ThreadedProducer, BaseConsumer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::{pairs, payload, Cmd, Latencies, Pace, Tally};

/// Delivery reports arrive here, on the producer's polling thread; the
/// opaque is the send time in nanoseconds since `start`.
struct Ctx {
    start: Instant,
    lat: Arc<Latencies>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, sent_ns: usize) {
        match r {
            Ok(_) => self
                .lat
                .ok(self.start + Duration::from_nanos(sent_ns as u64)),
            Err((e, _)) => self.lat.failed(e),
        }
    }
}

pub fn run(bootstrap: &str, cmd: Cmd) {
    match cmd {
        Cmd::Produce {
            topic,
            num_records,
            record_size,
            props,
            throughput,
        } => {
            let mut cfg = ClientConfig::new();
            // The same 32 MiB bound as the others' buffer.memory, instead of
            // 1 GiB; the message count (default 100k, 10 MB of 100 B records)
            // raised so that the bytes bind.
            cfg.set("bootstrap.servers", bootstrap)
                .set("queue.buffering.max.kbytes", "32768")
                .set("queue.buffering.max.messages", "1000000");
            for (k, v) in pairs(&props) {
                cfg.set(k, v);
            }
            let lat = Arc::new(Latencies::new());
            let start = Instant::now();
            let producer: ThreadedProducer<Ctx> = cfg
                .create_with_context(Ctx {
                    start,
                    lat: lat.clone(),
                })
                .expect("producer");
            // Connected, with the topic's leaders known, before the clock starts
            // (as `perf produce`); otherwise the first ~0.5 s of records wait for it.
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(30))
                .expect("metadata");
            let payload = payload(record_size);
            let t0 = Instant::now();
            let pace = Pace::new(throughput);
            for i in 0..num_records {
                if let Some(p) = &pace {
                    p.wait_blocking(i);
                }
                let sent = start.elapsed().as_nanos() as usize;
                let mut rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&topic, sent)
                    .payload(&payload[..]);
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            rec = r; // queue full: wait for deliveries (backpressure)
                            std::thread::sleep(Duration::from_micros(100));
                        }
                    }
                }
            }
            producer.flush(Duration::from_secs(60)).expect("flush");
            lat.report(num_records, record_size, t0.elapsed());
        }
        Cmd::Consume {
            topic,
            partitions,
            group,
            num_records,
            props,
        } => {
            let mut cfg = ClientConfig::new();
            cfg.set("bootstrap.servers", bootstrap)
                .set("group.id", group.as_deref().unwrap_or("bench-peers"))
                .set("auto.offset.reset", "earliest")
                // With the defaults a partition's fetches pause for
                // fetch.queue.backoff.ms (1 s) each time its local queue holds
                // queued.min.messages (100k): a fast reader drains the queue and
                // then idles. Keep fetching instead.
                .set("fetch.queue.backoff.ms", "0");
            if group.is_none() {
                cfg.set("enable.auto.commit", "false");
            }
            for (k, v) in pairs(&props) {
                cfg.set(k, v);
            }
            let consumer: BaseConsumer = cfg.create().expect("consumer");
            match &group {
                Some(_) => consumer.subscribe(&[&topic]).expect("subscribe"),
                None => {
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..partitions {
                        tpl.add_partition_offset(&topic, p, Offset::Beginning)
                            .expect("tpl");
                    }
                    consumer.assign(&tpl).expect("assign");
                }
            }
            let mut t = Tally::new(group.is_some());
            while t.more(num_records) {
                match consumer.poll(Duration::from_millis(500)) {
                    Some(Ok(m)) => t.add(1, m.payload().map_or(0, |p| p.len()) as u64),
                    Some(Err(e)) => eprintln!("consume error: {e}"),
                    None => t.add(0, 0),
                }
            }
            t.report(num_records);
        }
    }
}
