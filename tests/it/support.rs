//! Shared helpers: where the brokers are, unique names, the harness.

use std::time::Duration;

use kafka_ingest::{Client, ClientBuilder};

/// Single-node bootstrap (`KAFKA_BOOTSTRAP`, default 127.0.0.1:9092).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// 3-node cluster bootstrap (`KAFKA_CLUSTER_BOOTSTRAP`).
pub fn cluster_bootstrap() -> String {
    std::env::var("KAFKA_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092".to_owned())
}

/// A builder with test-friendly timeouts.
pub fn builder(bootstrap: &str) -> ClientBuilder {
    Client::builder()
        .bootstrap(bootstrap)
        .client_id("kafka-ingest-it")
        .request_timeout(Duration::from_secs(15))
        .api_timeout(Duration::from_secs(30))
}

/// A client on the single node, or a failure that says how to start it.
pub async fn client() -> Client {
    let b = bootstrap();
    builder(&b).build().await.unwrap_or_else(|e| {
        panic!("Kafka is not reachable at {b}: {e}\nStart it with `scripts/harness up` (or run `scripts/test`).")
    })
}

/// A client on the 3-node cluster, or a failure that says how to start it.
pub async fn cluster_client() -> Client {
    let b = cluster_bootstrap();
    builder(&b).build().await.unwrap_or_else(|e| {
        panic!("the 3-node cluster is not reachable at {b}: {e}\nStart it with `scripts/harness up --cluster`.")
    })
}

/// A topic name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Runs `scripts/harness ARGS` and fails the test if it fails.
pub fn harness(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
    let status = std::process::Command::new(script).args(args).status().expect("run scripts/harness");
    assert!(status.success(), "scripts/harness {} failed: {status}", args.join(" "));
}
