//! `kafka-ingest burst`: an open-loop load generator. Sends are scheduled
//! by their *intended* time (from the rate profile); latency is recorded
//! both from the intended time (corrected for coordinated omission, as
//! OpenMessaging Benchmark does) and from the actual send, in
//! HdrHistograms, per second and in total. Failed sends are counted by
//! error kind.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use kafka_ingest::{Error, NewTopic, Producer, ProducerRecord, Result};

use crate::prom::MetricsArg;
use crate::Global;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Profile {
    /// The rate throughout.
    Steady,
    /// A quarter of the rate for the first half, then the full rate.
    Step,
    /// A tenth of the rate, with the full rate for the middle fifth.
    Spike,
    /// Between a tenth and the full rate, two periods over the duration.
    Sine,
}

/// A records-per-second rate, or `max` (unpaced).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rate {
    PerSecond(f64),
    Max,
}

pub(crate) fn parse_rate(s: &str) -> std::result::Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
        _ => Err(format!("`{s}` is not a positive rate or `max`")),
    }
}

pub(crate) fn fraction(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction between 0 and 1")),
    }
}

/// What to send; shared by `burst` and `lab`.
#[derive(Args, Clone, Debug)]
pub(crate) struct Plan {
    /// Records to send (with --duration: at most this many).
    #[arg(long)]
    pub records: Option<u64>,
    /// Peak records per second, or `max` (unpaced: one burst, the profile is ignored).
    #[arg(long, default_value = "max", value_parser = parse_rate)]
    pub rate: Rate,
    /// Approximate size of each JSON value in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Distinct keys (`k0`..); 0 sends null keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Shape of the rate over the run.
    #[arg(long, value_enum, default_value = "steady")]
    pub profile: Profile,
    /// How long to send (e.g. 10s); with a rate and no --records this sets the count.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Fraction of records marked `"bad": true` (the demo handler dead-letters them at once).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub bad: f64,
    /// Fraction marked `"simulate_error": true` (fail every attempt: retried, then dead-lettered).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub simulate_error: f64,
    /// Fraction with `"fail_times": 1..=3` (fail that many attempts, then succeed).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub fail_times: f64,
    /// RNG seed: the same seed sends the same keys, values and marks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args)]
pub(crate) struct BurstArgs {
    /// Topic to write to.
    #[arg(long, short)]
    topic: String,
    #[command(flatten)]
    plan: Plan,
    /// Print one JSON summary on stdout (per-second lines stay on stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    metrics: MetricsArg,
}

impl Plan {
    /// Rate at `t` seconds into a run of `span` seconds (peak `r`).
    fn rate_at(&self, r: f64, t: f64, span: f64) -> f64 {
        let x = if span > 0.0 { t / span } else { 0.0 };
        match self.profile {
            Profile::Steady => r,
            Profile::Step => {
                if x < 0.5 {
                    r / 4.0
                } else {
                    r
                }
            }
            Profile::Spike => {
                if (0.4..0.6).contains(&x) {
                    r
                } else {
                    r / 10.0
                }
            }
            Profile::Sine => r * (0.55 - 0.45 * (x * 4.0 * std::f64::consts::PI).cos()),
        }
    }

    /// The mean rate of the profile relative to its peak.
    fn mean_factor(&self) -> f64 {
        match self.profile {
            Profile::Steady => 1.0,
            Profile::Step => 0.625,
            Profile::Spike => 0.28,
            Profile::Sine => 0.55,
        }
    }

    /// (records, span in seconds); the span is `None` when unpaced.
    fn shape(&self) -> Result<(u64, Option<f64>)> {
        let invalid = |m: &str| Error::InvalidArgument { message: m.into() };
        match (self.rate, self.records, self.duration) {
            (Rate::Max, Some(n), _) => Ok((n, None)),
            (Rate::Max, None, _) => Err(invalid("--rate max needs --records")),
            (Rate::PerSecond(r), Some(n), None) => {
                Ok((n, Some(n as f64 / (r * self.mean_factor()))))
            }
            (Rate::PerSecond(r), n, Some(d)) => {
                let span = d.as_secs_f64();
                let planned = (r * self.mean_factor() * span).round() as u64;
                Ok((n.map_or(planned, |n| n.min(planned)), Some(span)))
            }
            (Rate::PerSecond(_), None, None) => {
                Err(invalid("a rate needs --records or --duration"))
            }
        }
    }
}

/// Which marks a record carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Marks {
    pub bad: u64,
    pub simulate_error: u64,
    pub fail_times: u64,
}

/// Builds the seeded records.
struct Gen {
    rng: fastrand::Rng,
    pad: String,
}

