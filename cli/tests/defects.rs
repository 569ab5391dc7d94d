//! Issue 14's CLI defects 1–12, each against the real broker and registry
//! (`scripts/harness up`). Every run is bounded (support::LIMIT).

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::*;

fn write_file(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(unique(name));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Defect 1: built-in defaults < config file < environment < flags and -X
/// in command-line order; flags with defaults hide nothing; contradictions fail.
#[test]
fn settings_follow_javas_precedence_and_command_line_order() {
    let t = topic("d1", 1);
    let produce = |extra: &[&str]| {
        let mut args = vec!["produce", "-t", &t];
        args.extend_from_slice(extra);
        must(&args, "x\n");
    };
    produce(&["-X", "compression.type=snappy"]);
    produce(&["-X", "compression.type=snappy", "--compression", "lz4"]);
    produce(&["--compression", "lz4", "-X", "compression.type=gzip"]);
    produce(&["-X", "acks=0"]);
    let b = batches(&t, 0);
    assert_eq!(b.len(), 4, "{b:#?}");
    assert!(b[0].contains("compresscodec: snappy"), "{}", b[0]);
    assert!(b[1].contains("compresscodec: lz4"), "{}", b[1]);
    assert!(b[2].contains("compresscodec: gzip"), "{}", b[2]);
    assert!(
        b[0].contains("producerId: ") && !b[0].contains("producerId: -1"),
        "idempotent by default: {}",
        b[0]
    );
    assert!(
        b[3].contains("producerId: -1"),
        "acks=0 is not idempotent: {}",
        b[3]
    );

    let (code, _, err) = run(
        &[
            "produce",
            "-t",
            &t,
            "--acks",
            "1",
            "-X",
            "enable.idempotence=true",
        ],
        "x\n",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("acks") && err.contains("enable.idempotence"),
        "{err}"
    );

    // The file's bootstrap.servers is used, the environment beats it, -b beats both.
    let dead = write_file(
        "dead.properties",
        "bootstrap.servers=127.0.0.1:1\ndefault.api.timeout.ms=1500\n",
    );
    let o = run_cmd(bare(&["--config-file", &dead, "topics", "list"]), b"");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("127.0.0.1:1"),
        "the file's servers: {}",
        o.stderr
    );
    let good = write_file(
        "good.properties",
        &format!("bootstrap.servers={}\n", bootstrap()),
    );
    let mut c = bare(&[
        "--config-file",
        &good,
        "-X",
        "default.api.timeout.ms=1500",
        "topics",
        "list",
    ]);
    c.env("KAFKA_BOOTSTRAP", "127.0.0.1:1");
    let o = run_cmd(c, b"");
    assert!(
        o.code == 1 && o.stderr.contains("127.0.0.1:1"),
        "environment over file: {}",
        o.stderr
    );
    let mut c = bare(&["--config-file", &dead, "-b", &bootstrap(), "topics", "list"]);
    c.env("KAFKA_BOOTSTRAP", "127.0.0.1:1");
    let o = run_cmd(c, b"");
    assert_eq!(o.code, 0, "-b over environment and file: {}", o.stderr);
    assert!(
        o.text().contains(&format!("{t}\t1 partition\n")),
        "{}",
        o.text()
    );
}

/// Defect 2 (and 12's exit code): SIGINT/SIGTERM stop an idle produce at
/// once, after flushing what was read; the exit code says so.
#[cfg(unix)]
#[test]
fn signals_stop_an_idle_produce_after_flushing() {
    let t = topic("d2", 1);
    for (sig, code, expected) in [("-INT", 130, 2), ("-TERM", 143, 4)] {
        let mut child = Running::spawn(&mut cmd(&["produce", "-t", &t]), true);
        let mut stdin = child.child().stdin.take().unwrap();
        stdin.write_all(b"a\nb\n").unwrap();
        stdin.flush().unwrap();
        // stdin stays open and idle: only the signal can end the run.
        eventually("records written", Duration::from_secs(30), || {
            (latest_total(&t) == expected).then_some(())
        });
        signal(child.child(), sig);
        let o = child.finish("produce", Duration::from_secs(15));
        drop(stdin);
        assert_eq!(o.code, code, "{sig}: {}", o.stderr);
        assert!(
            o.stderr.contains(&format!("produced 2 records to {t}")),
            "{}",
            o.stderr
        );
    }
}

