//! The CLI against the secured node of `scripts/harness up --security`, with
//! the harness's client property files passed unchanged as `--config-file`.
//! Tests named `tls_*` need `--features tls`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Test password of `alice` (scripts/harness).
const PASSWORD: &str = "alice-secret";

fn harness() -> Command {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/harness"))
}

fn config(name: &str) -> String {
    let out = harness()
        .args(["security-config", name])
        .output()
        .expect("scripts/harness");
    assert!(
        out.status.success(),
        "{}\nStart the secured broker with `scripts/harness up --security`.",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Runs `cmd` with `stdin`, killed after `limit`: (exit code, stdout, stderr).
fn run_bounded(mut cmd: Command, stdin: &str, limit: Duration) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        o.join().unwrap(),
        e.join().unwrap(),
    )
}

/// `kafka-ingest --config-file FILE ARGS`, connecting where the file says
/// (KAFKA_BOOTSTRAP would win over the file, as in Java's tools: issue 14).
fn cli(file: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"));
    c.env_remove("KAFKA_BOOTSTRAP")
        .arg("--config-file")
        .arg(file)
        .args(args);
    run_bounded(c, stdin, Duration::from_secs(90))
}

fn must(file: &str, args: &[&str], stdin: &str) -> String {
    let (code, out, err) = cli(file, args, stdin);
    assert_eq!(code, 0, "kafka-ingest {args:?} with {file} failed: {err}");
    out
}

/// Topic admin, produce, consume through a group, group describe.
fn round_trip(name: &str) {
    let file = config(name);
    let topic = unique(&format!("cli-sec-{name}"));
    must(
        &file,
        &[
            "topics",
            "create",
            &topic,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
        "",
    );
    assert!(must(&file, &["topics", "list"], "")
        .lines()
        .any(|l| l.starts_with(&format!("{topic}\t"))));
    let input: String = (0..10).map(|i| format!("k{i}:v{i}\n")).collect();
    let (code, _, err) = cli(&file, &["produce", "-t", &topic, "-K", ":"], &input);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("produced 10 records to {topic}")),
        "{err}"
    );
    let group = unique("cli-sec-g");
    let out = must(
        &file,
        &[
            "consume",
            "-t",
            &topic,
            "-g",
            &group,
            "--from-beginning",
            "--max-messages",
            "10",
            "-f",
            "%v",
        ],
        "",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want, "{name}");
    assert!(must(&file, &["topics", "describe", &topic], "").contains("Leader: "));
    assert!(must(&file, &["groups", "describe", &group], "").contains(&group));
    must(&file, &["topics", "delete", &topic], "");
}

#[test]
fn sasl_plain() {
    round_trip("plain");
}

#[test]
fn sasl_scram_sha_256() {
    round_trip("scram-sha-256");
}

#[test]
fn sasl_scram_sha_512() {
    round_trip("scram-sha-512");
}

#[test]
fn sasl_oauthbearer() {
    round_trip("oauthbearer");
}

#[cfg(feature = "tls")]
#[test]
fn tls_ssl() {
    round_trip("ssl");
}

#[cfg(feature = "tls")]
#[test]
fn tls_mtls() {
    round_trip("mtls");
}

#[cfg(feature = "tls")]
#[test]
fn tls_sasl_ssl() {
    round_trip("sasl-ssl");
}

/// A refused login: non-zero exit, one clear line, no secret in it.
fn refused(name: &str, overrides: &[&str], mechanism: &str, secret: &str) -> String {
    let mut args = Vec::new();
    for o in overrides {
        args.extend(["-X", o]);
    }
    args.extend([
        "-X",
        "socket.connection.setup.timeout.ms=5000",
        "topics",
        "list",
    ]);
    let (code, out, err) = cli(&config(name), &args, "");
    assert_ne!(code, 0, "{name} {overrides:?} must fail: {out}");
    assert!(
        err.contains(&format!("authentication with {mechanism} to 127.0.0.1:")),
        "{err}"
    );
    assert!(
        !err.contains(secret) && !out.contains(secret),
        "secret leaked: {err}"
    );
    err
}