impl Gen {
    fn new(seed: u64, size: usize) -> Gen {
        let mut rng = fastrand::Rng::with_seed(seed);
        let pad = (0..size).map(|_| rng.alphanumeric()).collect();
        Gen { rng, pad }
    }

    /// (key, value) of record `id`; counts its marks.
    fn record(
        &mut self,
        plan: &Plan,
        id: u64,
        ts_ms: i64,
        marks: &mut Marks,
    ) -> (Option<String>, String) {
        let key = (plan.keys > 0).then(|| format!("k{}", self.rng.u64(0..plan.keys)));
        let mut extra = String::new();
        let roll = self.rng.f64();
        if roll < plan.bad {
            extra.push_str(r#","bad":true"#);
            marks.bad += 1;
        } else if roll < plan.bad + plan.simulate_error {
            extra.push_str(r#","simulate_error":true"#);
            marks.simulate_error += 1;
        } else if roll < plan.bad + plan.simulate_error + plan.fail_times {
            extra.push_str(&format!(r#","fail_times":{}"#, self.rng.u32(1..=3)));
            marks.fail_times += 1;
        }
        let head = format!(r#"{{"id":{id},"ts":{ts_ms}{extra},"value":""#);
        let room = plan.size.saturating_sub(head.len() + 2);
        let start = self.rng.usize(0..self.pad.len().max(1));
        let mut value = head;
        value.extend(self.pad.chars().cycle().skip(start).take(room));
        value.push_str("\"}");
        (key, value)
    }
}

fn hist() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits: valid for every input.
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Latency percentiles in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            p9999: ms(0.9999),
            max: h.max() as f64 / 1000.0,
        }
    }
}

/// Counters of one interval (a second, or the whole run).
#[derive(Debug, Clone)]
struct Interval {
    sent: u64,
    acked: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            sent: 0,
            acked: 0,
            failed: 0,
            errors: BTreeMap::new(),
            corrected: hist(),
            uncorrected: hist(),
        }
    }
}

impl Interval {
    fn fail(&mut self, kind: String) {
        self.failed += 1;
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// One second of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Second {
    /// Seconds since the start (the end of this interval).
    pub t: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    /// From the intended send time.
    pub corrected: Percentiles,
    /// From the actual send.
    pub uncorrected: Percentiles,
}

/// The run's live counters: the current second and the total.
#[derive(Debug, Default)]
pub(crate) struct Live {
    state: Mutex<(Interval, Interval)>,
    seconds: Mutex<Vec<Second>>,
    /// Ids of the records that failed (for the lab's accounting).
    failed_ids: Mutex<Vec<u64>>,
}

impl Live {
    fn with<R>(&self, f: impl FnOnce(&mut Interval, &mut Interval) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (cur, total) = &mut *g;
        f(cur, total)
    }

    /// Closes the current second and returns it (numbered from 1).
    pub fn tick(&self) -> Second {
        let cur = self.with(|cur, _| std::mem::take(cur));
        let mut seconds = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        let t = seconds.len() as u64 + 1;
        let s = Second {
            t,
            sent: cur.sent,
            acked: cur.acked,
            failed: cur.failed,
            errors: cur.errors,
            corrected: Percentiles::of(&cur.corrected),
            uncorrected: Percentiles::of(&cur.uncorrected),
        };
        seconds.push(s.clone());
        s
    }

    /// (sent, acked, failed) so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.with(|_, t| (t.sent, t.acked, t.failed))
    }

    /// Ids of the records that failed, in no particular order.
    pub fn failed_ids(&self) -> Vec<u64> {
        self.failed_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed(&self, id: u64, e: &Error) {
        self.with(|cur, total| {
            cur.fail(e.kind());
            total.fail(e.kind());
        });
        self.failed_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
    }

    fn outcome(
        &self,
        id: u64,
        intended: Instant,
        actual: Instant,
        r: &Result<kafka_ingest::RecordMetadata>,
    ) {
        if let Err(e) = r {
            return self.failed(id, e);
        }
        let now = Instant::now();
        let c = now.saturating_duration_since(intended).as_micros() as u64;
        let u = now.saturating_duration_since(actual).as_micros() as u64;
        self.with(|cur, total| {
            for i in [cur, total] {
                i.acked += 1;
                // `record` resizes; `saturating_record` would clamp at the
                // initial 2048 µs range.
                let _ = i.corrected.record(c);
                let _ = i.uncorrected.record(u);
            }
        });
    }
}

/// The report of a finished run.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Summary {
    pub topic: String,
    pub profile: Profile,
    pub seed: u64,
    /// Records handed to the producer.
    pub sent: u64,
    /// Acknowledged by the broker.
    pub acked: u64,
    /// Failed, by kind in `errors` (never dropped from the report).
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub marks: Marks,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub corrected_ms: Percentiles,
    pub uncorrected_ms: Percentiles,
    pub producer_retries: u64,
    pub throttle_ms: u64,
    pub seconds: Vec<Second>,
}

