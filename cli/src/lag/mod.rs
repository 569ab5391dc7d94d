//! `kafka-ingest lag`: per-partition committed offset, log end, offset lag,
//! time lag and Burrow status of a group, once or live (`--watch`).
//!
//! [`Monitor`] is the reusable part (the lab and the demo call it): each
//! [`Monitor::sample`] describes the group once and feeds the samples into
//! Burrow's window and the time-lag table. The committed offsets are polled,
//! not read from `__consumer_offsets` as Burrow does, so a commit is
//! recorded when the offset moved or a live member owns the partition; a
//! partition nobody owns whose offset stays put is a consumer that stopped
//! committing (STOP), an owned one committing the same offset is a STALL.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use kafka_ingest::{Admin, Error, GroupDescription, Result, TopicPartition};

pub(crate) mod burrow;
pub(crate) mod timelag;

use crate::Global;
use burrow::{Rules, Status, Window};
use timelag::TimeLag;

#[derive(Args)]
pub(crate) struct LagArgs {
    /// Consumer group.
    #[arg(long, short)]
    group: String,
    /// Redraw a live table every --interval until interrupted.
    #[arg(long)]
    watch: bool,
    /// Time between samples (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Samples taken before a one-shot report (Burrow needs a window).
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Commits per partition in Burrow's sliding window.
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// Burrow's allowed-lag: a current lag up to this is OK.
    #[arg(long, default_value_t = 0)]
    allowed_lag: u64,
    /// The pipeline's --metrics-addr (HOST:PORT): its pause reasons,
    /// retries and breaker show beside Burrow's status.
    #[arg(long, value_name = "HOST:PORT")]
    pipeline_metrics: Option<String>,
    /// One JSON document per report instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    metrics: crate::prom::MetricsArg,
}

/// One partition of a group.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: i64,
    /// `log_end - committed` (None until something is committed).
    pub lag: Option<i64>,
    /// Seconds; a lower bound when `time_lag_at_least`.
    pub time_lag_s: Option<f64>,
    pub time_lag_at_least: bool,
    pub status: Status,
    /// Share of Burrow's window filled.
    pub complete: f32,
    pub consumer: Option<String>,
    pub host: Option<String>,
}

/// The pipeline's own view, from its metrics endpoint.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct PipelineView {
    /// Paused partitions by reason.
    pub paused: BTreeMap<String, u64>,
    /// Records waiting in retry tiers (forwarded, not yet attempted back).
    pub retrying: u64,
    pub breaker_open: u64,
    pub dead_lettered: u64,
}

impl PipelineView {
    /// `PAUSED(buffer)×2 RETRYING 5 BREAKER_OPEN 1`, or `RUNNING`.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self
            .paused
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("PAUSED({r})×{n}"))
            .collect();
        if self.retrying > 0 {
            parts.push(format!("RETRYING {}", self.retrying));
        }
        if self.breaker_open > 0 {
            parts.push(format!("BREAKER_OPEN {}", self.breaker_open));
        }
        if parts.is_empty() {
            "RUNNING".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// A group's report.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct GroupLag {
    pub group: String,
    pub state: String,
    pub status: Status,
    pub total_lag: i64,
    /// Worst partition first.
    pub partitions: Vec<LagRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineView>,
}

struct Part {
    window: Window,
    table: timelag::Table,
    last_committed: Option<i64>,
}

/// Burrow windows and time-lag tables of one group, fed by samples.
pub(crate) struct Monitor {
    group: String,
    rules: Rules,
    intervals: usize,
    min_distance_ms: i64,
    parts: BTreeMap<TopicPartition, Part>,
}

fn now() -> (i64, f64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as i64, d.as_secs_f64())
}

impl Monitor {
    /// `intervals` commits per window; samples closer than half of
    /// `interval` replace the previous commit (Burrow's min-distance).
    pub fn new(group: &str, intervals: usize, interval: Duration, rules: Rules) -> Monitor {
        Monitor {
            group: group.to_owned(),
            rules,
            intervals,
            min_distance_ms: (interval.as_millis() / 2) as i64,
            parts: BTreeMap::new(),
        }
    }

    /// Describes the group once and returns the report at this sample.
    pub async fn sample(&mut self, admin: &Admin) -> Result<GroupLag> {
        let d = match admin.describe_group(&self.group).await {
            Ok(d) => d,
            Err(Error::UnknownGroup(_)) => {
                return Ok(GroupLag {
                    group: self.group.clone(),
                    state: "Dead".into(),
                    status: Status::NotFound,
                    total_lag: 0,
                    partitions: Vec::new(),
                    pipeline: None,
                })
            }
            Err(e) => return Err(e),
        };
        let (ms, s) = now();
        Ok(self.add(&d, ms, s))
    }