#[test]
fn sasl_refused_logins_exit_non_zero() {
    let wrong = "cli-wrong-pw-2210";
    refused(
        "plain",
        &[&format!("sasl.password={wrong}")],
        "PLAIN",
        wrong,
    );
    refused("plain", &["sasl.username=nobody"], "PLAIN", PASSWORD);
    for (name, mech) in [
        ("scram-sha-256", "SCRAM-SHA-256"),
        ("scram-sha-512", "SCRAM-SHA-512"),
    ] {
        for user in ["alice", "nobody"] {
            let jaas = format!(
                r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{wrong}";"#
            );
            refused(name, &[&jaas], mech, wrong);
        }
    }
    // The token endpoint issues `expired-client` a token that expired already.
    let jaas = r#"sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="expired-client" clientSecret="client-secret";"#;
    let err = refused("oidc", &[jaas], "OAUTHBEARER", "client-secret");
    assert!(err.contains("expired"), "{err}");
}

#[cfg(feature = "tls")]
#[test]
fn tls_refused_certificates_exit_non_zero() {
    let err = refused("wrong-host", &[], "SSL", PASSWORD);
    assert!(err.contains("not valid for name"), "{err}");
    let (code, _, err) = cli(
        &config("wrong-host"),
        &[
            "-X",
            "ssl.endpoint.identification.algorithm=",
            "topics",
            "list",
        ],
        "",
    );
    assert_eq!(code, 0, "verification off: {err}");
    let other = config("ssl").replace("clients/ssl.properties", "tls/other-ca.pem");
    refused(
        "ssl",
        &[&format!("ssl.truststore.location={other}")],
        "SSL",
        PASSWORD,
    );
    refused(
        "mtls",
        &["ssl.certificate.location=", "ssl.key.location="],
        "SSL",
        "client-key-secret",
    );
}

/// A Java client's SCRAM-SHA-512 file (sasl.jaas.config) works unchanged with
/// Java's own tools and with ours, on the same topic.
#[test]
fn java_scram_sha_512_properties_work_unchanged() {
    let file = config("scram-sha-512");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        ),
        "{text}"
    );
    let bootstrap = text
        .lines()
        .find_map(|l| l.strip_prefix("bootstrap.servers="))
        .unwrap()
        .to_owned();
    let topic = unique("cli-java-scram");
    let mut java = harness();
    java.args([
        "tool",
        "TopicCommand",
        "--bootstrap-server",
        &bootstrap,
        "--command-config",
        &file,
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let (code, _, err) = run_bounded(java, "", Duration::from_secs(120));
    assert_eq!(code, 0, "Java TopicCommand with {file}: {err}");
    assert!(must(&file, &["topics", "list"], "")
        .lines()
        .any(|l| l.starts_with(&format!("{topic}\t"))));
    let (code, _, err) = cli(&file, &["produce", "-t", &topic], "one\ntwo\nthree\n");
    assert_eq!(code, 0, "{err}");
    let mut java = harness();
    java.args([
        "tool",
        "consumer.ConsoleConsumer",
        "--bootstrap-server",
        &bootstrap,
        "--consumer.config",
        &file,
        "--topic",
        &topic,
        "--from-beginning",
        "--max-messages",
        "3",
        "--timeout-ms",
        "60000",
    ]);
    let (code, out, err) = run_bounded(java, "", Duration::from_secs(120));
    assert_eq!(code, 0, "Java ConsoleConsumer with {file}: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["one", "two", "three"],
        "{err}"
    );
}

/// `schema --registry-config` with the harness's basic-auth registry file.
#[test]
fn registry_config_file_with_basic_auth() {
    let file = config("registry");
    let schema = std::env::temp_dir().join(format!("{}.avsc", unique("sec-schema")));
    std::fs::write(
        &schema,
        r#"{"type":"record","name":"CliSec","fields":[{"name":"a","type":"int"}]}"#,
    )
    .unwrap();
    let subject = unique("cli-sec-subject");
    let schema = schema.display().to_string();
    let mut c = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"));
    c.args([
        "schema",
        "--registry-config",
        &file,
        "register",
        "--subject",
        &subject,
        &schema,
    ]);
    let (code, out, err) = run_bounded(c, "", Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().parse::<u32>().is_ok(), "an id: {out}");
    // The same endpoint without credentials refuses.
    let mut c = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"));
    c.args([
        "schema",
        "--registry",
        "http://127.0.0.1:8181/apis/ccompat/v7",
        "get",
        "--subject",
        &subject,
    ]);
    let (code, _, err) = run_bounded(c, "", Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(err.contains("401"), "{err}");
}
