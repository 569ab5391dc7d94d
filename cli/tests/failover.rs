//! `kafka-ingest consume --group` on the 3-node cluster while two brokers
//! (the group's coordinator first) are SIGKILLed and restarted: every record
//! arrives, the commits end at the log end, the longest pause is bounded.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/harness");

fn cluster() -> String {
    std::env::var("KAFKA_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092".to_owned())
}

fn harness(args: &[&str]) {
    let ok = Command::new(HARNESS)
        .args(args)
        .status()
        .expect("scripts/harness")
        .success();
    assert!(
        ok,
        "scripts/harness {args:?} failed (is `scripts/harness up --cluster` running?)"
    );
}

fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"));
    c.args(["--bootstrap", &cluster()]).args(args);
    c
}

fn output(args: &[&str]) -> String {
    let out = cli(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Restarts a killed node even if the test fails first.
struct Killed(Option<String>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            let _ = Command::new(HARNESS).args(["start-node", &id]).status();
        }
    }
}

fn kill_and_restart(id: i32, down: Duration) {
    let id = id.to_string();
    harness(&["kill-node", &id]);
    let guard = Killed(Some(id.clone()));
    std::thread::sleep(down);
    drop(guard); // restarts and waits until the node is back
}

#[test]
fn cli_group_consumer_survives_two_broker_restarts() {
    harness(&["up", "--cluster"]);
    let topic = format!("cli-failover-{}", std::process::id());
    let group = format!("{topic}-g");
    harness(&[
        "tool",
        "TopicCommand",
        "--bootstrap-server",
        "127.0.0.1:19092",
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "6",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ]);
    const N: usize = 40_000;
    let mut consumer = cli(&[
        "-X",
        "session.timeout.ms=10000",
        "-X",
        "heartbeat.interval.ms=1000",
        "consume",
        "-t",
        &topic,
        "-g",
        &group,
        "--from-beginning",
        "-f",
        "%p %o",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines: Arc<Mutex<Vec<(String, Instant)>>> = Default::default();
    let reader = {
        let lines = lines.clone();
        let out = consumer.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push((l, Instant::now()));
            }
        })
    };
    let producer = cli(&[
        "perf",
        "produce",
        "-t",
        &topic,
        "--num-records",
        &N.to_string(),
        "--record-size",
        "100",
        "--throughput",
        "3000",
    ])
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let distinct = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect::<HashSet<_>>()
            .len()
    };
    let wait = |n: usize, within: Duration| {
        let start = Instant::now();
        while distinct() < n {
            assert!(
                start.elapsed() < within,
                "only {} of {n} records after {within:?}",
                distinct()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait(1_000, Duration::from_secs(60));
    let desc = output(&["groups", "describe", &group]);
    let coordinator: i32 = desc
        .split("Coordinator: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no coordinator in: {desc}"));
    kill_and_restart(coordinator, Duration::from_secs(5));
    kill_and_restart(coordinator % 3 + 1, Duration::from_secs(5));
    let status = producer.wait_with_output().unwrap().status;
    assert!(status.success(), "perf produce failed");
    wait(N, Duration::from_secs(120));

    // SIGINT: commit what was printed, leave the group, exit.
    let pid = consumer.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "consume did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    let mut times: Vec<Instant> = lines.iter().map(|(_, t)| *t).collect();
    times.sort();
    let longest = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} lines, {} distinct; longest pause between records: {longest:?}",
        lines.len(),
        distinct_of(&lines)
    );
    assert_eq!(distinct_of(&lines), N, "every record printed at least once");
    assert!(longest < Duration::from_secs(20), "stalled for {longest:?}");
    let desc = output(&["groups", "describe", &group]);
    let rows: Vec<&str> = desc.lines().filter(|l| l.starts_with(&topic)).collect();
    assert_eq!(rows.len(), 6, "{desc}");
    for row in rows {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[2], cols[3], "committed = log end: {row}");
    }
}

fn distinct_of(lines: &[(String, Instant)]) -> usize {
    lines.iter().map(|(l, _)| l).collect::<HashSet<_>>().len()
}