/// Defect 3: every failing record is reported with its line number and
/// the rest is still produced; the summary counts exactly.
#[test]
fn produce_reports_each_failure_and_carries_on() {
    let t = unique("d3");
    sh(&format!(
        "topics create {t} --config max.message.bytes=2000"
    ));
    let big = "x".repeat(5000);
    let input = format!("one\ntwo\n{big}\nfour\n{big}\nsix\n");
    let (code, _, err) = run(&["produce", "-t", &t], &input);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 3:") && err.contains("line 5:"), "{err}");
    assert!(err.contains(&format!("produced 4 records to {t}")), "{err}");
    assert!(err.contains("failed: 2 records (lines 3, 5)"), "{err}");
    assert_eq!(latest_total(&t), 4);

    let (code, _, err) = run(&["produce", "-t", &t, "--stop-on-error"], &input);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("produced 2 records to {t}")), "{err}");
    assert!(err.contains("stopped at line 3"), "{err}");
    assert_eq!(latest_total(&t), 6, "nothing after line 3");

    // Invalid Avro is a per-line failure too.
    let v1 = schema_file("ingest_event_v1");
    let good = r#"{"event_id": 1, "timestamp": 1.5, "status": "ok", "data": {"sensor": "s1", "value": 2.5}}"#;
    let input = format!("{good}\n{{\"event_id\": \"nope\"}}\n{good}\n");
    let (code, _, err) = run(&["produce", "-t", &t, "--value-schema", &v1], &input);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 2: Avro value"), "{err}");
    assert!(err.contains("produced 2 records"), "{err}");
}