    /// Feeds one description taken at `now_ms` (= `now_s`).
    pub fn add(&mut self, d: &GroupDescription, now_ms: i64, now_s: f64) -> GroupLag {
        let hosts: BTreeMap<&str, &str> = d
            .members
            .iter()
            .map(|m| (m.member_id.as_str(), m.host.as_str()))
            .collect();
        let mut rows = Vec::new();
        for o in &d.offsets {
            let p = self
                .parts
                .entry(o.partition.clone())
                .or_insert_with(|| Part {
                    window: Window::new(self.intervals, self.min_distance_ms),
                    table: timelag::Table::new(60),
                    last_committed: None,
                });
            p.window.broker_offset(o.log_end);
            p.table.add(o.log_end, now_s);
            if let Some(c) = o.committed {
                if p.last_committed != Some(c) || o.owner.is_some() {
                    p.window.commit(c, now_ms);
                }
                p.last_committed = Some(c);
            }
            let e = p.window.evaluate(now_ms.div_euclid(1000), self.rules);
            let tl = o.committed.map(|c| p.table.lag(c, now_s));
            rows.push(LagRow {
                topic: o.partition.topic.clone(),
                partition: o.partition.partition,
                committed: o.committed,
                log_end: o.log_end,
                lag: o.lag,
                time_lag_s: tl.filter(|t| *t != TimeLag::Unknown).map(TimeLag::seconds),
                time_lag_at_least: matches!(tl, Some(TimeLag::AtLeast(_))),
                status: e.status,
                complete: e.complete,
                consumer: o.owner.clone(),
                host: o
                    .owner
                    .as_deref()
                    .and_then(|m| hosts.get(m))
                    .map(|h| (*h).to_owned()),
            });
        }
        rows.sort_by(|a, b| {
            b.status
                .cmp(&a.status)
                .then(b.lag.unwrap_or(0).cmp(&a.lag.unwrap_or(0)))
                .then((&a.topic, a.partition).cmp(&(&b.topic, b.partition)))
        });
        GroupLag {
            group: d.group.clone(),
            state: d.state.clone(),
            status: burrow::group_status(rows.iter().map(|r| r.status)),
            total_lag: rows.iter().filter_map(|r| r.lag).sum(),
            partitions: rows,
            pipeline: None,
        }
    }
}

/// The pipeline's pause reasons, tier backlog and breaker from a scrape.
pub(crate) fn pipeline_view(s: &prometheus_parse::Scrape) -> PipelineView {
    use prometheus_parse::Value;
    let num = |v: &Value| match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        _ => 0.0,
    };
    let mut v = PipelineView::default();
    let (mut fwd, mut att) = (0.0, 0.0);
    for m in &s.samples {
        let x = num(&m.value);
        match m.metric.as_str() {
            "kafka_ingest_pipeline_paused_partitions" => {
                let r = m.labels.get("reason").unwrap_or("unknown").to_owned();
                *v.paused.entry(r).or_default() += x as u64;
            }
            "kafka_ingest_pipeline_tier_forwarded_total" => fwd += x,
            "kafka_ingest_pipeline_tier_attempted_total" => att += x,
            "kafka_ingest_pipeline_breaker_open_partitions" => v.breaker_open += x as u64,
            "kafka_ingest_pipeline_dead_lettered_total" => v.dead_lettered += x as u64,
            _ => {}
        }
    }
    v.retrying = (fwd - att).max(0.0) as u64;
    v
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
}

/// The report as a terminal table.
pub(crate) fn render(g: &GroupLag) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "TOPIC",
        "PART",
        "COMMITTED",
        "LOG END",
        "LAG",
        "TIME LAG",
        "BURROW",
        "CONSUMER",
        "HOST",
    ]);
    for r in &g.partitions {
        let tl = match (r.time_lag_s, r.time_lag_at_least) {
            (Some(s), true) => TimeLag::AtLeast(s),
            (Some(s), false) => TimeLag::Seconds(s),
            (None, _) => TimeLag::Unknown,
        };
        t.add_row(vec![
            Cell::new(&r.topic),
            Cell::new(r.partition),
            Cell::new(opt(&r.committed)),
            Cell::new(r.log_end),
            Cell::new(opt(&r.lag)),
            Cell::new(tl.text()),
            Cell::new(r.status.name()),
            Cell::new(opt(&r.consumer)),
            Cell::new(opt(&r.host)),
        ]);
    }
    let pipeline = g
        .pipeline
        .as_ref()
        .map(|p| format!(" | pipeline: {}", p.text()))
        .unwrap_or_default();
    format!(
        "group {} ({}): {} | total lag {}{pipeline}\n{t}",
        g.group, g.state, g.status, g.total_lag
    )
}