/// Creates the topic with `partitions` unless it exists.
pub(crate) async fn ensure_topic(global: &Global, topic: &str, partitions: i32) -> Result<()> {
    let client = global.client().await?;
    let r = client
        .admin()
        .create_topic(NewTopic::new(topic, partitions, 1))
        .await;
    client.close();
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code().is_some_and(|c| c.name() == "TopicAlreadyExists") => Ok(()),
        Err(e) => Err(e),
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends the plan's records on `producer`, recording into `live`; returns
/// the marks sent. Stops early when `stop` resolves.
pub(crate) async fn send(
    producer: &Producer,
    topic: &str,
    plan: &Plan,
    live: &Arc<Live>,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) -> Result<Marks> {
    let (n, span) = plan.shape()?;
    let peak = match plan.rate {
        Rate::PerSecond(r) => r,
        Rate::Max => 0.0,
    };
    let mut gen = Gen::new(plan.seed, plan.size);
    let mut marks = Marks::default();
    let (start, start_wall) = (Instant::now(), wall_ms());
    let mut t = 0.0f64; // intended offset of the next record, in seconds
    for id in 0..n {
        let intended = match span {
            Some(span) => {
                if t >= span {
                    break;
                }
                let at = start + Duration::from_secs_f64(t);
                t += 1.0 / plan.rate_at(peak, t, span).max(1e-3);
                // Sleep only when more than a millisecond ahead; behind, send at once.
                if at > Instant::now() + Duration::from_millis(1) {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = &mut stop => break,
                    }
                }
                at
            }
            None => Instant::now(),
        };
        let ts = start_wall + intended.duration_since(start).as_millis() as i64;
        let (key, value) = gen.record(plan, id, ts, &mut marks);
        let mut rec = ProducerRecord::new(topic).value(value).timestamp(ts);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        let actual = Instant::now();
        // Sent up to a millisecond early (timer granularity): the delay
        // from the schedule then starts at the actual send.
        let intended = intended.min(actual);
        live.with(|cur, total| {
            cur.sent += 1;
            total.sent += 1;
        });
        let l = live.clone();
        let sent = producer
            .send_with_callback(rec, move |r| l.outcome(id, intended, actual, &r))
            .await;
        if let Err(e) = sent {
            live.failed(id, &e);
            if matches!(e, Error::Closed) {
                break;
            }
        }
    }
    // Callbacks of everything sent have run once this returns.
    producer.flush().await?;
    Ok(marks)
}

impl Summary {
    pub(crate) fn new(
        topic: &str,
        plan: &Plan,
        live: &Live,
        marks: Marks,
        elapsed: Duration,
        p: &Producer,
    ) -> Summary {
        let seconds = live
            .seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let m = p.metrics();
        live.with(|_, total| Summary {
            topic: topic.to_owned(),
            profile: plan.profile,
            seed: plan.seed,
            sent: total.sent,
            acked: total.acked,
            failed: total.failed,
            errors: total.errors.clone(),
            marks,
            elapsed_s: elapsed.as_secs_f64(),
            records_per_s: total.acked as f64 / elapsed.as_secs_f64().max(1e-9),
            corrected_ms: Percentiles::of(&total.corrected),
            uncorrected_ms: Percentiles::of(&total.uncorrected),
            producer_retries: m.retries,
            throttle_ms: m.throttle.throttle_time_ms_total,
            seconds,
        })
    }

    fn text(&self) -> String {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, p99.99 {:.2}, max {:.2}",
                x.p50, x.p90, x.p99, x.p999, x.p9999, x.max
            )
        };
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} records sent, {} acknowledged, {} failed ({errors}) in {:.2} s: {:.1} records/s\n\
             latency from intended send (corrected): {}\n\
             latency from actual send:                {}\n\
             producer retries {}, broker throttle {} ms",
            self.sent,
            self.acked,
            self.failed,
            self.elapsed_s,
            self.records_per_s,
            p(&self.corrected_ms),
            p(&self.uncorrected_ms),
            self.producer_retries,
            self.throttle_ms
        )
    }
}

fn second_line(s: &Second) -> String {
    format!(
        "{:>4}s sent {:>7} acked {:>7} failed {:>5} | corrected p50 {:.1} p99 {:.1} max {:.1} ms | actual p50 {:.1} p99 {:.1} max {:.1} ms",
        s.t,
        s.sent,
        s.acked,
        s.failed,
        s.corrected.p50,
        s.corrected.p99,
        s.corrected.max,
        s.uncorrected.p50,
        s.uncorrected.p99,
        s.uncorrected.max
    )
}

