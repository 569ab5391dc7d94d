//! The lab report: one self-contained `report.html` (inline SVG, no
//! scripts, no network), `data.csv` (one row per sample) and
//! `summary.json`. A pure function of the recorded data, so the same data
//! writes the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::lag::burrow::Status;

/// One partition at one sample.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PartitionSample {
    pub lag: i64,
    pub time_lag_s: f64,
    pub status: Status,
}

/// Everything sampled once a second.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Sample {
    /// Seconds since the start.
    pub t: f64,
    pub produced_per_s: f64,
    pub processed_per_s: f64,
    pub produced: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    /// In-place retries scheduled (cumulative).
    pub retried: u64,
    /// Records forwarded into each retry tier (cumulative), by tier topic.
    pub tiers: BTreeMap<String, u64>,
    /// Paused partitions by reason.
    pub paused: BTreeMap<String, u64>,
    /// The generator's producer buffer in use.
    pub producer_buffer_bytes: u64,
    /// Waiting sends (producer backpressure).
    pub waiting_senders: u64,
    /// The pipelines' buffered bytes.
    pub pipeline_buffered_bytes: u64,
    /// Broker throttle time during this second (ms, all clients).
    pub throttle_ms: u64,
    /// Latency percentiles of the records acknowledged in this second (ms):
    /// p50, p99, p99.9, max from the intended send; p99 from the actual send.
    pub latency: Option<[f64; 5]>,
    pub group_status: Option<Status>,
    /// The source topic's partitions, by `p<N>`.
    pub partitions: BTreeMap<String, PartitionSample>,
    /// The retry tiers' partitions, by `retry-<ms> p<N>`.
    pub tier_partitions: BTreeMap<String, PartitionSample>,
}

/// The accounting at the end.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Accounting {
    pub produced: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    pub in_retry: u64,
    pub duplicates: u64,
    pub lost: u64,
    /// Records seen downstream that the generator counted as failed.
    pub unexpected: u64,
    /// bad + simulate_error records sent (what the DLQ should hold).
    pub expected_dead_letters: u64,
    pub identity_holds: bool,
}

impl Accounting {
    pub fn line(&self) -> String {
        format!(
            "produced {} = processed {} + dead-lettered {} + in retry {}: {} (duplicates {}, lost {}, expected dead letters {})",
            self.produced,
            self.processed,
            self.dead_lettered,
            self.in_retry,
            if self.identity_holds { "holds" } else { "DOES NOT HOLD" },
            self.duplicates,
            self.lost,
            self.expected_dead_letters
        )
    }
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Report {
    pub title: String,
    /// The lab's settings, as `key: value` pairs in order.
    pub settings: Vec<(String, String)>,
    pub accounting: Accounting,
    /// Latency over the run, ms: (label, corrected, uncorrected).
    pub latency_total: Vec<(String, f64, f64)>,
    pub elapsed_s: f64,
    pub samples: Vec<Sample>,
}

/// Writes `report.html`, `data.csv` and `summary.json` into `dir`;
/// returns the HTML's path.
pub(crate) fn write(dir: &Path, r: &Report) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let html = dir.join("report.html");
    std::fs::write(&html, render(r))?;
    std::fs::write(dir.join("data.csv"), csv(r))?;
    let summary = serde_json::json!({
        "title": r.title,
        "settings": r.settings.iter().cloned().collect::<BTreeMap<_, _>>(),
        "accounting": r.accounting,
        "latency_total_ms": r.latency_total.iter().map(|(l, c, u)| (l.clone(), serde_json::json!({"corrected": c, "uncorrected": u}))).collect::<BTreeMap<_, _>>(),
        "elapsed_s": r.elapsed_s,
        "samples": r.samples.len(),
        "max_lag": r.samples.iter().map(total_lag).max().unwrap_or(0),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), text + "\n")?;
    Ok(html)
}

fn total_lag(s: &Sample) -> i64 {
    s.partitions.values().map(|p| p.lag).sum()
}

