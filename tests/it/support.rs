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
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Runs `scripts/harness ARGS` and fails the test if it fails.
pub fn harness(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
    let status = std::process::Command::new(script)
        .args(args)
        .status()
        .expect("run scripts/harness");
    assert!(
        status.success(),
        "scripts/harness {} failed: {status}",
        args.join(" ")
    );
}

/// One record as librdkafka read it (bytes as hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    pub timestamp: i64,
}

/// Runs a peer script from tests/peers/ with the venv python (`scripts/peers`)
/// and returns its stdout; fails the test if it fails.
pub fn python_peer(script: &str, args: &[&str]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = std::process::Command::new(format!("{root}/scripts/peers"))
        .output()
        .expect("scripts/peers");
    assert!(
        python.status.success(),
        "scripts/peers failed: {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let out = std::process::Command::new(python)
        .arg(format!("{root}/tests/peers/{script}"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads `count` records of `topic` with librdkafka (tests/peers/dump_topic.py).
pub fn peer_dump(bootstrap: &str, topic: &str, count: usize) -> Vec<PeerRecord> {
    let count = count.to_string();
    let args = [
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        &count,
        "--idle",
        "15",
    ];
    python_peer("dump_topic.py", &args)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let opt = |x: &serde_json::Value| x.as_str().map(str::to_owned);
            PeerRecord {
                partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                offset: v["offset"].as_i64().unwrap_or(-1),
                key: opt(&v["key"]),
                value: opt(&v["value"]),
                headers: v["headers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|h| (h[0].as_str().unwrap_or("").to_owned(), opt(&h[1])))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: v["timestamp"].as_i64().unwrap_or(-1),
            }
        })
        .collect()
}

/// Serialises tests that kill or restart cluster nodes, and makes sure all
/// three nodes run first (a node a failed test left down is restarted).
pub async fn cluster_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = LOCK.lock().await;
    tokio::task::spawn_blocking(|| harness(&["up", "--cluster"]))
        .await
        .expect("harness up --cluster");
    guard
}

/// A SIGKILLed cluster node that is restarted when this is dropped, even if
/// the test panics first.
pub struct KilledNode(Option<i32>);

impl KilledNode {
    pub fn kill(id: i32) -> KilledNode {
        harness(&["kill-node", &id.to_string()]);
        KilledNode(Some(id))
    }

    /// Restarts the node now and waits until it is back in the cluster.
    pub fn restart(mut self) {
        if let Some(id) = self.0.take() {
            harness(&["start-node", &id.to_string()]);
        }
    }
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
            let _ = std::process::Command::new(script)
                .args(["start-node", &id.to_string()])
                .status();
        }
    }
}

/// Runs tests/peers/librdkafka_peer.py with `args` and returns its stdout.
pub fn librdkafka(args: &[&str]) -> String {
    python_peer("librdkafka_peer.py", args)
}

/// Creates a single-node topic with `partitions` partitions (RF 1).
pub async fn create_topic(name: &str, partitions: i32) {
    client()
        .await
        .admin()
        .create_topic(kafka_ingest::NewTopic::new(name, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
}

/// Logs to stderr when `KAFKA_INGEST_LOG` is set (e.g. `kafka_ingest=debug`),
/// to see what the client did in a failing test.
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("KAFKA_INGEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

/// Bounds a test: if it is still running after `secs`, the test binary
/// aborts with a message naming it, so a hang fails CI instead of stalling
/// it. Dropped when the test returns (or panics).
#[must_use]
pub fn watchdog(test: &'static str, secs: u64) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(secs))
        {
            eprintln!("test {test} is still running after {secs} s: it hangs; aborting");
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

/// See [`watchdog`].
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` every 200 ms until it yields a value, for state the
/// broker applies asynchronously (configs, quotas); panics naming `what`
/// after 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never showed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
