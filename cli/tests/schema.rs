//! `kafka-ingest schema ...` run as a process: offline checks, and the
//! registry commands against the harness registry (`scripts/harness up`).

use std::path::PathBuf;
use std::process::{Command, Output};

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn file(name: &str) -> String {
    schemas().join(format!("{name}.avsc")).display().to_string()
}

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".to_owned())
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_kafka-ingest"))
        .args(args)
        .env("SCHEMA_REGISTRY_URL", registry_url())
        .output()
        .expect("run kafka-ingest");
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(level: &str, new: &str, previous: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "schema".to_owned(),
        "check".into(),
        "--level".into(),
        level.into(),
        "--new".into(),
        file(new),
    ];
    args.extend(previous.iter().map(|p| file(p)));
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[test]
fn check_exit_codes_follow_the_levels() {
    let (v1, v2) = ("ingest_event_v1", "ingest_event_v2");
    // (level, new, previous, expected exit code)
    let cases: &[(&str, &str, &[&str], i32)] = &[
        ("BACKWARD", v2, &[v1], 0),
        ("full", v2, &[v1], 0),
        ("Full_Transitive", v2, &[v1], 0),
        ("backward", "ingest_event_v3", &[v1, v2], 0),
        ("backward_transitive", "ingest_event_v3", &[v1, v2], 1),
        ("FORWARD", "ingest_event_v3", &[v1, v2], 1),
        ("full", "ingest_event_v3", &[v1, v2], 1),
        ("BACKWARD", "ingest_event_incompatible", &[v1, v2], 1),
        ("NONE", "ingest_event_incompatible", &[v1, v2], 0),
        ("backward", v2, &[], 0),
    ];
    for (level, new, prev, want) in cases {
        let (code, out, err) = check(level, new, prev);
        assert_eq!(
            code, *want,
            "{level} {new} {prev:?}\nstdout: {out}\nstderr: {err}"
        );
    }
    // Non-transitive levels compare with the last previous only.
    assert_eq!(check("backward", "ingest_event_v3", &[v1]).0, 1);
    assert_eq!(check("backward", "ingest_event_v3", &[v1, v2]).0, 0);
}

#[test]
fn check_prints_reasons_with_paths() {
    let (code, out, _) = check(
        "backward",
        "ingest_event_incompatible",
        &["ingest_event_v2"],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("/fields/data/fields/unit: reader field `unit`"),
        "{out}"
    );
    assert!(
        out.contains("/fields/event_id: reader type string cannot read writer type long"),
        "{out}"
    );
    let (_, out, _) = check(
        "backward_transitive",
        "ingest_event_v3",
        &["ingest_event_v1", "ingest_event_v2"],
    );
    assert!(
        out.contains("ingest_event_v1.avsc") && out.contains("/fields/source"),
        "{out}"
    );
}

#[test]
fn check_usage_and_parse_errors_exit_2() {
    let dir = std::env::temp_dir().join(unique("kafka-ingest-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.avsc");
    std::fs::write(
        &bad,
        r#"{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}"#,
    )
    .unwrap();
    let bad = bad.display().to_string();
    let v1 = file("ingest_event_v1");
    let (code, _, err) = run(&["schema", "check", "--level", "BACKWARD", "--new", &bad, &v1]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.avsc"), "{err}");
    let (code, _, err) = run(&["schema", "check", "--level", "BACKWARD", "--new", &v1, &bad]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["schema", "check", "--level", "SIDEWAYS", "--new", &v1]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SIDEWAYS") && err.contains("BACKWARD_TRANSITIVE"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "schema",
        "check",
        "--level",
        "BACKWARD",
        "--new",
        "/no/such.avsc",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["schema", "check", "--new", &v1]);
    assert_eq!(code, 2, "--level is required");
    std::fs::remove_dir_all(&dir).ok();
}

fn require_registry() {
    let (code, out, err) = run(&["schema", "config"]);
    assert!(
        code == 0,
        "schema registry is not reachable at {}: {out}{err}\nStart it with `scripts/harness up` (or run `scripts/test`).",
        registry_url()
    );
}

#[test]
fn registry_commands() {
    require_registry();
    let subject = unique("cli-schema");
    let (v1, v2, bad) = (
        file("ingest_event_v1"),
        file("ingest_event_v2"),
        file("ingest_event_incompatible"),
    );

    let (code, out, err) = run(&[
        "schema",
        "config",
        "--subject",
        &subject,
        "--level",
        "backward",
    ]);
    assert_eq!((code, out.trim()), (0, "BACKWARD"), "{err}");
    let (code, out, err) = run(&["schema", "register", "--subject", &subject, &v1]);
    assert_eq!(code, 0, "{err}");
    let id: u32 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("register prints the id: {out}"));
    let (_, again, _) = run(&["schema", "register", "--subject", &subject, &v1]);
    assert_eq!(again.trim(), id.to_string(), "idempotent");

    let (code, out, _) = run(&["schema", "get", "--id", &id.to_string()]);
    assert_eq!(code, 0);
    assert!(out.contains("\"IngestEvent\""), "{out}");
    let (code, out, _) = run(&["schema", "get", "--subject", &subject, "--version", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("SensorData"), "{out}");

    let (code, out, _) = run(&["schema", "compat", "--subject", &subject, &v2]);
    assert_eq!((code, out.lines().next()), (0, Some("compatible")));
    let (code, out, _) = run(&[
        "schema",
        "compat",
        "--subject",
        &subject,
        &bad,
        "--version",
        "latest",
    ]);
    assert_eq!((code, out.lines().next()), (1, Some("incompatible")));
    let (code, _, err) = run(&["schema", "register", "--subject", &subject, &bad]);
    assert_eq!(code, 1);
    assert!(
        err.contains("incompatible") && err.contains(&subject),
        "{err}"
    );

    let (code, out, _) = run(&["schema", "config", "--subject", &subject]);
    assert_eq!((code, out.trim()), (0, "BACKWARD"));
    let (code, _, err) = run(&["schema", "get", "--id", "2147483647"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    let (code, out, err) = run(&["schema", "delete", "--subject", &subject, "--permanent"]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) = run(&["schema", "--registry", &url, "config"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unreachable") && err.contains(&port.to_string()),
        "{err}"
    );
}