/// Every label of `pick` over the samples, partitions in numeric order.
fn labels(r: &Report, pick: impl Fn(&Sample) -> &BTreeMap<String, PartitionSample>) -> Vec<String> {
    let mut all: Vec<String> = r
        .samples
        .iter()
        .flat_map(|s| pick(s).keys().cloned())
        .collect();
    all.sort_by_key(|l| split(l));
    all.dedup();
    all
}

/// Every key of `pick` over the samples, sorted (tiers, pause reasons).
fn keys<V>(r: &Report, pick: impl Fn(&Sample) -> &BTreeMap<String, V>) -> Vec<String> {
    let all: std::collections::BTreeSet<&String> =
        r.samples.iter().flat_map(|s| pick(s).keys()).collect();
    all.into_iter().cloned().collect()
}

fn partitions(r: &Report) -> Vec<String> {
    labels(r, |s| &s.partitions)
}

/// `retry-1000 p3` as ("retry-1000 ", 3), so partitions sort numerically.
fn split(label: &str) -> (String, i64) {
    match label.rsplit_once('p') {
        Some((t, p)) if p.parse::<i64>().is_ok() => (t.to_owned(), p.parse().unwrap_or(0)),
        _ => (label.to_owned(), 0),
    }
}

fn csv(r: &Report) -> String {
    let parts = partitions(r);
    let tiers = keys(r, |s| &s.tiers);
    let reasons = keys(r, |s| &s.paused);
    let mut out = String::from(
        "t_s,produced_per_s,processed_per_s,produced,processed,dead_lettered,retried,total_lag,group_status,producer_buffer_bytes,waiting_senders,pipeline_buffered_bytes,throttle_ms,p50_ms,p99_ms,p999_ms,max_ms,p99_actual_ms",
    );
    for t in &tiers {
        let _ = write!(out, ",tier:{t}");
    }
    for reason in &reasons {
        let _ = write!(out, ",paused:{reason}");
    }
    for p in &parts {
        let _ = write!(out, ",lag:{p},time_lag_s:{p},status:{p}");
    }
    let tier_parts = labels(r, |s| &s.tier_partitions);
    for p in &tier_parts {
        let _ = write!(out, ",lag:{p},status:{p}");
    }
    out.push('\n');
    for s in &r.samples {
        let lat = s.latency.map_or_else(
            || ",,,,".to_owned(),
            |l| {
                l.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
        );
        let _ = write!(
            out,
            "{:.3},{:.1},{:.1},{},{},{},{},{},{},{},{},{},{},{lat}",
            s.t,
            s.produced_per_s,
            s.processed_per_s,
            s.produced,
            s.processed,
            s.dead_lettered,
            s.retried,
            total_lag(s),
            s.group_status.map_or("", Status::name),
            s.producer_buffer_bytes,
            s.waiting_senders,
            s.pipeline_buffered_bytes,
            s.throttle_ms
        );
        for t in &tiers {
            let _ = write!(out, ",{}", s.tiers.get(t).copied().unwrap_or(0));
        }
        for reason in &reasons {
            let _ = write!(out, ",{}", s.paused.get(reason).copied().unwrap_or(0));
        }
        for p in &parts {
            match s.partitions.get(p) {
                Some(x) => {
                    let _ = write!(out, ",{},{:.3},{}", x.lag, x.time_lag_s, x.status.name());
                }
                None => out.push_str(",,,"),
            }
        }
        for p in &tier_parts {
            match s.tier_partitions.get(p) {
                Some(x) => {
                    let _ = write!(out, ",{},{}", x.lag, x.status.name());
                }
                None => out.push_str(",,"),
            }
        }
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// A "nice" step for about `n` ticks over `max`.
fn tick_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

const W: f64 = 960.0;
const H: f64 = 280.0;
const L: f64 = 70.0;
const R: f64 = 190.0;
const T: f64 = 16.0;
const B: f64 = 40.0;

/// A line chart over time; every series is one `<path>` with a point per sample.
fn line_chart(id: &str, y_label: &str, series: &[Series], max_t: f64) -> String {
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let step = tick_step(if max_y > 0.0 { max_y } else { 1.0 }, 5.0);
    let top = (max_y / step).ceil().max(1.0) * step;
    let max_t = max_t.max(1.0);
    let (pw, ph) = (W - L - R, H - T - B);
    let x = |t: f64| L + t / max_t * pw;
    let y = |v: f64| T + ph - v / top * ph;
    let mut s = format!(
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" role="img">"#
    );
    // Grid and y ticks.
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            L + pw,
            y(v),
            y(v),
            L - 6.0,
            y(v) + 4.0,
            num(v)
        );
        v += step;
    }
    let tstep = tick_step(max_t, 8.0);
    let mut t = 0.0;
    while t <= max_t + tstep / 2.0 {
        let _ = write!(
            s,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            x(t),
            x(t),
            T + ph,
            T + ph + 4.0,
            x(t),
            T + ph + 18.0,
            num(t)
        );
        t += tstep;
    }
    let _ = write!(
        s,
        r##"<line x1="{L}" x2="{L}" y1="{T}" y2="{:.1}" stroke="#333"/><line x1="{L}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/><text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">seconds since start</text><text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="axis">{}</text>"##,
        T + ph,
        L + pw,
        T + ph,
        T + ph,
        L + pw / 2.0,
        H - 4.0,
        T + ph / 2.0,
        T + ph / 2.0,
        esc(y_label)
    );
    for (i, ser) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if !ser.points.is_empty() {
            let mut d = String::new();
            for (k, (pt, pv)) in ser.points.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if k == 0 { "M" } else { " L" },
                    x(*pt),
                    y(*pv)
                );
            }
            let _ = write!(
                s,
                r#"<path class="series" data-series="{}" data-points="{}" d="{d}" fill="none" stroke="{color}" stroke-width="1.6"/>"#,
                esc(&ser.name),
                ser.points.len()
            );
            // Markers, so short runs (a one-second burst) still show.
            if ser.points.len() <= 120 {
                for (pt, pv) in &ser.points {
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{color}"/>"#,
                        x(*pt),
                        y(*pv)
                    );
                }
            }
        }
        let ly = T + 10.0 + i as f64 * 16.0;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            L + pw + 12.0,
            ly - 3.0,
            L + pw + 28.0,
            ly + 1.0,
            esc(&ser.name)
        );
    }
    s.push_str("</svg>");
    s
}

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Ok => "#43a047",
        Status::Warn => "#fbc02d",
        Status::Err => "#e53935",
        Status::Stop => "#8e24aa",
        Status::Stall => "#fb8c00",
        Status::Rewind => "#1e88e5",
        Status::NotFound => "#bdbdbd",
    }
}

