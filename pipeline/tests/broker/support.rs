//! Helpers for the pipeline's broker tests (`scripts/harness up`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_ingest::{
    Client, Consumer, ConsumerBuilder, ConsumerRecord, NewTopic, OffsetSpec, Producer,
    ProducerRecord, TopicPartition,
};
use kafka_ingest_pipeline::{Metrics, Pipeline, PipelineBuilder, PipelineHandle, Record};

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn client() -> Client {
    let b = bootstrap();
    Client::builder()
        .bootstrap(&b)
        .build()
        .await
        .unwrap_or_else(|e| panic!("Kafka is not reachable at {b}: {e}; run `scripts/harness up`"))
}

pub async fn create_topic(name: &str, partitions: i32) {
    client()
        .await
        .admin()
        .create_topic(NewTopic::new(name, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
}

/// A consumer builder with test-friendly timings.
pub fn consumer(group: &str) -> ConsumerBuilder {
    Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.max.wait.ms", "100")
}

pub async fn producer() -> Producer {
    Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "2")
        .build()
        .await
        .expect("producer")
}

/// Produces `(partition, key, value)` records; returns their offsets in order.
pub async fn produce(topic: &str, records: &[(i32, String, String)]) -> Vec<i64> {
    let p = producer().await;
    let mut futs = Vec::new();
    for (part, k, v) in records {
        let r = ProducerRecord::new(topic)
            .partition(*part)
            .key(k.clone())
            .value(v.clone());
        futs.push(p.send(r).await.expect("send"));
    }
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await.expect("ack").offset);
    }
    p.close(Duration::from_secs(5)).await;
    out
}

/// Every record of `topic` (all partitions, up to the current log end).
pub async fn read_all(topic: &str) -> Vec<ConsumerRecord> {
    let admin = client().await.admin();
    let d = admin.describe_topic(topic).await.expect("describe");
    let tps: Vec<TopicPartition> = d
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect();
    let specs: Vec<_> = tps
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let ends = admin.list_offsets(&specs).await.expect("ends");
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("enable.auto.commit", "false")
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .expect("consumer");
    c.assign(&tps).await.unwrap();
    c.seek_to_beginning(&tps).await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tps
        .iter()
        .all(|tp| c.position(tp).is_some_and(|p| p >= ends[tp].offset))
    {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        out.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    c.close().await;
    out
}

/// Sum of log-end offsets of a topic.
pub async fn log_end(topic: &str) -> i64 {
    let admin = client().await.admin();
    let Ok(d) = admin.describe_topic(topic).await else {
        return 0;
    };
    let specs: Vec<_> = d
        .partitions
        .iter()
        .map(|p| (TopicPartition::new(topic, p.partition), OffsetSpec::Latest))
        .collect();
    admin
        .list_offsets(&specs)
        .await
        .map(|m| m.values().map(|o| o.offset).sum())
        .unwrap_or(0)
}

/// Polls `f` until true, failing with `what` after `limit`.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, limit: Duration, mut f: F) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A started pipeline, run in a task.
pub struct Running {
    pub handle: PipelineHandle,
    task: tokio::task::JoinHandle<kafka_ingest_pipeline::Result<Metrics>>,
}

impl Running {
    pub fn start<H, F>(builder: PipelineBuilder, handler: H) -> Running
    where
        H: Fn(Record) -> F + Send + Sync + 'static,
        F: Future<Output = kafka_ingest_pipeline::HandlerResult> + Send + 'static,
    {
        let p: Pipeline = builder.build().expect("build");
        let handle = p.handle();
        let task = tokio::spawn(p.run(handler));
        Running { handle, task }
    }

    pub async fn wait(&self, what: &str, limit: Duration, f: impl Fn(&Metrics) -> bool) {
        let h = self.handle.clone();
        wait_until(what, limit, || f(&h.metrics())).await;
    }

    /// Graceful shutdown; the final metrics.
    pub async fn stop(self) -> Metrics {
        self.handle.shutdown();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("shutdown within 60 s")
            .expect("pipeline task")
            .expect("pipeline run")
    }

    /// Waits for the run to end by itself (with an error, say).
    pub async fn join(self) -> kafka_ingest_pipeline::Result<Metrics> {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("pipeline ends within 60 s")
            .expect("pipeline task")
    }
}

/// A shared log the handlers append to.
pub type Log<T> = Arc<Mutex<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}
