//! Shared helpers of the CLI tests: the built binary against the harness
//! broker and registry, every run bounded; the Java tools and librdkafka as
//! peers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one CLI run may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(90);

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".to_owned())
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// target/lab-artifacts/: reports and screenshots kept after a run.
pub fn artifacts() -> PathBuf {
    let d = repo().join("target/lab-artifacts");
    std::fs::create_dir_all(&d).expect("artifact dir");
    d
}

pub fn schema_file(name: &str) -> String {
    repo()
        .join("schemas")
        .join(format!("{name}.avsc"))
        .display()
        .to_string()
}

/// The binary with `--bootstrap` set.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = bare(args);
    c.env("KAFKA_BOOTSTRAP", bootstrap());
    c
}

/// The binary with no bootstrap of our own (the caller's settings only).
pub fn bare(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"));
    c.args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .env("SCHEMA_REGISTRY_URL", registry_url());
    c
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Waits for `child` (whose stdin is already handled) at most `limit`,
/// killing it and failing the test after that.
pub fn finish(mut child: Child, what: &str, limit: Duration) -> Out {
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let o = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let e = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} still running after {limit:?}; stderr so far: {}",
                e.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    }
}

/// Runs `c` with `stdin`, bounded by `limit`.
pub fn run_cmd_with(mut c: Command, stdin: &[u8], limit: Duration) -> Out {
    let what = format!("{c:?}");
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin piped");
    let data = stdin.to_vec();
    // A writer thread: a child that stops reading must not block the test.
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    finish(child, &what, limit)
}

pub fn run_cmd(c: Command, stdin: &[u8]) -> Out {
    run_cmd_with(c, stdin, LIMIT)
}

/// `kafka-ingest ARGS` with `stdin`: exit code, stdout, stderr.
pub fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let o = run_cmd(cmd(args), stdin.as_bytes());
    (o.code, o.text(), o.stderr)
}

/// Like [`run`], failing the test unless it exits 0; returns stdout.
pub fn must(args: &[&str], stdin: &str) -> String {
    let (code, out, err) = run(args, stdin);
    assert_eq!(
        code, 0,
        "kafka-ingest {args:?} failed: {err}\n(is `scripts/harness up` running?)"
    );
    out
}

/// Runs a Kafka 4.1.1 command-line class (`scripts/harness tool`); stdout.
pub fn java(class: &str, args: &[&str]) -> String {
    let mut c = Command::new(repo().join("scripts/harness"));
    c.arg("tool").arg(class).args(args);
    let o = run_cmd_with(c, b"", Duration::from_secs(120));
    assert_eq!(o.code, 0, "{class} {args:?} failed: {}", o.stderr);
    o.text()
}

/// The Python with the librdkafka peer installed (`scripts/peers`).
pub fn peer_python() -> String {
    let o = run_cmd_with(
        Command::new(repo().join("scripts/peers")),
        b"",
        Duration::from_secs(900),
    );
    assert_eq!(o.code, 0, "scripts/peers: {}", o.stderr);
    o.text().trim().to_owned()
}

/// A librdkafka peer command (tests/peers/librdkafka_peer.py).
pub fn librdkafka(args: &[&str]) -> Command {
    let mut c = Command::new(peer_python());
    c.arg(repo().join("tests/peers/librdkafka_peer.py"))
        .args(["--bootstrap", &bootstrap()])
        .args(args);
    c
}

/// Polls `check` until it returns `Some`, at most `limit`.
pub fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sum of the `Latest:` offsets `topics describe` prints.
pub fn latest_total(topic: &str) -> i64 {
    must(&["topics", "describe", topic], "")
        .lines()
        .filter_map(|l| l.split("Latest: ").nth(1))
        .map(|v| v.trim().parse::<i64>().unwrap())
        .sum()
}

/// A topic with `partitions` partitions.
pub fn topic(prefix: &str, partitions: u32) -> String {
    let t = unique(prefix);
    must(
        &[
            "topics",
            "create",
            &t,
            "--partitions",
            &partitions.to_string(),
        ],
        "",
    );
    t
}

/// The harness broker's log directory of one partition (for DumpLogSegments).
pub fn partition_dir(topic: &str, partition: i32) -> PathBuf {
    let cache = std::env::var("KAFKA_INGEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kafka-ingest")
        });
    let d = cache.join(format!("run/single/data/{topic}-{partition}"));
    assert!(
        d.is_dir(),
        "{} is not the harness broker's log dir",
        d.display()
    );
    d
}

/// DumpLogSegments of one partition's first segment: one line per batch.
pub fn batches(topic: &str, partition: i32) -> Vec<String> {
    let f = partition_dir(topic, partition).join("00000000000000000000.log");
    java(
        "kafka.tools.DumpLogSegments",
        &["--files", &f.display().to_string()],
    )
    .lines()
    .filter(|l| l.starts_with("baseOffset:"))
    .map(str::to_owned)
    .collect()
}

/// Sends `sig` (e.g. "-INT") to a child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

/// `kafka-ingest` with a command line split on whitespace (topic and group
/// names have none); fails unless it exits 0; returns stdout.
pub fn sh(line: &str) -> String {
    must(&line.split_whitespace().collect::<Vec<_>>(), "")
}

/// Like [`sh`], returning (exit code, stdout, stderr) whatever the outcome.
pub fn sh_run(line: &str) -> (i32, String, String) {
    run(&line.split_whitespace().collect::<Vec<_>>(), "")
}

/// A spawned process that is killed if the test fails before [`Running::finish`].
pub struct Running(Option<Child>);

impl Running {
    /// Spawns `c` with piped stdout and stderr (and stdin, if `stdin`).
    pub fn spawn(c: &mut Command, stdin: bool) -> Running {
        if stdin {
            c.stdin(Stdio::piped());
        }
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Running(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// Waits for the process, bounded as [`finish`].
    pub fn finish(mut self, what: &str, limit: Duration) -> Out {
        finish(self.0.take().expect("running"), what, limit)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
