//! `kafka-ingest lab --records 100000` against the harness broker, and its
//! report opened in a real headless Chromium (Debian's `chromium`,
//! installed by scripts/chromium if missing): no console messages, every
//! chart drawn with data, checked from the rendered DOM; the screenshot is
//! kept under target/lab-artifacts/.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

fn chromium() -> String {
    let o = run_cmd_with(
        Command::new(repo().join("scripts/chromium")),
        b"",
        Duration::from_secs(900),
    );
    assert_eq!(o.code, 0, "scripts/chromium: {}", o.stderr);
    o.text().trim().to_owned()
}

/// Chromium headless on `page` with `args`: (stdout, console lines).
fn headless(page: &Path, args: &[&str]) -> (String, Vec<String>) {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .args(args)
    .arg(format!("file://{}", page.display()));
    let o = run_cmd_with(c, b"", Duration::from_secs(120));
    assert_eq!(o.code, 0, "chromium: {}", o.stderr);
    // Page console output (any level) shows as `INFO:CONSOLE` lines.
    let console = o
        .stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (o.text(), console)
}

#[test]
fn the_console_check_sees_a_page_error() {
    // The check below is only worth something if it catches one.
    let page = artifacts().join("console-error.html");
    std::fs::write(
        &page,
        "<html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, console) = headless(&page, &["--dump-dom"]);
    assert!(console.iter().any(|l| l.contains("boom")), "{console:?}");
}

#[test]
fn lab_100k_accounts_for_every_record_and_its_report_renders_in_chromium() {
    let out = artifacts().join(unique("lab"));
    let o = run_cmd_with(
        cmd(&[
            "lab",
            "--records",
            "100000",
            "--out",
            &out.display().to_string(),
            "--timeout",
            "100s",
        ]),
        b"",
        Duration::from_secs(150),
    );
    assert_eq!(o.code, 0, "lab failed:\n{}\n{}", o.text(), o.stderr);
    let text = o.text();
    assert!(text.contains(": holds"), "{text}");
    assert!(text.contains("lost 0"), "{text}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let a = &summary["accounting"];
    assert_eq!(a["produced"], 100_000, "{a}");
    assert_eq!(a["lost"], 0, "{a}");
    assert_eq!(a["in_retry"], 0, "{a}");
    assert_eq!(a["identity_holds"], true, "{a}");
    let n = |k: &str| a[k].as_u64().unwrap();
    assert_eq!(n("processed") + n("dead_lettered"), 100_000, "{a}");
    // Bad and always-failing records, and only those, end in the DLQ.
    assert_eq!(n("dead_lettered"), n("expected_dead_letters"), "{a}");
    assert!(n("dead_lettered") > 0);
    let csv = std::fs::read_to_string(out.join("data.csv")).unwrap();
    assert!(csv.lines().count() >= 3, "{csv}");

    let html = out.join("report.html");
    let source = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no scripts, no external resources.
    assert!(!source.contains("<script"));
    for attr in ["src=", "href=", "url("] {
        assert!(!source.contains(attr), "the report loads something: {attr}");
    }
    let (dom, console) = headless(&html, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:?}");
    // Every chart drew data: each line chart has a path with several
    // points, the heat-map has cells.
    let charts: Vec<&str> = dom.split("<svg ").skip(1).collect();
    assert_eq!(charts.len(), 8, "charts in the DOM");
    for c in &charts {
        let id = c.split('"').nth(1).unwrap_or("?");
        if c.contains("heatmap") {
            assert!(c.matches("class=\"cell\"").count() >= 3, "{id}: no cells");
            continue;
        }
        let most = c
            .split("data-points=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        assert!(most >= 2, "{id}: no series with points");
        assert!(c.contains(" d=\"M"), "{id}: no drawn path");
    }
    assert!(dom.contains("id=\"identity\" class=\"ok\""));
    let shot = artifacts().join("lab-report.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &html,
        &[
            "--window-size=1040,3800",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}