pub(crate) async fn run(global: &Global, a: LagArgs) -> Result<ExitCode> {
    if a.samples == 0 || a.window == 0 {
        return Err(Error::InvalidArgument {
            message: "--samples and --window must be at least 1".into(),
        });
    }
    let client = global.client().await?;
    let admin = client.admin();
    let rules = Rules {
        allowed_lag: a.allowed_lag,
        minimum_complete: 0.0,
    };
    let mut m = Monitor::new(&a.group, a.window, a.interval, rules);
    let tty = std::io::stdout().is_terminal();
    let mut stop = crate::shutdown_signal();
    let endpoint = a.metrics.serve()?;
    let slot = endpoint.as_ref().map(|e| e.add_group());
    let mut n = 0;
    loop {
        let mut g = m.sample(&admin).await?;
        n += 1;
        if let Some(addr) = &a.pipeline_metrics {
            g.pipeline = match crate::prom::scrape(addr).await {
                Ok(s) => Some(pipeline_view(&s)),
                Err(e) => {
                    eprintln!("warning: {}", crate::settings::report(&e));
                    None
                }
            };
        }
        if let Some(s) = &slot {
            *s.lock().unwrap_or_else(|p| p.into_inner()) = Some(g.clone());
        }
        if a.watch || n >= a.samples {
            if a.json {
                let line =
                    serde_json::to_string(&g).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                crate::out!("{line}");
            } else {
                if a.watch && tty {
                    // Clear and redraw in place.
                    print!("\x1b[2J\x1b[H");
                }
                crate::out!("{}", render(&g));
            }
            if !a.watch {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(a.interval) => {}
            _ = &mut stop => break,
        }
    }
    client.close();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_ingest::{GroupMember, GroupOffset};

    fn desc(committed: i64, log_end: i64, owner: bool) -> GroupDescription {
        GroupDescription {
            group: "g".into(),
            group_type: "classic".into(),
            state: "Stable".into(),
            coordinator: 1,
            protocol: "range".into(),
            members: vec![GroupMember {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                host: "/127.0.0.1".into(),
                assignment: vec![],
            }],
            offsets: vec![GroupOffset {
                partition: TopicPartition::new("t", 0),
                committed: Some(committed),
                log_end,
                lag: Some(log_end - committed),
                owner: owner.then(|| "m1".to_owned()),
            }],
        }
    }

    #[test]
    fn an_unowned_partition_that_stops_committing_is_stop_then_ok_when_caught_up() {
        let mut m = Monitor::new("g", 10, Duration::from_secs(1), Rules::default());
        let g = m.add(&desc(50, 100, false), 1_000, 1.0);
        // Burrow: a single commit with lag is a stall (all offsets equal).
        assert_eq!(g.partitions[0].status, Status::Stall);
        let g = m.add(&desc(50, 100, false), 3_000, 3.0);
        assert_eq!(g.partitions[0].status, Status::Stop);
        assert_eq!(g.status, Status::Err);
        assert_eq!(g.partitions[0].host.as_deref(), None);
        let g = m.add(&desc(100, 100, true), 4_000, 4.0);
        assert_eq!(g.partitions[0].status, Status::Ok);
        assert_eq!(g.partitions[0].host.as_deref(), Some("/127.0.0.1"));
        assert_eq!(g.partitions[0].time_lag_s, Some(0.0));
    }

    #[test]
    fn an_owned_partition_committing_the_same_offset_with_lag_stalls() {
        let mut m = Monitor::new("g", 10, Duration::from_secs(1), Rules::default());
        for s in 1..=4 {
            m.add(&desc(50, 100 + s, true), s * 1000, s as f64);
        }
        let g = m.add(&desc(50, 105, true), 5_000, 5.0);
        assert_eq!(g.partitions[0].status, Status::Stall);
        // Offset 50 is older than the oldest LEO sample: a lower bound.
        assert!(g.partitions[0].time_lag_at_least);
        assert_eq!(g.partitions[0].time_lag_s, Some(4.0));
    }
}
