//! `kafka-ingest pipeline` and `kafka-ingest dlq replay` run as processes
//! against the harness broker (`scripts/harness up`): 100k records with
//! bad, always-failing and flaky ones; the same with the process
//! SIGKILLed twice; replaying a DLQ twice.

#![allow(clippy::single_range_in_vec_init)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_ingest::{Consumer, ConsumerRecord, NewTopic, Producer, ProducerRecord, TopicPartition};
use kafka_ingest_pipeline::headers::{self, Provenance};
use kafka_ingest_pipeline::OffsetMap;

// The pipeline crate's broker-test helpers (bootstrap, unique, read_all, log_end...).
#[path = "../../pipeline/tests/broker/support.rs"]
#[allow(dead_code)]
mod support;
use support::{bootstrap, log_end as end_sum, read_all, unique};

async fn admin() -> kafka_ingest::Admin {
    support::client().await.admin()
}

/// One input record and where it was written.
#[derive(Debug, Clone)]
struct Input {
    key: String,
    seq: u64,
    /// 0 ok, 1 bad, 2 simulate_error, 3 fail_times.
    kind: u8,
    fail: u64,
    partition: i32,
    offset: i64,
}

/// 1% bad, 1% simulate_error, 5% fail_times 1–2, over 1000 keys.
async fn dataset(topic: &str, n: u64) -> Vec<Input> {
    let a = admin().await;
    a.create_topic(NewTopic::new(topic, 6, 1)).await.unwrap();
    a.create_topic(NewTopic::new(format!("{topic}-out"), 6, 1))
        .await
        .unwrap();
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .set("linger.ms", "5")
        .build()
        .await
        .unwrap();
    let mut inputs = Vec::new();
    let mut futs = Vec::new();
    for i in 0..n {
        let (key, seq) = (format!("k{}", i % 1000), i / 1000);
        let (kind, fail, extra) = match i % 100 {
            0 => (1, 0, r#","bad":true"#.to_owned()),
            1 => (2, 0, r#","simulate_error":true"#.to_owned()),
            2..=6 => (3, 1 + i % 2, format!(r#","fail_times":{}"#, 1 + i % 2)),
            _ => (0, 0, String::new()),
        };
        let value = format!(r#"{{"id":{i},"seq":{seq}{extra}}}"#);
        futs.push(
            p.send(ProducerRecord::new(topic).key(key.clone()).value(value))
                .await
                .unwrap(),
        );
        inputs.push(Input {
            key,
            seq,
            kind,
            fail,
            partition: 0,
            offset: 0,
        });
    }
    for (i, f) in futs.into_iter().enumerate() {
        let m = f.await.unwrap();
        inputs[i].partition = m.partition;
        inputs[i].offset = m.offset;
    }
    p.close(Duration::from_secs(10)).await;
    inputs
}

fn id_of(r: &ConsumerRecord) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
    v["id"].as_u64().unwrap()
}

/// Total lag of the group over every partition it committed or owns.
async fn lag(group: &str) -> Option<i64> {
    let g = admin().await.describe_group(group).await.ok()?;
    Some(g.offsets.iter().map(|o| o.lag.unwrap_or(o.log_end)).sum())
}

struct Proc {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

fn start_pipeline(topic: &str, group: &str, run: usize) -> Proc {
    let dir = std::env::temp_dir();
    let stdout = dir.join(format!("{group}-{run}.out"));
    let stderr = dir.join(format!("{group}-{run}.err"));
    let child = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"))
        .args(["--bootstrap", &bootstrap()])
        .args(["pipeline", "--topic", topic, "--group", group])
        .args([
            "--max-in-flight",
            "16",
            "--retry-tiers",
            "1s,2s",
            "--max-attempts",
            "3",
        ])
        .args([
            "--backoff-ms",
            "5",
            "--max-backoff-ms",
            "20",
            "--commit-interval-ms",
            "200",
        ])
        .args(["--output-topic", &format!("{topic}-out")])
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Proc {
        child,
        stdout,
        stderr,
    }
}

impl Proc {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then the exit code and the JSON summary.
    fn stop(mut self) -> (i32, serde_json::Value, String) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("no exit 60 s after SIGTERM: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = std::fs::read_to_string(&self.stdout).unwrap();
        let json =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("summary `{out}`: {e}"));
        (status.code().unwrap_or(-1), json, self.stderr())
    }

    fn kill9(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds, while the process lives.
async fn wait_for(p: &mut Proc, what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(
            p.alive(),
            "pipeline exited while waiting for {what}: {}",
            p.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            p.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Everything finished: no lag on any partition of the group (twice).
async fn drained(group: &str) -> bool {
    for _ in 0..2 {
        if lag(group).await != Some(0) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    true
}

struct Outcome {
    out: Vec<ConsumerRecord>,
    dlq: Vec<ConsumerRecord>,
}

async fn outcome(topic: &str) -> Outcome {
    let mut out = read_all(&format!("{topic}-out")).await;
    out.sort_by_key(|r| (r.partition, r.offset));
    Outcome {
        out,
        dlq: read_all(&format!("{topic}-dlt")).await,
    }
}

/// The copies of each id in the output and the DLQ.
fn copies(o: &Outcome) -> (HashMap<u64, usize>, HashMap<u64, usize>) {
    let mut out: HashMap<u64, usize> = HashMap::new();
    let mut dlq: HashMap<u64, usize> = HashMap::new();
    for r in &o.out {
        *out.entry(id_of(r)).or_default() += 1;
    }
    for r in &o.dlq {
        *dlq.entry(id_of(r)).or_default() += 1;
    }
    (out, dlq)
}

/// Each DLQ record names its original topic, partition and offset.
fn check_dlq_provenance(topic: &str, inputs: &[Input], dlq: &[ConsumerRecord]) {
    for r in dlq {
        let id = id_of(r) as usize;
        let p = Provenance::from_headers(&r.headers).expect("provenance headers");
        assert_eq!(p.topic, topic);
        assert_eq!(
            (p.partition, p.offset),
            (inputs[id].partition, inputs[id].offset),
            "id {id}"
        );
        assert!(
            matches!(inputs[id].kind, 1 | 2),
            "id {id} of kind {} in the DLQ",
            inputs[id].kind
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_100k_exactly_once_in_output_or_dlq() {
    let topic = unique("pipe100k");
    let group = unique("pipe100k-g");
    let n = 100_000u64;
    let inputs = dataset(&topic, n).await;
    let mut p = start_pipeline(&topic, &group, 0);
    let t = topic.clone();
    wait_for(
        &mut p,
        "output + DLQ to hold every record",
        Duration::from_secs(240),
        async || {
            end_sum(&format!("{t}-out")).await + end_sum(&format!("{t}-dlt")).await >= n as i64
        },
    )
    .await;
    let g = group.clone();
    wait_for(
        &mut p,
        "the group to commit everything",
        Duration::from_secs(60),
        async || drained(&g).await,
    )
    .await;
    let (code, summary, stderr) = p.stop();
    assert_eq!(code, 0, "graceful exit on SIGTERM: {stderr}");

    let o = outcome(&topic).await;
    let (out, dlq) = copies(&o);
    let bad = inputs.iter().filter(|i| i.kind == 1).count();
    let always = inputs.iter().filter(|i| i.kind == 2).count();
    assert_eq!(o.dlq.len(), bad + always, "DLQ count");
    assert_eq!(o.out.len(), n as usize - bad - always, "output count");
    for (id, input) in inputs.iter().enumerate() {
        let id = id as u64;
        let (in_out, in_dlq) = (
            out.get(&id).copied().unwrap_or(0),
            dlq.get(&id).copied().unwrap_or(0),
        );
        assert_eq!(
            in_out + in_dlq,
            1,
            "id {id} ({input:?}): {in_out} in output, {in_dlq} in DLQ"
        );
    }
    check_dlq_provenance(&topic, &inputs, &o.dlq);
    // Per-key order in the output is the input order; attempts as expected.
    let mut last: HashMap<&str, u64> = HashMap::new();
    for r in &o.out {
        let input = &inputs[id_of(r) as usize];
        if let Some(prev) = last.insert(&input.key, input.seq) {
            assert!(
                prev < input.seq,
                "{}: seq {} after {prev}",
                input.key,
                input.seq
            );
        }
        let attempts = headers::first(&r.headers, "attempts").unwrap();
        assert_eq!(
            &attempts[..],
            (input.fail + 1).to_string().as_bytes(),
            "{input:?}"
        );
    }
    // The JSON summary counts the same.
    assert_eq!(
        summary["processed"],
        serde_json::json!(n as usize - bad - always),
        "{summary}"
    );
    assert_eq!(summary["dead_lettered"], serde_json::json!(bad + always));
    assert_eq!(summary["fatal"], serde_json::json!(bad));
    let tiers = summary["tiers"].as_array().unwrap();
    for t in tiers {
        assert_eq!(t["forwarded"], serde_json::json!(always), "{t}");
        assert_eq!(t["early"], serde_json::json!(0));
        eprintln!(
            "{}: lateness p50 {} ms, p99 {} ms, max {} ms",
            t["topic"], t["lateness_ms_p50"], t["lateness_ms_p99"], t["lateness_ms_max"]
        );
    }
    // One log line per retry and per dead letter.
    let retries = stderr.lines().filter(|l| l.starts_with("retry ")).count() as u64;
    let dead = stderr
        .lines()
        .filter(|l| l.starts_with("dead letter "))
        .count();
    assert_eq!(dead, bad + always);
    let in_place: u64 = inputs.iter().map(|i| i.fail).sum::<u64>() + 2 * always as u64;
    assert_eq!(summary["retried"], serde_json::json!(in_place));
    assert_eq!(
        retries,
        in_place + 2 * always as u64,
        "in place, then one per tier"
    );
}

/// What a group had committed: complete offsets per partition (below the
/// committed offset, or in its offset map).
type Committed = BTreeMap<TopicPartition, (i64, OffsetMap)>;

async fn committed(group: &str, topics: &[String]) -> Committed {
    let a = admin().await;
    let mut tps = Vec::new();
    for t in topics {
        if let Ok(d) = a.describe_topic(t).await {
            tps.extend(
                d.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t, p.partition)),
            );
        }
    }
    let c = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .build()
        .await
        .unwrap();
    let found = c.committed_with_metadata(&tps).await.unwrap();
    c.close().await;
    found
        .into_iter()
        .filter_map(|(tp, o)| {
            let o = o?;
            let map = OffsetMap::decode(&o.metadata, o.offset, None).expect("our map");
            Some((tp, (o.offset, map)))
        })
        .collect()
}

fn is_committed(c: &Committed, tp: &TopicPartition, offset: i64) -> bool {
    c.get(tp)
        .is_some_and(|(at, map)| offset < *at || map.contains(offset))
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_killed_twice_loses_nothing() {
    let topic = unique("pipekill");
    let group = unique("pipekill-g");
    let n = 100_000u64;
    let inputs = dataset(&topic, n).await;
    let all_topics = vec![
        topic.clone(),
        format!("{topic}-retry-1000"),
        format!("{topic}-retry-2000"),
    ];
    let mut snapshots = Vec::new();
    for (run, at) in [(0, 30_000i64), (1, 60_000)] {
        let mut p = start_pipeline(&topic, &group, run);
        let t = topic.clone();
        wait_for(
            &mut p,
            "progress before the kill",
            Duration::from_secs(240),
            async || end_sum(&format!("{t}-out")).await + end_sum(&format!("{t}-dlt")).await >= at,
        )
        .await;
        p.kill9();
        snapshots.push(committed(&group, &all_topics).await);
    }
    let mut p = start_pipeline(&topic, &group, 2);
    let g = group.clone();
    wait_for(
        &mut p,
        "everything committed after restarts",
        Duration::from_secs(240),
        async || drained(&g).await,
    )
    .await;
    let (code, _, stderr) = p.stop();
    assert_eq!(code, 0, "{stderr}");

    let o = outcome(&topic).await;
    let (out, dlq) = copies(&o);
    check_dlq_provenance(&topic, &inputs, &o.dlq);
    // Where each id was consumed: its source record and its tier copies.
    let mut places: HashMap<u64, Vec<(TopicPartition, i64)>> = HashMap::new();
    for (id, i) in inputs.iter().enumerate() {
        places
            .entry(id as u64)
            .or_default()
            .push((TopicPartition::new(&topic, i.partition), i.offset));
    }
    for t in &all_topics[1..] {
        for r in read_all(t).await {
            places
                .entry(id_of(&r))
                .or_default()
                .push((TopicPartition::new(t, r.partition), r.offset));
        }
    }
    let mut duplicated = 0;
    for (id, input) in inputs.iter().enumerate() {
        let id = id as u64;
        let copies = out.get(&id).copied().unwrap_or(0) + dlq.get(&id).copied().unwrap_or(0);
        assert!(copies >= 1, "id {id} lost ({input:?})");
        if matches!(input.kind, 1 | 2) {
            assert_eq!(
                out.get(&id),
                None,
                "id {id} of kind {} in the output",
                input.kind
            );
        } else {
            assert_eq!(
                dlq.get(&id),
                None,
                "id {id} of kind {} in the DLQ",
                input.kind
            );
        }
        if copies > 1 {
            duplicated += copies - 1;
            // Redone only if, at some kill, one of its places was not committed.
            let redoable = snapshots
                .iter()
                .any(|s| places[&id].iter().any(|(tp, o)| !is_committed(s, tp, *o)));
            assert!(
                redoable,
                "id {id} duplicated though committed complete at every kill"
            );
        }
    }
    eprintln!("after two SIGKILLs: 0 lost, {duplicated} duplicates (all uncommitted at a kill)");
}

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"))
        .args(["--bootstrap", &bootstrap()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn counts(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("`{stdout}`: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_replay_twice_replays_once() {
    let topic = unique("replay");
    let group = unique("replay-g");
    let a = admin().await;
    a.create_topic(NewTopic::new(&topic, 2, 1)).await.unwrap();
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    for i in 0..12 {
        let v = if i < 10 {
            format!(r#"{{"id":{i},"bad":true}}"#)
        } else {
            format!(r#"{{"id":{i}}}"#)
        };
        p.send(
            ProducerRecord::new(&topic)
                .key(format!("k{}", i % 3))
                .value(v),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    p.close(Duration::from_secs(5)).await;
    let dlt = format!("{topic}-dlt");
    let mut proc = start_pipeline(&topic, &group, 0);
    let d = dlt.clone();
    wait_for(
        &mut proc,
        "10 dead letters",
        Duration::from_secs(60),
        async || end_sum(&d).await == 10,
    )
    .await;
    let (code, _, err) = proc.stop();
    assert_eq!(code, 0, "{err}");
    let before = end_sum(&topic).await;

    let k1 = read_all(&dlt)
        .await
        .iter()
        .filter(|r| r.key.as_deref() == Some(&b"k1"[..]))
        .count() as u64;
    let (code, out, err) = run_cli(&[
        "dlq",
        "replay",
        "--topic",
        &dlt,
        "--dry-run",
        "--filter-key",
        "k1",
    ]);
    assert_eq!(code, 0, "{err}");
    let c = counts(&out);
    assert_eq!(
        (c["replayed"].as_u64(), c["filtered"].as_u64()),
        (Some(k1), Some(10 - k1)),
        "{out}"
    );
    let (_, out, _) = run_cli(&[
        "dlq",
        "replay",
        "--topic",
        &dlt,
        "--since",
        "1h",
        "--dry-run",
    ]);
    assert_eq!(counts(&out)["replayed"], 10, "{out}");
    let elsewhere = unique("replay-to");
    let (_, out, _) = run_cli(&[
        "dlq",
        "replay",
        "--topic",
        &dlt,
        "--to",
        &elsewhere,
        "--dry-run",
    ]);
    assert_eq!(counts(&out)["replayed"], 10, "{out}");
    assert_eq!(end_sum(&topic).await, before, "a dry run sends nothing");

    let (code, out, err) = run_cli(&["dlq", "replay", "--topic", &dlt, "--rate", "50"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&out)["replayed"], 10, "{out}");
    assert!(err.contains("replayed 10"), "{err}");
    assert_eq!(end_sum(&topic).await, before + 10);
    let (code, out, err) = run_cli(&["dlq", "replay", "--topic", &dlt]);
    assert_eq!(code, 0, "{err}");
    let c = counts(&out);
    assert_eq!(
        (c["replayed"].as_u64(), c["already_replayed"].as_u64()),
        (Some(0), Some(10)),
        "{out}"
    );
    assert_eq!(
        end_sum(&topic).await,
        before + 10,
        "the rerun replays nothing"
    );

    // The replays went back where they came from, each naming its dead letter.
    let source = read_all(&topic).await;
    let replays: Vec<_> = source
        .iter()
        .filter(|r| headers::first(&r.headers, headers::names::REPLAY_ID).is_some())
        .collect();
    assert_eq!(replays.len(), 10);
    let ids: HashSet<_> = replays
        .iter()
        .map(|r| {
            headers::first(&r.headers, headers::names::REPLAY_ID)
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), 10);
    for r in replays {
        let p = Provenance::from_headers(&r.headers).unwrap();
        assert_eq!(
            (p.topic.as_str(), p.partition),
            (topic.as_str(), r.partition)
        );
        assert!(headers::first(&r.headers, headers::names::EXCEPTION_FQCN).is_none());
    }
}
