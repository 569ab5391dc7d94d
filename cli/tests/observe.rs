//! `burst`, `lag` and `--metrics-addr` run as processes against the harness
//! broker: a Prometheus scrape with a real HTTP client, the generator's
//! rate and its coordinated-omission correction under a stalled broker
//! (SIGSTOP through the harness), and Burrow statuses of a real group.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// GETs the endpoint with reqwest and parses it with prometheus-parse.
fn scrape(port: u16) -> Option<(String, prometheus_parse::Scrape)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let ct = r.headers().get("content-type")?.to_str().ok()?.to_owned();
        let body = r.text().await.ok()?;
        assert!(
            body.ends_with("# EOF\n"),
            "OpenMetrics ends with # EOF: {body}"
        );
        let s = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).ok()?;
        Some((ct, s))
    })
}

fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|m| m.metric == name && labels.iter().all(|(k, v)| m.labels.get(k) == Some(*v)))
        .map(|m| match m.value {
            prometheus_parse::Value::Counter(x)
            | prometheus_parse::Value::Gauge(x)
            | prometheus_parse::Value::Untyped(x) => x,
            _ => f64::NAN,
        })
}

#[test]
fn pipeline_metrics_endpoint_scraped_and_parsed() {
    let topic = unique("prom");
    let group = unique("prom-group");
    let sent = json(&sh(&format!(
        "burst -t {topic} --partitions 3 --records 3000 --keys 50 --json"
    )));
    assert_eq!(sent["acked"], 3000, "{sent}");
    let port = free_port();
    let mut p = Running::spawn(
        cmd(&[
            "pipeline",
            "--topic",
            &topic,
            "--group",
            &group,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null()),
        false,
    );
    let (ct, s) = eventually("the pipeline processed 3000 records", LIMIT, || {
        let (ct, s) = scrape(port)?;
        let done = value(
            &s,
            "kafka_ingest_pipeline_processed_total",
            &[("pipeline", "pipeline")],
        );
        (done == Some(3000.0)).then_some((ct, s))
    });
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let c = [("client", "pipeline")];
    assert_eq!(
        value(&s, "kafka_ingest_consumer_records_fetched_total", &c),
        Some(3000.0)
    );
    assert_eq!(
        value(
            &s,
            "kafka_ingest_pipeline_received_total",
            &[("pipeline", "pipeline")]
        ),
        Some(3000.0)
    );
    assert_eq!(
        value(
            &s,
            "kafka_ingest_pipeline_dead_lettered_total",
            &[("pipeline", "pipeline")]
        ),
        Some(0.0)
    );
    // Nothing failed, so the pipeline's producer forwarded nothing.
    assert_eq!(
        value(&s, "kafka_ingest_producer_records_sent_total", &c),
        Some(0.0)
    );
    assert!(value(&s, "kafka_ingest_consumer_rebalances_total", &c).unwrap_or(0.0) >= 1.0);
    // A histogram: its +Inf bucket holds every observation.
    let count = value(
        &s,
        "kafka_ingest_consumer_request_latency_seconds_count",
        &c,
    )
    .expect("count");
    let inf = s
        .samples
        .iter()
        .find_map(|m| match &m.value {
            prometheus_parse::Value::Histogram(b)
                if m.metric == "kafka_ingest_consumer_request_latency_seconds" =>
            {
                b.iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count)
            }
            _ => None,
        })
        .expect("a +Inf bucket");
    assert!(count > 0.0 && inf == count, "count {count}, +Inf {inf}");
    for tp in 0..3 {
        let l = [
            ("client", "pipeline"),
            ("topic", topic.as_str()),
            ("partition", &tp.to_string()),
        ];
        assert_eq!(
            value(&s, "kafka_ingest_consumer_lag", &l),
            Some(0.0),
            "partition {tp}"
        );
    }
    // `lag` reads the pipeline's own state from the same endpoint.
    let g = json(&sh(&format!(
        "lag --group {group} --json --samples 1 --pipeline-metrics 127.0.0.1:{port}"
    )));
    assert_eq!(g["pipeline"]["retrying"], 0, "{g}");
    assert_eq!(g["pipeline"]["breaker_open"], 0, "{g}");
    assert!(g["pipeline"]["paused"].is_object(), "{g}");
    assert_eq!(g["partitions"].as_array().map(Vec::len), Some(3), "{g}");
    signal(p.child(), "-INT");
    let out = p.finish("pipeline", LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn burst_sends_the_planned_count_at_its_rate() {
    let topic = unique("burst-rate");
    let s = json(&sh(&format!(
        "burst -t {topic} --partitions 3 --rate 20000 --duration 10s --json"
    )));
    let acked = s["acked"].as_u64().unwrap();
    assert!(
        (196_000..=204_000).contains(&acked),
        "{acked} not within 2% of 200000"
    );
    assert_eq!(s["failed"], 0, "{}", s["errors"]);
    assert_eq!(latest_total(&topic), acked as i64);
    // Reported per second and in total, corrected and not.
    assert!(s["seconds"].as_array().unwrap().len() >= 10);
    // Each record's delay from its intended time includes its delay from
    // the actual send, so every corrected percentile is at least as high.
    for k in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        let (c, u) = (
            s["corrected_ms"][k].as_f64().unwrap(),
            s["uncorrected_ms"][k].as_f64().unwrap(),
        );
        assert!(c >= u, "{k}: corrected {c} < uncorrected {u}");
    }
    assert_eq!(s["corrected_ms"]["count"].as_u64(), Some(acked));
}

fn harness(arg: &str) {
    let mut c = std::process::Command::new(repo().join("scripts/harness"));
    c.arg(arg);
    let o = run_cmd_with(c, b"", Duration::from_secs(30));
    assert_eq!(o.code, 0, "harness {arg}: {}", o.stderr);
}

#[test]
fn a_stalled_broker_shows_in_corrected_latency_only() {
    let topic = unique("burst-stall");
    sh(&format!("topics create {topic} --partitions 1"));
    // A small buffer: during the stall send() blocks, so the records due
    // meanwhile are sent late, and only the intended-time latency sees it.
    let b = Running::spawn(
        cmd(&[
            "-X",
            "buffer.memory=16384",
            "-X",
            "batch.size=8192",
            "burst",
            "-t",
            &topic,
            "--rate",
            "2000",
            "--duration",
            "8s",
            "--json",
        ])
        .stdin(Stdio::null()),
        false,
    );
    std::thread::sleep(Duration::from_secs(3));
    harness("stop");
    std::thread::sleep(Duration::from_secs(2));
    harness("cont");
    let out = b.finish("burst", LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = json(&out.text());
    assert_eq!(s["acked"], 16000, "{}", s["errors"]);
    let (c, u) = (&s["corrected_ms"], &s["uncorrected_ms"]);
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    eprintln!("corrected {c}\nuncorrected {u}");
    // A quarter of the records were due during the 2 s stall.
    assert!(f(c, "p90") >= 500.0, "corrected p90 {}", f(c, "p90"));
    assert!(
        f(u, "p90") * 4.0 < f(c, "p90"),
        "uncorrected p90 {} vs corrected {}",
        f(u, "p90"),
        f(c, "p90")
    );
    assert!(f(c, "max") >= f(u, "max"));
}

#[test]
fn lag_shows_stop_for_a_stopped_consumer_then_ok_once_caught_up() {
    let topic = unique("lag");
    let group = unique("lag-group");
    sh(&format!("burst -t {topic} --partitions 1 --records 1000"));
    // Reads half, commits, leaves: nobody owns the partitions any more.
    sh(&format!(
        "consume -t {topic} -g {group} --from-beginning --max-messages 500"
    ));
    let lag = |samples: u32| {
        json(&sh(&format!(
            "lag --group {group} --json --samples {samples} --interval 600ms"
        )))
    };
    let g = lag(3);
    let parts = g["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{g}");
    assert_eq!(g["total_lag"], 500, "{g}");
    let p = &parts[0];
    let st = p["status"].as_str().unwrap();
    assert!(st == "STOP" || st == "STALL", "{p}");
    assert!(p["consumer"].is_null(), "{p}");
    assert_eq!(g["status"], "ERR", "{g}");
    sh(&format!("consume -t {topic} -g {group} --max-messages 500"));
    let g = lag(2);
    assert_eq!(g["total_lag"], 0, "{g}");
    assert_eq!(g["status"], "OK", "{g}");
    for p in g["partitions"].as_array().unwrap() {
        assert_eq!(p["status"], "OK", "{p}");
        assert_eq!(p["time_lag_s"], 0.0, "{p}");
    }
    // The table view names the columns and the status.
    let table = sh(&format!("lag --group {group} --samples 1"));
    assert!(
        table.contains("BURROW") && table.contains(": OK"),
        "{table}"
    );
    // --watch serves the same as Prometheus gauges.
    let port = free_port();
    let mut w = Running::spawn(
        cmd(&[
            "lag",
            "--group",
            &group,
            "--watch",
            "--json",
            "--interval",
            "300ms",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null()),
        false,
    );
    let s = eventually("lag gauges served", LIMIT, || {
        let (_, s) = scrape(port)?;
        value(&s, "kafka_ingest_group_status", &[("group", &group)]).map(|_| s)
    });
    assert_eq!(
        value(&s, "kafka_ingest_group_status", &[("group", &group)]),
        Some(1.0)
    );
    let p = [
        ("group", group.as_str()),
        ("topic", topic.as_str()),
        ("partition", "0"),
    ];
    assert_eq!(value(&s, "kafka_ingest_group_lag", &p), Some(0.0));
    assert_eq!(
        value(&s, "kafka_ingest_group_partition_status", &p),
        Some(1.0)
    );
    signal(w.child(), "-INT");
    let out = w.finish("lag --watch", LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.text().lines().count() >= 1);
}

#[test]
fn a_client_quota_shows_as_throttle_time_in_the_scraped_metrics() {
    let topic = unique("burst-quota");
    let client = unique("burst-quota-client");
    sh(&format!("topics create {topic} --partitions 1"));
    // The broker rates over ~10 s: 2000 records of ~250 bytes at 30 kB/s is over it.
    sh(&format!(
        "configs alter --client {client} --set producer_byte_rate=30000"
    ));
    // Quotas reach the broker asynchronously.
    eventually("the quota is in force", LIMIT, || {
        let d = sh(&format!("configs describe --client {client}"));
        d.contains("producer_byte_rate=30000").then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let port = free_port();
    let mut b = Running::spawn(
        cmd(&[
            "-X",
            &format!("client.id={client}"),
            "burst",
            "-t",
            &topic,
            "--rate",
            "1000",
            "--duration",
            "2s",
            "--size",
            "200",
            "--json",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null()),
        false,
    );
    // Scrape while it runs: the throttle time is visible as it accrues.
    let mut scraped = 0.0f64;
    let start = std::time::Instant::now();
    while b.child().try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < LIMIT,
            "burst still running after {LIMIT:?}"
        );
        if let Some((_, s)) = scrape(port) {
            let t = [("client", "burst")];
            scraped = scraped
                .max(value(&s, "kafka_ingest_producer_throttle_seconds_total", &t).unwrap_or(0.0));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = b.finish("burst", LIMIT);
    sh(&format!(
        "configs alter --client {client} --delete producer_byte_rate"
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = json(&out.text());
    // Held back, not muted: every record delivered, none failed.
    assert_eq!(s["acked"], 2000, "{}", s["errors"]);
    assert_eq!(s["failed"], 0);
    let ms = s["throttle_ms"].as_f64().unwrap();
    assert!(scraped > 0.0, "no throttle time scraped (summary: {ms} ms)");
    // The same counter, read later (0.5 ms of slack for the float).
    assert!(
        ms + 0.5 >= scraped * 1000.0,
        "summary {ms} ms, scraped {scraped} s"
    );
    assert_eq!(latest_total(&topic), 2000);
}
