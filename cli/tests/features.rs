//! kcat's produce/consume features of issue 14 against the real broker,
//! checked with librdkafka (tests/peers/dump_topic.py) where bytes matter.

mod support;

use std::time::Duration;

use support::*;

/// Every record of `topic` as librdkafka reads it (JSON, bytes in hex).
fn dump(topic: &str, count: usize) -> Vec<serde_json::Value> {
    let mut c = std::process::Command::new(peer_python());
    c.arg(repo().join("tests/peers/dump_topic.py")).args([
        "--bootstrap",
        &bootstrap(),
        "--topic",
        topic,
        "--count",
        &count.to_string(),
    ]);
    let o = run_cmd_with(c, b"", Duration::from_secs(60));
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn partitions_offsets_and_exit_at_end() {
    let t = topic("offs", 2);
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    must(&["produce", "-t", &t, "-p", "1"], &input);
    must(&["produce", "-t", &t, "-p", "0"], "p0\n");
    let c = |extra: &[&str]| {
        let mut a = vec!["consume", "-t", &t, "-e", "-f", "%p:%o:%v"];
        a.extend_from_slice(extra);
        must(&a, "")
    };
    assert_eq!(c(&["-p", "1", "-o", "beginning"]).lines().count(), 10);
    assert_eq!(c(&["-p", "1", "-o", "7"]), "1:7:7\n1:8:8\n1:9:9\n");
    assert_eq!(c(&["-p", "1", "-o", "-2"]), "1:8:8\n1:9:9\n");
    assert_eq!(c(&["-p", "1", "-o", "end"]), "");
    let both = c(&["-o", "-1"]);
    assert!(
        both.contains("0:0:p0\n") && both.contains("1:9:9\n") && both.lines().count() == 2,
        "{both}"
    );
    // By time: nothing at or after a future time; everything after the epoch.
    assert_eq!(c(&["-p", "1", "-o", "@4102444800000"]), "");
    assert_eq!(
        c(&["-p", "1", "-o", "@1970-01-01T00:00:00Z"])
            .lines()
            .count(),
        10
    );
    let (code, _, err) = sh_run(&format!("consume -t {t} -p 5 -e"));
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("partition {t}-5 does not exist")),
        "{err}"
    );
}

#[test]
fn several_topics_json_headers_and_key_schema() {
    let a = topic("multi-a", 1);
    let b = topic("multi-b", 1);
    must(
        &["produce", "-t", &a, "--parse-headers", "-K", "|"],
        "h1:x,h2:y\tk1|v1\n\tk2|v2\n",
    );
    let key_schema = std::env::temp_dir().join(unique("key.avsc"));
    std::fs::write(&key_schema, "\"string\"").unwrap();
    let ks = key_schema.display().to_string();
    let v1 = schema_file("ingest_event_v1");
    let value = r#"{"event_id": 7, "timestamp": 1.5, "status": "ok", "data": {"sensor": "s1", "value": 2.5}}"#;
    must(
        &[
            "produce",
            "-t",
            &b,
            "-K",
            "\t",
            "--key-schema",
            &ks,
            "--value-schema",
            &v1,
        ],
        &format!("\"sensor-1\"\t{value}\n"),
    );
    // librdkafka sees the headers, and the key and value in the Confluent wire format.
    let got = dump(&a, 2);
    assert_eq!(
        got[0]["headers"],
        serde_json::json!([["h1", hex(b"x")], ["h2", hex(b"y")]])
    );
    assert_eq!(got[1]["headers"], serde_json::json!([]));
    assert_eq!(got[0]["key"], hex(b"k1"));
    let avro = dump(&b, 1);
    let key = avro[0]["key"].as_str().unwrap();
    assert!(
        key.starts_with("00") && key.len() > 10,
        "magic byte and schema id: {key}"
    );

    let (code, out, err) = sh_run(&format!("consume -t {a} -t {b} -o beginning -e --json --key-schema {ks} --value-schema {v1} --on-error skip"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        err.contains(&format!("{a}-0@0")) && err.contains("2 records could not be decoded"),
        "{err}"
    );
    let from_b = lines
        .iter()
        .find(|l| l["topic"] == b.as_str())
        .expect("b's record");
    assert_eq!(from_b["key"], "sensor-1");
    assert_eq!(from_b["value"]["event_id"], 7);
    assert!(
        from_b["timestamp"].as_i64().unwrap() > 0
            && from_b["offset"] == 0
            && from_b["partition"] == 0
    );
    // a's records are not Avro: with --on-error skip they are reported, not printed.
    let plain = sh(&format!("consume -t {a} -o beginning -e --json"));
    let first: serde_json::Value = serde_json::from_str(plain.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["headers"],
        serde_json::json!([{"key": "h1", "value": "x"}, {"key": "h2", "value": "y"}])
    );
    assert_eq!(first["key"], "k1");
    assert_eq!(first["value"], "v1");
}

/// `consume --pattern`: a topic created later is picked up on the next
/// metadata refresh, and added partitions are assigned after a rejoin.
#[test]
fn pattern_subscription_follows_new_topics_and_partitions() {
    let prefix = unique("pat");
    let first = format!("{prefix}-1");
    must(&["topics", "create", &first], "");
    must(&["produce", "-t", &first], "one\n");
    let g = unique("pat-g");
    let pattern = format!("{prefix}-.*");
    let child = Running::spawn(
        &mut cmd(&[
            "consume",
            "--pattern",
            &pattern,
            "-g",
            &g,
            "--from-beginning",
            "--max-messages",
            "3",
            "-X",
            "metadata.max.age.ms=1000",
            "-f",
            "%t %v",
        ]),
        false,
    );
    let committed = |topic: &str| {
        // Before the first commit the group does not exist yet.
        let (_, out, _) = run(&["groups", "describe", &g], "");
        out.lines()
            .filter(|l| l.starts_with(&format!("{topic}\t")))
            .filter_map(|l| l.split('\t').nth(2).and_then(|c| c.parse::<i64>().ok()))
            .sum::<i64>()
    };
    eventually(
        "the first record is consumed",
        Duration::from_secs(60),
        || (committed(&first) == 1).then_some(()),
    );
    let second = format!("{prefix}-2");
    must(&["topics", "create", &second], "");
    must(&["produce", "-t", &second], "two\n");
    eventually(
        "the new topic is picked up",
        Duration::from_secs(60),
        || (committed(&second) == 1).then_some(()),
    );
    sh(&format!("topics add-partitions {second} --partitions 2"));
    must(&["produce", "-t", &second, "-p", "1"], "three\n");
    let o = child.finish("consume --pattern", Duration::from_secs(60));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let out = o.text();
    assert!(
        out.contains(&format!("{first} one"))
            && out.contains(&format!("{second} two"))
            && out.contains(&format!("{second} three")),
        "{out}"
    );
}
