//! `kafka-ingest topics|produce|consume|groups` run as processes against the
//! harness broker (`scripts/harness up`).

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn topics_produce_consume_and_groups() {
    let topic = unique("cli");
    must(
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    );
    let (code, _, err) = run(&["topics", "create", &topic, "--partitions", "3"], "");
    assert_eq!(code, 1, "exists: non-zero exit");
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("TopicAlreadyExists"), "{err}");
    assert!(must(&["topics", "list"], "")
        .lines()
        .any(|l| l.starts_with(&format!("{topic}\t"))));

    let input: String = (0..30)
        .map(|i| format!("key{}|value {i}\n", i % 5))
        .collect::<String>()
        + "no key here\n";
    let (code, _, err) = run(
        &[
            "produce",
            "-t",
            &topic,
            "-K",
            "|",
            "-H",
            "source=cli",
            "-H",
            "run=1",
            "--compression",
            "zstd",
        ],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("produced 31 records to {topic}")),
        "{err}"
    );
    let desc = must(&["topics", "describe", &topic], "");
    let latest: i64 = desc
        .lines()
        .filter_map(|l| l.split("Latest: ").nth(1))
        .map(|v| v.trim().parse::<i64>().unwrap())
        .sum();
    assert_eq!(latest, 31, "{desc}");
    assert!(
        desc.contains("Leader: ") && desc.contains("Isr: "),
        "{desc}"
    );

    let group = unique("cli-g");
    let out = must(
        &[
            "consume",
            "-t",
            &topic,
            "-g",
            &group,
            "--from-beginning",
            "--max-messages",
            "31",
            "-f",
            "%k|%v|%h|%p|%o",
        ],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 31);
    assert!(
        lines.iter().all(|l| l.contains("|source=cli,run=1|")),
        "{out}"
    );
    assert!(
        lines.contains(&"|no key here|source=cli,run=1|0|0")
            || lines.iter().any(|l| l.starts_with("|no key here|"))
    );
    let groups = must(&["groups", "describe", &group], "");
    let lag: i64 = groups
        .lines()
        .filter(|l| l.starts_with(&format!("{topic}\t")))
        .map(|l| l.split('\t').nth(4).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(lag, 0, "committed everything it printed:\n{groups}");
    assert!(
        groups.contains("Members: 0"),
        "left the group on exit:\n{groups}"
    );

    must(&["topics", "delete", &topic], "");
    let (code, _, err) = run(&["topics", "describe", &topic], "");
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    let (code, _, err) = run(
        &[
            "-X",
            "bootstrap.servers=127.0.0.1:1",
            "-X",
            "default.api.timeout.ms=1500",
            "topics",
            "list",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let (code, _, err) = run(&["-X", "no.such.key=1", "topics", "list"], "");
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("no.such.key"), "{err}");
    let (code, _, err) = run(&["produce", "-t", "x", "--partition", "99"], "v\n");
    assert_ne!(code, 0, "{err}");
}

#[cfg(unix)]
#[test]
fn sigint_commits_and_leaves() {
    let topic = unique("cli-int");
    must(&["topics", "create", &topic, "--partitions", "2"], "");
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    must(&["produce", "-t", &topic], &input);
    let group = unique("cli-int-g");
    let mut child = Running::spawn(
        &mut cmd(&["consume", "-t", &topic, "-g", &group, "--from-beginning"]),
        false,
    );
    // Wait until all ten are printed and committed, then interrupt.
    let start = Instant::now();
    loop {
        // The group does not exist until the consumer joins.
        let (_, g, _) = run(&["groups", "describe", &group], "");
        let committed: i64 = g
            .lines()
            .filter(|l| l.starts_with(&format!("{topic}\t")))
            .filter_map(|l| l.split('\t').nth(2).and_then(|c| c.parse::<i64>().ok()))
            .sum();
        if committed == 10 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "consumer never committed: {g}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(child.child(), "-INT");
    let out = child.finish("consume", Duration::from_secs(30));
    assert_eq!(out.code, 130, "exit code of SIGINT: {}", out.stderr);
    assert_eq!(out.text().lines().count(), 10);
    let g = must(&["groups", "describe", &group], "");
    assert!(g.contains("Members: 0"), "left the group:\n{g}");
}

#[test]
fn perf_produce_then_consume_assigned_and_as_group() {
    let topic = topic("cli-perf", 3);
    let out = must(
        &[
            "perf",
            "produce",
            "-t",
            &topic,
            "--num-records",
            "3000",
            "--record-size",
            "100",
            "--producer-prop",
            "linger.ms=5",
        ],
        "",
    );
    assert!(out.starts_with("3000 records sent, "), "{out}");
    assert_eq!(latest_total(&topic), 3000);

    let out = must(
        &["perf", "consume", "-t", &topic, "--num-records", "3000"],
        "",
    );
    assert!(out.starts_with("3000 records consumed in "), "{out}");

    // Through a group: subscribe from earliest, commit on close.
    let group = unique("cli-perf-g");
    let out = must(
        &[
            "perf",
            "consume",
            "-t",
            &topic,
            "--group",
            &group,
            "--num-records",
            "3000",
        ],
        "",
    );
    assert!(out.starts_with("3000 records consumed in "), "{out}");
    let g = must(&["groups", "describe", &group], "");
    let committed: i64 = g
        .lines()
        .filter(|l| l.starts_with(&format!("{topic}\t")))
        .filter_map(|l| l.split('\t').nth(2).and_then(|c| c.parse::<i64>().ok()))
        .sum();
    assert_eq!(committed, 3000, "the group read every record:\n{g}");
}
