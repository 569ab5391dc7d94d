//! The admin commands of issue 14, each checked against what a peer sees:
//! Kafka 4.1.1's Java tools (`scripts/harness tool`) or librdkafka.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

fn java_configs(entity_type: &str, name: &str) -> String {
    java(
        "kafka.admin.ConfigCommand",
        &[
            "--bootstrap-server",
            &bootstrap(),
            "--describe",
            "--entity-type",
            entity_type,
            "--entity-name",
            name,
        ],
    )
}

/// Committed offset per partition as Java's ConsumerGroupCommand shows it.
fn java_group_offsets(group: &str) -> BTreeMap<i32, String> {
    let out = java(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            &bootstrap(),
            "--describe",
            "--group",
            group,
        ],
    );
    out.lines()
        .filter(|l| l.starts_with(group))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].parse().unwrap(), f[3].to_owned())
        })
        .collect()
}

/// Committed offset per partition as `groups describe` shows it.
fn our_offsets(group: &str, topic: &str) -> BTreeMap<i32, String> {
    must(&["groups", "describe", group], "")
        .lines()
        .filter(|l| l.starts_with(&format!("{topic}\t")))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].parse().unwrap(), f[2].to_owned())
        })
        .collect()
}

fn offsets(pairs: &[(i32, &str)]) -> BTreeMap<i32, String> {
    pairs.iter().map(|(p, o)| (*p, o.to_string())).collect()
}

#[test]
fn topic_and_broker_configs_round_trip_with_java() {
    let t = topic("cfg", 1);
    sh(&format!(
        "configs alter --topic {t} --set retention.ms=1000 --set cleanup.policy=compact"
    ));
    let j = java_configs("topics", &t);
    assert!(
        j.contains("retention.ms=1000") && j.contains("cleanup.policy=compact"),
        "{j}"
    );
    sh(&format!(
        "configs alter --topic {t} --delete cleanup.policy"
    ));
    let j = java_configs("topics", &t);
    assert!(
        j.contains("retention.ms=1000") && !j.contains("cleanup.policy"),
        "{j}"
    );
    let ours = sh(&format!("configs describe --topic {t}"));
    assert!(
        ours.contains("retention.ms=1000\tDYNAMIC_TOPIC_CONFIG"),
        "{ours}"
    );
    assert!(
        !ours.contains("segment.bytes"),
        "defaults only with --all: {ours}"
    );
    assert!(sh(&format!("configs describe --topic {t} --all")).contains("segment.bytes="));

    // A broker's dynamic config: set, seen by Java, removed.
    let broker = must(&["metadata"], "")
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("broker ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("a broker");
    sh(&format!(
        "configs alter --broker {broker} --set log.cleaner.backoff.ms=15001"
    ));
    let j = java_configs("brokers", &broker);
    assert!(j.contains("log.cleaner.backoff.ms=15001"), "{j}");
    let ours = sh(&format!("configs describe --broker {broker}"));
    assert!(
        ours.contains("log.cleaner.backoff.ms=15001\tDYNAMIC_BROKER_CONFIG"),
        "{ours}"
    );
    assert!(ours.contains(&format!("broker.id={broker}")), "{ours}");
    sh(&format!(
        "configs alter --broker {broker} --delete log.cleaner.backoff.ms"
    ));
    assert!(!java_configs("brokers", &broker).contains("log.cleaner.backoff.ms"));
    let (code, _, err) = sh_run(&format!("configs alter --topic {t} --set no.such.config=1"));
    assert_eq!(code, 1);
    assert!(
        err.contains("no.such.config") || err.contains("InvalidConfig"),
        "{err}"
    );
}

#[test]
fn client_quotas_round_trip_with_java() {
    let client = unique("quota-client");
    sh(&format!(
        "configs alter --client {client} --set producer_byte_rate=1048576"
    ));
    let j = java_configs("clients", &client);
    assert!(j.contains("producer_byte_rate=1048576.0"), "{j}");
    java(
        "kafka.admin.ConfigCommand",
        &[
            "--bootstrap-server",
            &bootstrap(),
            "--alter",
            "--entity-type",
            "clients",
            "--entity-name",
            &client,
            "--add-config",
            "consumer_byte_rate=2048",
        ],
    );
    let ours = sh(&format!("configs describe --client {client}"));
    assert!(
        ours.contains("producer_byte_rate=1048576.0") && ours.contains("consumer_byte_rate=2048.0"),
        "{ours}"
    );
    sh(&format!(
        "configs alter --client {client} --delete producer_byte_rate --delete consumer_byte_rate"
    ));
    let j = java_configs("clients", &client);
    assert!(!j.contains("byte_rate"), "{j}");
}

#[test]
fn add_partitions_and_truncate_are_seen_by_java() {
    let t = topic("grow", 1);
    sh(&format!("topics add-partitions {t} --partitions 3"));
    let j = java(
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &bootstrap(),
            "--describe",
            "--topic",
            &t,
        ],
    );
    assert!(j.contains("PartitionCount: 3"), "{j}");
    assert!(must(&["metadata", "-t", &t], "").contains(&format!("topic \"{t}\" with 3 partitions")));
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    must(&["produce", "-t", &t, "-p", "2"], &input);
    let out = sh(&format!("topics truncate {t} -p 2 --before 4"));
    assert!(out.contains(&format!("{t}\t2\tlow watermark 4")), "{out}");
    let j = java(
        "org.apache.kafka.tools.GetOffsetShell",
        &[
            "--bootstrap-server",
            &bootstrap(),
            "--topic",
            &t,
            "--time",
            "-2",
        ],
    );
    assert!(j.lines().any(|l| l == format!("{t}:2:4")), "{j}");
    // Lowering the count is Kafka's error, reported in one line.
    let (code, _, err) = sh_run(&format!("topics add-partitions {t} --partitions 2"));
    assert_eq!(code, 1);
    assert!(err.contains("InvalidPartitions"), "{err}");
}