/// Rows of Burrow statuses over time, one `<rect>` per sample.
/// A heat-map row: its label and (time, status) cells.
type Row = (String, Vec<(f64, Option<Status>)>);

fn heatmap(id: &str, rows: &[Row], max_t: f64) -> String {
    let row_h = 18.0;
    let h = T + rows.len() as f64 * row_h + B;
    // Room for labels such as `retry-1000 p5`.
    const L: f64 = 120.0;
    let pw = W - L - R;
    let max_t = max_t.max(1.0);
    let n = rows.iter().map(|r| r.1.len()).max().unwrap_or(1).max(1) as f64;
    let cell_w = (pw / n).max(1.0);
    let mut s = format!(
        r#"<svg id="{id}" class="chart heatmap" viewBox="0 0 {W} {h}" width="{W}" height="{h}" xmlns="http://www.w3.org/2000/svg" role="img">"#
    );
    for (i, (label, cells)) in rows.iter().enumerate() {
        let y = T + i as f64 * row_h;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            L - 6.0,
            y + row_h - 5.0,
            esc(label)
        );
        for (t, st) in cells {
            let Some(st) = st else { continue };
            let _ = write!(
                s,
                r#"<rect class="cell" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} at {:.0}s: {}</title></rect>"#,
                L + t / max_t * (pw - cell_w),
                y + 1.0,
                cell_w,
                row_h - 2.0,
                status_color(*st),
                esc(label),
                t,
                st.name()
            );
        }
    }
    let by = T + rows.len() as f64 * row_h + 22.0;
    for (i, st) in [
        Status::Ok,
        Status::Warn,
        Status::Err,
        Status::Stop,
        Status::Stall,
        Status::Rewind,
    ]
    .iter()
    .enumerate()
    {
        let x = L + i as f64 * 90.0;
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{by:.1}" class="legend">{}</text>"#,
            by - 10.0,
            status_color(*st),
            x + 16.0,
            st.name()
        );
    }
    s.push_str("</svg>");
    s
}

