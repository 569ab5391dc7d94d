//! `kafka-ingest demo` (what `scripts/demo` runs) against the harness broker
//! and registry: its summary counts every record exactly once, the DLQ holds
//! exactly the poison records, the incompatible v3 is refused, and the five
//! parts come in order.

mod support;

use std::time::Duration;

use support::{cmd, run_cmd_with};

/// Records of the default burst (600) that are poison: ids with id % 50 of 7
/// (fatal) or 27 (fails every attempt).
const POISON: u64 = 24;
/// Retries of the default burst, in place and into the tiers: 24 records
/// failing once (1 in place), 24 failing twice (1 in place, 1 forward), 12
/// failing three times and the 12 always failing (1 in place, 2 forwards).
const RETRIED: u64 = 24 + 24 * 2 + 12 * 3 + 12 * 3;

#[test]
fn demo_counts_every_record_once_and_refuses_v3() {
    let dir = support::artifacts().join(support::unique("demo-lab"));
    let dir_arg = dir.display().to_string();
    let out = run_cmd_with(
        cmd(&["demo", "--json", "--report-dir", &dir_arg]),
        b"",
        Duration::from_secs(240),
    );
    let text = out.text();
    assert_eq!(
        out.code, 0,
        "demo failed\nstdout:\n{text}\nstderr:\n{}\n(is `scripts/harness up` running?)",
        out.stderr
    );
    let last = text.lines().last().unwrap_or_default();
    let s: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"));
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(n("produced"), 3000 + 1000 + 600, "{s}");
    assert_eq!(n("consumed"), n("produced"), "{s}");
    assert_eq!(n("lost"), 0, "{s}");
    assert_eq!(n("duplicates"), 0, "{s}");
    assert_eq!(n("poison_sent"), POISON, "{s}");
    assert_eq!(n("dead_lettered"), POISON, "{s}");
    assert_eq!(n("retried"), RETRIED, "{s}");
    assert_eq!(s["v3_refused"], true, "{s}");
    assert_eq!(s["final_lag"], 0, "{s}");
    assert_eq!(s["final_status"], "OK", "{s}");
    assert_eq!(n("lab_produced"), 10_000, "{s}");
    assert_eq!(n("lab_lost"), 0, "{s}");
    assert_eq!(n("lab_duplicates"), 0, "{s}");
    assert_eq!(s["lab_identity_holds"], true, "{s}");
    let report = dir.join("report.html");
    assert_eq!(s["lab_report"], report.display().to_string(), "{s}");
    assert!(std::fs::metadata(&report).unwrap().len() > 0);

    let mut at = 0;
    for part in [
        "== 1. Producer",
        "== 2. Consumer group",
        "== 3. Schema evolution",
        "== 4. Backpressure and retries",
        "== 5. Lag",
        "== Summary",
    ] {
        let i = text[at..]
            .find(part)
            .unwrap_or_else(|| panic!("`{part}` missing or out of order:\n{text}"));
        at += i + part.len();
    }
    for figure in [
        "producer id ",
        "records a batch",
        "registry refused it (HTTP 409)",
        "Burrow status",
    ] {
        assert!(text.contains(figure), "`{figure}` missing:\n{text}");
    }
}