pub(crate) async fn run(global: &Global, a: BurstArgs) -> Result<ExitCode> {
    let (n, _) = a.plan.shape()?;
    if let Some(p) = a.plan.partitions {
        ensure_topic(global, &a.topic, p).await?;
    }
    let producer = global
        .reaching(global.producer_builder(&[("linger.ms", "5")]).build())
        .await?;
    let endpoint = a.metrics.serve()?;
    if let Some(e) = &endpoint {
        e.add_producer("burst", &producer);
    }
    let live = Arc::new(Live::default());
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(n);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} acked {msg} [{elapsed_precise}] {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let start = Instant::now();
    let reporter = {
        let (live, bar) = (live.clone(), bar.clone());
        tokio::spawn(async move {
            let mut t = 0;
            loop {
                tokio::time::sleep_until((start + Duration::from_secs(t + 1)).into()).await;
                t += 1;
                let s = live.tick();
                let (sent, acked, failed) = live.totals();
                match &bar {
                    Some(b) => {
                        b.set_position(sent);
                        b.set_message(format!(
                            "{acked}, failed {failed}, p99 {:.1} ms",
                            s.corrected.p99
                        ));
                    }
                    None => eprintln!("{}", second_line(&s)),
                }
            }
        })
    };
    let stop = Box::pin(async {
        crate::shutdown_signal().await;
    });
    let marks = send(&producer, &a.topic, &a.plan, &live, stop).await;
    let elapsed = start.elapsed();
    reporter.abort();
    // The last partial second.
    let s = live.tick();
    if bar.is_none() && (s.sent > 0 || s.acked > 0 || s.failed > 0) {
        eprintln!("{}", second_line(&s));
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let marks = marks?;
    let summary = Summary::new(&a.topic, &a.plan, &live, marks, elapsed, &producer);
    producer.close(Duration::from_secs(10)).await;
    if a.json {
        crate::out!(
            "{}",
            serde_json::to_string(&summary).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        crate::out!("{}", summary.text());
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        plan: Plan,
    }

    fn plan(args: &str) -> Plan {
        P::parse_from(std::iter::once("p").chain(args.split_whitespace())).plan
    }

    #[test]
    fn shapes() {
        assert_eq!(
            plan("--rate 20000 --duration 10s").shape().unwrap(),
            (200_000, Some(10.0))
        );
        assert_eq!(
            plan("--rate 1000 --records 500").shape().unwrap(),
            (500, Some(0.5))
        );
        assert_eq!(plan("--records 7").shape().unwrap(), (7, None));
        assert!(plan("--rate max").shape().is_err());
        assert!(plan("--rate 10").shape().is_err());
        // A spike profile averages 0.28 of its peak.
        assert_eq!(
            plan("--rate 1000 --duration 10s --profile spike")
                .shape()
                .unwrap()
                .0,
            2800
        );
    }

    #[test]
    fn the_same_seed_makes_the_same_records() {
        let p = plan("--records 100 --bad 0.1 --simulate-error 0.1 --fail-times 0.1 --size 80");
        let run = || {
            let mut g = Gen::new(p.seed, p.size);
            let mut m = Marks::default();
            let recs: Vec<_> = (0..100).map(|i| g.record(&p, i, 5, &mut m)).collect();
            (recs, m)
        };
        let (a, ma) = run();
        let (b, mb) = run();
        assert_eq!(a, b);
        assert_eq!(ma, mb);
        assert!(
            ma.bad > 0 && ma.simulate_error > 0 && ma.fail_times > 0,
            "{ma:?}"
        );
        for (_, v) in &a {
            let j: serde_json::Value = serde_json::from_str(v).unwrap();
            assert!(j["id"].is_u64() && j["ts"] == 5);
            assert!(v.len() >= 78 && v.len() <= 90, "{} bytes: {v}", v.len());
        }
        let bad = a
            .iter()
            .filter(|(_, v)| v.contains(r#""bad":true"#))
            .count() as u64;
        assert_eq!(bad, ma.bad);
    }

    #[test]
    fn profiles_peak_at_the_rate() {
        let at = |prof: &str, x: f64| {
            plan(&format!("--rate 100 --duration 10s --profile {prof}")).rate_at(
                100.0,
                x * 10.0,
                10.0,
            )
        };
        assert_eq!(at("steady", 0.3), 100.0);
        assert_eq!(at("step", 0.2), 25.0);
        assert_eq!(at("step", 0.7), 100.0);
        assert_eq!(at("spike", 0.1), 10.0);
        assert_eq!(at("spike", 0.5), 100.0);
        assert!((at("sine", 0.0) - 10.0).abs() < 1e-9);
        assert!((at("sine", 0.25) - 100.0).abs() < 1e-9);
    }
}