#[test]
fn groups_list_reset_delete_match_java() {
    let t = topic("reset", 2);
    let input: String = (0..20).map(|i| format!("k{i}|{i}\n")).collect();
    must(&["produce", "-t", &t, "-K", "|"], &input);
    let g = unique("reset-g");
    sh(&format!(
        "consume -t {t} -g {g} --from-beginning --max-messages 20"
    ));
    let ends = our_offsets(&g, &t);
    assert_eq!(
        ends.values()
            .map(|o| o.parse::<i64>().unwrap())
            .sum::<i64>(),
        20,
        "{ends:?}"
    );
    let list = must(&["groups", "list"], "");
    assert!(
        list.lines()
            .any(|l| l == format!("{g}\tclassic\tEmpty\tconsumer")),
        "{list}"
    );

    // Dry run by default: nothing changes.
    let plan = sh(&format!(
        "groups reset-offsets --group {g} --topic {t} --to-earliest"
    ));
    assert!(plan.contains(&format!("{g}\t{t}\t0\t0")), "{plan}");
    assert_eq!(our_offsets(&g, &t), ends);

    sh(&format!(
        "groups reset-offsets --group {g} --topic {t} --to-earliest --execute"
    ));
    assert_eq!(java_group_offsets(&g), offsets(&[(0, "0"), (1, "0")]));
    sh(&format!(
        "groups reset-offsets --group {g} --topic {t}:1 --to-offset 3 --execute"
    ));
    sh(&format!(
        "groups reset-offsets --group {g} --topic {t}:1 --shift-by -1 --execute"
    ));
    assert_eq!(our_offsets(&g, &t), offsets(&[(0, "0"), (1, "2")]));
    sh(&format!(
        "groups reset-offsets --group {g} --all-topics --to-latest --execute"
    ));
    assert_eq!(our_offsets(&g, &t), ends);
    // Everything was written in the last hour: back to the start; a future time is the end.
    sh(&format!(
        "groups reset-offsets --group {g} --topic {t} --by-duration PT1H --execute"
    ));
    assert_eq!(java_group_offsets(&g), offsets(&[(0, "0"), (1, "0")]));
    sh(&format!(
        "groups reset-offsets --group {g} --topic {t} --to-datetime 2999-01-01T00:00:00Z --execute"
    ));
    assert_eq!(our_offsets(&g, &t), ends);

    sh(&format!("groups delete-offsets --group {g} --topic {t}:0"));
    let j = java_group_offsets(&g);
    assert_eq!(j.get(&0).map(String::as_str), None, "{j:?}");
    must(&["groups", "delete", &g], "");
    let j = java(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", &bootstrap(), "--list"],
    );
    assert!(!j.lines().any(|l| l.trim() == g), "deleted: {j}");
    let (code, _, err) = run(&["groups", "describe", &g], "");
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("group `{g}` does not exist")),
        "{err}"
    );
}

/// Defect 11: a KIP-848 group (librdkafka, group.protocol=consumer) is
/// described with its members; an active group cannot be reset; a missing
/// group is an error.
#[test]
fn consumer_protocol_groups_are_described() {
    let t = topic("k848", 2);
    must(&["produce", "-t", &t], "a\nb\nc\n");
    let g = unique("k848-g");
    let mut member = librdkafka(&[
        "member",
        "--topic",
        &t,
        "--group",
        &g,
        "--seconds",
        "25",
        "--protocol",
        "consumer",
    ]);
    let mut child = Running::spawn(&mut member, false);
    let described = eventually("the member joins", Duration::from_secs(40), || {
        let (code, out, _) = run(&["groups", "describe", &g], "");
        (code == 0 && out.contains("Members: 1") && out.contains("Partitions: ")).then_some(out)
    });
    assert!(
        described.contains("Type: consumer") && described.contains("State: Stable"),
        "{described}"
    );
    assert!(
        described.contains(&format!("{t}-0")) && described.contains(&format!("{t}-1")),
        "{described}"
    );
    let all = must(&["groups", "describe", "--all"], "");
    assert!(
        all.contains(&format!("Group: {g}\tType: consumer")),
        "{all}"
    );
    let (code, _, err) = sh_run(&format!(
        "groups reset-offsets --group {g} --topic {t} --to-earliest --execute"
    ));
    assert_eq!(code, 1);
    assert!(err.contains("inactive"), "{err}");
    signal(child.child(), "-TERM");
    let _ = child.finish("librdkafka member", Duration::from_secs(30));
    let (code, _, err) = run(&["groups", "describe", &unique("no-such-group")], "");
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}