fn series_of(r: &Report, name: &str, f: impl Fn(&Sample) -> Option<f64>) -> Series {
    Series {
        name: name.to_owned(),
        points: r
            .samples
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t, v)))
            .collect(),
    }
}

fn section(out: &mut String, id: &str, title: &str, how: &str, svg: &str) {
    let _ = write!(
        out,
        r#"<section id="sec-{id}"><h2>{}</h2><p class="how">{}</p>{svg}</section>"#,
        esc(title),
        esc(how)
    );
}

/// The HTML page.
pub(crate) fn render(r: &Report) -> String {
    let max_t = r.samples.last().map_or(1.0, |s| s.t);
    let parts = partitions(r);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#222}}
h1{{font-size:22px}} h2{{font-size:17px;margin:28px 0 4px}} p.how{{margin:2px 0 8px;color:#555;font-size:13px}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}} th{{background:#f4f4f4}}
td.k{{text-align:left}} .ok{{color:#2e7d32;font-weight:600}} .bad{{color:#c62828;font-weight:600}}
svg text.tick{{font-size:11px;fill:#555}} svg text.axis{{font-size:12px;fill:#333}} svg text.legend{{font-size:11px;fill:#333}}
.grid{{display:flex;gap:24px;flex-wrap:wrap}}
</style></head><body><h1>{}</h1>"#,
        esc(&r.title),
        esc(&r.title)
    );
    let a = &r.accounting;
    let class = if a.identity_holds && a.lost == 0 {
        "ok"
    } else {
        "bad"
    };
    let _ = write!(
        out,
        r#"<p id="identity" class="{class}">{}</p><div class="grid"><table id="accounting"><tr><th class="k">accounting</th><th>records</th></tr>"#,
        esc(&a.line())
    );
    for (k, v) in [
        ("produced", a.produced),
        ("processed", a.processed),
        ("dead-lettered", a.dead_lettered),
        ("in retry", a.in_retry),
        ("duplicates", a.duplicates),
        ("lost", a.lost),
        ("expected dead letters", a.expected_dead_letters),
    ] {
        let _ = write!(out, r#"<tr><td class="k">{k}</td><td>{v}</td></tr>"#);
    }
    out.push_str(r#"</table><table id="latency"><tr><th class="k">send latency (ms)</th><th>from intended send</th><th>from actual send</th></tr>"#);
    for (l, c, u) in &r.latency_total {
        let _ = write!(
            out,
            r#"<tr><td class="k">{}</td><td>{c:.2}</td><td>{u:.2}</td></tr>"#,
            esc(l)
        );
    }
    out.push_str(
        r#"</table><table id="settings"><tr><th class="k">setting</th><th>value</th></tr>"#,
    );
    for (k, v) in &r.settings {
        let _ = write!(
            out,
            r#"<tr><td class="k">{}</td><td>{}</td></tr>"#,
            esc(k),
            esc(v)
        );
    }
    let _ = write!(
        out,
        r#"<tr><td class="k">elapsed</td><td>{:.1} s</td></tr></table></div>"#,
        r.elapsed_s
    );

    let lag: Vec<Series> = parts
        .iter()
        .map(|p| series_of(r, p, |s| s.partitions.get(p).map(|x| x.lag as f64)))
        .collect();
    section(&mut out, "lag", "Consumer lag per partition (records)",
        "Log-end offset minus the group's committed offset, sampled every second. It climbs while the burst outruns the consumers and falls back to 0 once they catch up; a partition that stays flat above 0 is stuck.",
        &line_chart("chart-lag", "records behind", &lag, max_t));
    let tl: Vec<Series> = parts
        .iter()
        .map(|p| series_of(r, p, |s| s.partitions.get(p).map(|x| x.time_lag_s)))
        .collect();
    section(&mut out, "time-lag", "Time lag per partition (seconds)",
        "How long ago the next record the group will read was written (interpolated from sampled log-end offsets; 0 when caught up). Offset lag says how much work is queued, time lag how stale the results are.",
        &line_chart("chart-time-lag", "seconds behind", &tl, max_t));
    let rates = vec![
        series_of(r, "produced/s", |s| Some(s.produced_per_s)),
        series_of(r, "processed/s", |s| Some(s.processed_per_s)),
    ];
    section(&mut out, "rates", "Produce vs consume rate (records/s)",
        "The gap between the two lines is the lag building up (produced above processed) or draining (processed above produced).",
        &line_chart("chart-rates", "records per second", &rates, max_t));
    let mut retries = vec![series_of(r, "in-place retries", |s| Some(s.retried as f64))];
    let tiers = keys(r, |s| &s.tiers);
    for t in &tiers {
        retries.push(series_of(r, t, |s| {
            Some(s.tiers.get(t).copied().unwrap_or(0) as f64)
        }));
    }
    retries.push(series_of(r, "dead-lettered (DLQ)", |s| {
        Some(s.dead_lettered as f64)
    }));
    section(&mut out, "retries", "Retries per tier and DLQ (cumulative records)",
        "In-place retries back off inside the consumer; records still failing move to the retry-tier topics (each with its delay), then to the DLQ. Steps in the DLQ line are bad or always-failing records.",
        &line_chart("chart-retries", "records (cumulative)", &retries, max_t));
    let reasons = keys(r, |s| &s.paused);
    let mut paused = vec![series_of(r, "paused (any reason)", |s| {
        Some(s.paused.values().sum::<u64>() as f64)
    })];
    for reason in &reasons {
        paused.push(series_of(r, reason, |s| {
            Some(s.paused.get(reason).copied().unwrap_or(0) as f64)
        }));
    }
    section(&mut out, "paused", "Paused partitions by reason",
        "Backpressure in the consumers: `buffer` means the in-memory buffer is full, `retry-delay` a retry tier waiting for its due time, `rate-limit` the rate limiter, `breaker` the DLQ breaker.",
        &line_chart("chart-paused", "partitions", &paused, max_t));
    let lat = vec![
        series_of(r, "p50 (intended)", |s| s.latency.map(|l| l[0])),
        series_of(r, "p99 (intended)", |s| s.latency.map(|l| l[1])),
        series_of(r, "p99.9 (intended)", |s| s.latency.map(|l| l[2])),
        series_of(r, "max (intended)", |s| s.latency.map(|l| l[3])),
        series_of(r, "p99 (actual send)", |s| s.latency.map(|l| l[4])),
    ];
    section(&mut out, "latency", "Send latency percentiles per second (ms)",
        "Acknowledgement latency of the records acknowledged in each second, measured from the intended send time (corrected for coordinated omission) and from the actual send. When the two p99 lines part, the generator was held back (broker stall, throttling or a full buffer) and the actual-send line hides it.",
        &line_chart("chart-latency", "milliseconds", &lat, max_t));
    let buf = vec![
        series_of(r, "producer buffer KiB", |s| {
            Some(s.producer_buffer_bytes as f64 / 1024.0)
        }),
        series_of(r, "pipeline buffered KiB", |s| {
            Some(s.pipeline_buffered_bytes as f64 / 1024.0)
        }),
        series_of(r, "throttle ms/s", |s| Some(s.throttle_ms as f64)),
        series_of(r, "waiting sends", |s| Some(s.waiting_senders as f64)),
    ];
    section(&mut out, "buffers", "Buffers, backpressure and throttling",
        "Producer buffer in use and sends waiting for it (the generator's backpressure), the consumers' buffered bytes, and the broker throttle time the clients honoured in each second (KIP-219 quotas).",
        &line_chart("chart-buffers", "KiB / ms / sends", &buf, max_t));
    let mut rows: Vec<Row> = vec![(
        "group".to_owned(),
        r.samples.iter().map(|s| (s.t, s.group_status)).collect(),
    )];
    for p in &parts {
        rows.push((
            p.clone(),
            r.samples
                .iter()
                .map(|s| (s.t, s.partitions.get(p).map(|x| x.status)))
                .collect(),
        ));
    }
    for p in labels(r, |s| &s.tier_partitions) {
        let cells = r
            .samples
            .iter()
            .map(|s| (s.t, s.tier_partitions.get(&p).map(|x| x.status)))
            .collect();
        rows.push((p, cells));
    }
    section(&mut out, "status", "Burrow status heat-map",
        "Burrow's evaluation of each partition's sliding window of commits, every second: OK, WARN (lag not decreasing), STALL (committing the same offset with lag), STOP (not committing), REWIND (offset went back). The group row is the worst partition (ERR for STOP/STALL/REWIND). Retry-tier partitions hold records until their due time, so they show STALL while they wait: compare the paused-by-reason chart (retry-delay).",
        &heatmap("chart-status", &rows, max_t));
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let samples = (0..5)
            .map(|i| {
                let mut partitions = BTreeMap::new();
                partitions.insert(
                    "p0".to_owned(),
                    PartitionSample {
                        lag: 10 - 2 * i,
                        time_lag_s: 1.0,
                        status: if i < 2 { Status::Warn } else { Status::Ok },
                    },
                );
                Sample {
                    t: i as f64,
                    produced_per_s: 100.0,
                    latency: (i > 0).then_some([1.0, 2.0, 3.0, 4.0, 1.5]),
                    group_status: Some(Status::Ok),
                    partitions,
                    ..Sample::default()
                }
            })
            .collect();
        Report {
            title: "lab <test>".into(),
            settings: vec![("records".into(), "10".into())],
            accounting: Accounting {
                produced: 10,
                processed: 9,
                dead_lettered: 1,
                identity_holds: true,
                ..Accounting::default()
            },
            latency_total: vec![("p50".into(), 1.0, 0.5)],
            elapsed_s: 5.0,
            samples,
        }
    }

    #[test]
    fn every_chart_has_a_path_with_points_and_the_page_is_self_contained() {
        let html = render(&report());
        assert_eq!(html.matches("<svg ").count(), 8);
        assert!(html.contains(r#"data-series="p0" data-points="5""#));
        assert!(html.contains(r#"data-series="p50 (intended)" data-points="4""#));
        assert_eq!(html.matches(r#"class="cell""#).count(), 10);
        assert!(html.contains("lab &lt;test&gt;"));
        assert!(
            !html.contains("http://")
                || !html
                    .replace("http://www.w3.org/2000/svg", "")
                    .contains("http://")
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_same_data_writes_the_same_bytes() {
        assert_eq!(render(&report()), render(&report()));
        let c = csv(&report());
        assert_eq!(c.lines().count(), 6);
        assert!(c.lines().nth(1).unwrap().ends_with(",10,1.000,WARN"), "{c}");
    }
}