/// Defect 4: produce is binary-safe (any delimiter, hex, base64, files) and
/// a read error exits non-zero.
#[test]
fn produce_is_binary_safe() {
    let t = topic("d4", 1);
    let raw: &[u8] = b"k\xff|v\x00\xfe\x1ek2|\xc3\x28\x1e";
    let o = run_cmd(cmd(&["produce", "-t", &t, "-D", "\\x1e", "-K", "|"]), raw);
    assert_eq!(o.code, 0, "{}", o.stderr);
    must(
        &["produce", "-t", &t, "--format", "hex", "-K", ":"],
        "6b33:00ff\n",
    );
    must(&["produce", "-t", &t, "--format", "base64"], "AAEC/w==\n");
    let file = std::env::temp_dir().join(unique("value.bin"));
    std::fs::write(&file, b"line1\nline2\x00\xff").unwrap();
    must(
        &[
            "produce",
            "-t",
            &t,
            "--value-file",
            &file.display().to_string(),
        ],
        "",
    );
    let o = run_cmd(
        cmd(&["consume", "-t", &t, "-o", "beginning", "-e", "-f", "%k|%v"]),
        b"",
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let want: &[u8] =
        b"k\xff|v\x00\xfe\nk2|\xc3\x28\nk3|\x00\xff\n|\x00\x01\x02\xff\n|line1\nline2\x00\xff\n";
    assert_eq!(o.stdout, want, "{:?}", String::from_utf8_lossy(&o.stdout));

    // A directory as stdin: the read fails, and the exit code says so.
    let mut c = cmd(&["produce", "-t", &t]);
    c.stdin(std::fs::File::open(std::env::temp_dir()).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = finish(c.spawn().unwrap(), "produce", LIMIT);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("reading stdin"), "{}", o.stderr);
}

/// Defect 5: consumer keys work without -g; a shared file's keys of other
/// roles are ignored with a warning, unknown keys fail; Java's `key value`
/// and `key:value` lines parse.
#[test]
fn each_client_takes_its_own_keys() {
    let t = topic("d5", 1);
    must(&["produce", "-t", &t], "a\nb\n");
    let out = sh(&format!(
        "consume -t {t} -o beginning -e -X isolation.level=read_committed -X max.poll.records=1"
    ));
    assert_eq!(out, "a\nb\n");
    let shared = write_file(
        "client.properties",
        "acks all\nlinger.ms:5\nschema.registry.url=http://127.0.0.1:8081/apis/ccompat/v7\nmax.poll.records = 10\n",
    );
    let (code, out, err) = sh_run(&format!(
        "--config-file {shared} consume -t {t} -o beginning -e"
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "a\nb\n");
    let (code, _, err) = sh_run(&format!("--config-file {shared} topics list"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("warning:")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("acks (producer)") && err.contains("max.poll.records (consumer)"),
        "{err}"
    );
    let bad = write_file("bad.properties", "no.such.key=1\n");
    let (code, _, err) = sh_run(&format!("--config-file {bad} consume -t {t} -e"));
    assert_eq!(code, 2);
    assert!(
        err.contains("no.such.key") && err.contains("unknown"),
        "{err}"
    );
}

/// Defect 6: a property without `=` is an error naming the argument.
#[test]
fn malformed_properties_are_errors_naming_them() {
    let (code, _, err) = sh_run("-X linger.ms topics list");
    assert_eq!(code, 2);
    assert!(err.contains("-X") && err.contains("`linger.ms`"), "{err}");
    let (code, _, err) = sh_run("perf produce -t x --num-records 1 --producer-prop acks");
    assert_eq!(code, 2);
    assert!(
        err.contains("--producer-prop") && err.contains("`acks`"),
        "{err}"
    );
}

/// Defect 7: invalid topic names fail at once, locally.
#[test]
fn invalid_topic_names_fail_at_once() {
    let quick = Duration::from_secs(20);
    for args in [
        vec!["produce", "-t", "bad name"],
        vec!["consume", "-t", "bad/name", "-e"],
        vec!["topics", "create", "a..b:c"],
        vec!["topics", "describe", &"x".repeat(250)],
    ] {
        let o = run_cmd_with(cmd(&args), b"v\n", quick);
        assert_ne!(o.code, 0, "{args:?}");
        assert!(o.stderr.contains("is illegal"), "{args:?}: {}", o.stderr);
        assert_eq!(
            o.stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{}",
            o.stderr
        );
    }
}

/// Defect 8: on a terminal, an unreachable or non-Kafka server gets a
/// "still trying to reach" line after a few seconds; not when piped.
#[cfg(unix)]
#[test]
fn unreachable_servers_are_announced_on_a_terminal() {
    let exe = env!("CARGO_BIN_EXE_kafka-ingest");
    let line = format!("{exe} -b 127.0.0.1:1 -X default.api.timeout.ms=5000 topics list");
    // `script` gives the command a pseudo-terminal.
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env_remove("KAFKA_BOOTSTRAP");
    let o = run_cmd_with(c, b"", Duration::from_secs(60));
    let all = String::from_utf8_lossy(&o.stdout);
    assert!(all.contains("still trying to reach 127.0.0.1:1"), "{all}");
    assert!(all.contains("error: "), "{all}");

    // A server that is not Kafka (answers HTTP): the error says so.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut s in listener.incoming().take(50).flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let o = run_cmd_with(
        bare(&[
            "-b",
            &addr,
            "-X",
            "default.api.timeout.ms=5000",
            "topics",
            "list",
        ]),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(o.code, 1);
    assert!(
        !o.stderr.contains("still trying"),
        "not a terminal: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&addr) && o.stderr.to_lowercase().contains("protocol"),
        "{}",
        o.stderr
    );
}

/// Defect 9: schema commands take -X / --config-file; purge works on a
/// soft-deleted subject; HTML pages and 501s give one line at once; compat
/// explains why.
#[test]
fn schema_commands_take_settings_and_explain() {
    let subject = unique("d9-value");
    let v1 = schema_file("ingest_event_v1");
    let reg = registry_url();
    // -X wins over a wrong SCHEMA_REGISTRY_URL.
    let mut c = bare(&[
        "-X",
        &format!("schema.registry.url={reg}"),
        "schema",
        "register",
        "--subject",
        &subject,
        &v1,
    ]);
    c.env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1");
    let o = run_cmd(c, b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let file = write_file(
        "registry.properties",
        &format!("schema.registry.url={reg}\n"),
    );
    let mut c = bare(&[
        "--config-file",
        &file,
        "schema",
        "get",
        "--subject",
        &subject,
    ]);
    c.env_remove("SCHEMA_REGISTRY_URL");
    let o = run_cmd(c, b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.text().contains("IngestEvent"), "{}", o.text());
    let (_, _, err) = sh_run(&format!("-b 127.0.0.1:1 schema get --subject {subject}"));
    assert!(
        err.contains("warning:") && err.contains("bootstrap.servers"),
        "{err}"
    );

    // The registry explains an incompatible schema.
    sh(&format!(
        "schema config --subject {subject} --level BACKWARD"
    ));
    let bad = schema_file("ingest_event_incompatible");
    let (code, out, err) = sh_run(&format!("schema compat --subject {subject} {bad}"));
    assert_eq!(code, 1, "{err}");
    assert!(out.starts_with("incompatible\n"), "{out}");
    assert!(
        out.contains("new schema cannot read data written with version 1"),
        "{out}"
    );

    // Soft delete, then purge the soft-deleted subject.
    assert_eq!(
        sh(&format!("schema delete --subject {subject}")).trim(),
        "1"
    );
    let out = sh(&format!("schema delete --subject {subject} --permanent"));
    assert_eq!(out.trim(), "1");
    let (code, _, err) = sh_run(&format!("schema get --subject {subject}"));
    assert_ne!(code, 0, "purged: {err}");

    // A web server that is not a registry: an HTML 501, not retried, one line.
    let mut http = std::process::Command::new("python3")
        .args(["-m", "http.server", "0", "--bind", "127.0.0.1"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(http.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    let port = first
        .split("port ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let o = run_cmd_with(
        cmd(&[
            "schema",
            "--registry",
            &format!("http://127.0.0.1:{port}"),
            "register",
            "--subject",
            "s",
            &v1,
        ]),
        b"",
        Duration::from_secs(20),
    );
    let _ = http.kill();
    let _ = http.wait();
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("501") && !o.stderr.contains('<'),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}

/// Defect 10: a record that fails Avro decoding: stop (default), skip or
/// dead-letter it, naming partition and offset.
#[test]
fn consume_on_error_stop_skip_or_dlq() {
    let t = topic("d10", 1);
    let dlq = topic("d10-dlq", 1);
    let v1 = schema_file("ingest_event_v1");
    let good = r#"{"event_id": 1, "timestamp": 1.5, "status": "ok", "data": {"sensor": "s1", "value": 2.5}}"#;
    must(
        &["produce", "-t", &t, "--value-schema", &v1],
        &format!("{good}\n"),
    );
    must(&["produce", "-t", &t], "not avro\n");
    must(
        &["produce", "-t", &t, "--value-schema", &v1],
        &format!("{good}\n"),
    );
    let base = [
        "consume",
        "-t",
        &t,
        "-o",
        "beginning",
        "-e",
        "--value-schema",
        &v1,
    ];
    let (code, out, err) = run(&base, "");
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1, "stops at the bad record: {out}");
    assert!(err.contains(&format!("{t}-0@1")), "{err}");
    let mut skip = base.to_vec();
    skip.extend(["--on-error", "skip"]);
    let (code, out, err) = run(&skip, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains(&format!("{t}-0@1")) && err.contains("1 records could not be decoded"),
        "{err}"
    );
    let mut to_dlq = base.to_vec();
    let target = format!("dlq:{dlq}");
    to_dlq.extend(["--on-error", &target]);
    let (code, out, err) = run(&to_dlq, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2);
    let dead = sh(&format!("consume -t {dlq} -o beginning -e --json"));
    let v: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(v["value"], "not avro");
    let headers = v["headers"].to_string();
    assert!(
        headers.contains("kafka-ingest.offset") && headers.contains(&t),
        "{headers}"
    );
}

/// Defect 12: null vs empty keys (-Z), unknown %x rejected, "1 partition",
/// and help texts for every flag.
#[test]
fn null_markers_formats_and_help() {
    let t = topic("d12", 1);
    must(&["produce", "-t", &t, "-K", "|"], "|empty key\nnull key\n");
    let out = sh(&format!("consume -t {t} -o beginning -e -Z -f [%k]%v"));
    assert_eq!(out, "[]empty key\n[NULL]null key\n");
    let (code, _, err) = run(&["consume", "-t", &t, "-e", "-f", "%k %x"], "");
    assert_eq!(code, 1);
    assert!(err.contains("%x"), "{err}");
    assert!(must(&["topics", "list"], "").contains(&format!("{t}\t1 partition\n")));
    for (sub, flags) in [
        (
            vec!["topics", "create"],
            vec!["--partitions", "--replication-factor"],
        ),
        (vec!["produce"], vec!["--linger-ms", "--batch-size"]),
        (vec!["schema", "get"], vec!["--subject", "--id"]),
        (vec!["schema", "config"], vec!["--level"]),
        (vec!["schema", "delete"], vec!["--permanent"]),
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let help = must(&args, "");
        for f in flags {
            assert!(
                !help_of(&help, f).is_empty(),
                "{sub:?} {f} has no help text:\n{help}"
            );
        }
    }
}

/// The help text of `flag` in clap's `--help` output (same line or the
/// indented lines below).
fn help_of(help: &str, flag: &str) -> String {
    let lines: Vec<&str> = help.lines().collect();
    let Some(i) = lines.iter().position(|l| {
        let l = l.trim_start();
        l.starts_with('-') && l.split([' ', ',']).any(|w| w == flag)
    }) else {
        return String::new();
    };
    let line = lines[i];
    let rest = line.split_once(flag).map_or("", |x| x.1).trim_start();
    let rest = match rest.strip_prefix('<') {
        Some(r) => r.split_once('>').map_or("", |x| x.1),
        None => rest,
    };
    let mut text = rest.trim().to_owned();
    for l in &lines[i + 1..] {
        let t = l.trim();
        if t.is_empty() || t.starts_with('-') {
            break;
        }
        text.push_str(t);
    }
    text
}
