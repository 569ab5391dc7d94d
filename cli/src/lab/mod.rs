//! `kafka-ingest lab`: the seed's burst experiment in one command. Creates
//! the topics, starts `--consumers` pipeline members (the demo handler,
//! retry tiers, DLQ) in this process, runs `burst`, samples everything once
//! a second, waits until the group has caught up, checks the accounting
//! from the output and DLQ topics' record ids, and writes the report.

pub(crate) mod report;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use kafka_ingest::{Admin, Error, NewTopic, OffsetSpec, Producer, Result};
use kafka_ingest_pipeline::{Metrics, PipelineHandle};

use crate::burst::{self, Live, Plan, Profile, Rate};
use crate::lag::burrow::Rules;
use crate::lag::Monitor;
use crate::pipeline::PipelineArgs;
use crate::prom::MetricsArg;
use crate::Global;
use report::{Accounting, PartitionSample, Report, Sample};

#[derive(Args)]
pub(crate) struct LabArgs {
    /// Records to send.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Peak records per second, or `max` (one unpaced burst).
    #[arg(long, default_value = "max", value_parser = burst::parse_rate)]
    rate: Rate,
    /// Shape of the rate (with a numeric --rate).
    #[arg(long, value_enum, default_value = "spike")]
    profile: Profile,
    /// Pipeline members in the group.
    #[arg(long, default_value_t = 3)]
    consumers: usize,
    /// Simulated work per record (ms).
    #[arg(long, default_value_t = 2)]
    process_ms: u64,
    /// Fraction of records marked bad (dead-lettered at once).
    #[arg(long, default_value_t = 0.005, value_parser = burst::fraction)]
    bad: f64,
    /// Fraction that always fail (retried in place, then through the tiers, then dead-lettered).
    #[arg(long, default_value_t = 0.01, value_parser = burst::fraction)]
    simulate_error: f64,
    /// Fraction that fail 1-3 attempts, then succeed.
    #[arg(long, default_value_t = 0.02, value_parser = burst::fraction)]
    fail_times: f64,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Retry tiers after the in-place attempts.
    #[arg(long, default_value = "1s,2s")]
    retry_tiers: String,
    /// Handlers running at once per member.
    #[arg(long, default_value_t = 16)]
    max_in_flight: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// RNG seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Topic name (default lab-<unix ms>); its -out, -dlt and tier topics are created too
    /// (records already in them count as duplicates).
    #[arg(long)]
    topic: Option<String>,
    /// Report directory.
    #[arg(long, default_value = "lab-report")]
    out: PathBuf,
    /// Give up waiting for the group to catch up after this long.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    metrics: MetricsArg,
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Creates `topics` with `partitions` each (an existing one is fine).
async fn create_topics(admin: &Admin, topics: &[String], partitions: i32) -> Result<()> {
    let new = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, 1))
        .collect();
    let outcomes = admin.create_topics(new).await?;
    for (topic, r) in outcomes {
        if let Err(e) = r {
            if e.code().is_none_or(|c| c.name() != "TopicAlreadyExists") {
                return Err(Error::InvalidArgument {
                    message: format!("creating {topic}: {e}"),
                });
            }
        }
    }
    Ok(())
}

/// The `id` of every record of `topic` (all partitions, from the start).
async fn read_ids(g: &Global, admin: &Admin, topic: &str, limit: Duration) -> Result<Vec<u64>> {
    let read = async {
        let mut reader =
            crate::dlq::Reader::open(g, admin, topic, |_| OffsetSpec::Earliest).await?;
        let mut ids = Vec::new();
        while let Some(batch) = reader.next().await? {
            ids.extend(batch.iter().filter_map(|r| {
                let v: serde_json::Value = serde_json::from_slice(r.value.as_deref()?).ok()?;
                v["id"].as_u64()
            }));
        }
        reader.close().await;
        Ok(ids)
    };
    tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
        Err(Error::InvalidArgument {
            message: format!("reading {topic} did not reach its end within {limit:?}"),
        })
    })
}

/// Sums of the members' metrics.
fn totals(ms: &[Metrics]) -> Metrics {
    let mut t = Metrics::default();
    for m in ms {
        t.received += m.received;
        t.processed += m.processed;
        t.retried += m.retried;
        t.dead_lettered += m.dead_lettered;
        t.in_flight += m.in_flight;
        t.buffered_bytes += m.buffered_bytes;
        t.buffered_records += m.buffered_records;
        for (r, n) in &m.paused {
            *t.paused.entry(*r).or_default() += n;
        }
        for tier in &m.tiers {
            match t.tiers.iter_mut().find(|x| x.topic == tier.topic) {
                Some(x) => {
                    x.forwarded += tier.forwarded;
                    x.attempted += tier.attempted;
                }
                None => t.tiers.push(tier.clone()),
            }
        }
    }
    t
}

fn in_retry(m: &Metrics) -> u64 {
    m.tiers
        .iter()
        .map(|t| t.forwarded.saturating_sub(t.attempted))
        .sum()
}

/// A tier topic's name without the source topic's: `retry-1000`.
fn short(source: &str, topic: &str) -> String {
    topic
        .strip_prefix(source)
        .and_then(|t| t.strip_prefix('-'))
        .unwrap_or(topic)
        .to_owned()
}

struct Sampler {
    live: Arc<Live>,
    handles: Vec<PipelineHandle>,
    producer: Producer,
    monitor: Monitor,
    topic: String,
    start: Instant,
    last: Option<(f64, u64, u64)>,
    throttle_before: u64,
}

impl Sampler {
    fn throttle_total(&self) -> u64 {
        let consumers: u64 = self
            .handles
            .iter()
            .filter_map(|h| h.consumer())
            .map(|c| c.metrics().throttle.throttle_time_ms_total)
            .sum();
        self.producer.metrics().throttle.throttle_time_ms_total + consumers
    }

    /// One sample; also whether the group has caught up.
    async fn sample(&mut self, admin: &Admin) -> (Sample, bool) {
        let second = self.live.tick();
        let t = self.start.elapsed().as_secs_f64();
        let ms: Vec<Metrics> = self.handles.iter().map(|h| h.metrics()).collect();
        let m = totals(&ms);
        let (_, acked, _) = self.live.totals();
        let (dt, d_acked, d_processed) = match self.last {
            Some((t0, a0, p0)) => (t - t0, acked - a0, m.processed.saturating_sub(p0)),
            None => (t, acked, m.processed),
        };
        self.last = Some((t, acked, m.processed));
        let pm = self.producer.metrics();
        let throttle = self.throttle_total();
        let mut s = Sample {
            t,
            produced_per_s: d_acked as f64 / dt.max(1e-3),
            processed_per_s: d_processed as f64 / dt.max(1e-3),
            produced: acked,
            processed: m.processed,
            dead_lettered: m.dead_lettered,
            retried: m.retried,
            tiers: m
                .tiers
                .iter()
                .map(|x| (short(&self.topic, &x.topic), x.forwarded))
                .collect(),
            paused: m
                .paused
                .iter()
                .map(|(r, n)| (r.to_string(), *n as u64))
                .collect(),
            producer_buffer_bytes: pm.buffer_bytes_used,
            waiting_senders: pm.waiting_senders,
            pipeline_buffered_bytes: m.buffered_bytes as u64,
            throttle_ms: throttle - self.throttle_before,
            latency: (second.corrected.count > 0).then_some([
                second.corrected.p50,
                second.corrected.p99,
                second.corrected.p999,
                second.corrected.max,
                second.uncorrected.p99,
            ]),
            ..Sample::default()
        };
        self.throttle_before = throttle;
        let mut caught_up = false;
        match self.monitor.sample(admin).await {
            Ok(g) => {
                s.group_status = Some(g.status);
                for p in &g.partitions {
                    let x = PartitionSample {
                        lag: p.lag.unwrap_or(p.log_end),
                        time_lag_s: p.time_lag_s.unwrap_or(0.0),
                        status: p.status,
                    };
                    if p.topic == self.topic {
                        s.partitions.insert(format!("p{}", p.partition), x);
                    } else {
                        let tier = short(&self.topic, &p.topic);
                        s.tier_partitions
                            .insert(format!("{tier} p{}", p.partition), x);
                    }
                }
                let all_committed = !s.partitions.is_empty()
                    && g.partitions.iter().all(|p| p.lag.unwrap_or(p.log_end) == 0);
                caught_up = all_committed
                    && in_retry(&m) == 0
                    && m.in_flight == 0
                    && m.buffered_records == 0;
            }
            Err(e) => eprintln!(
                "warning: sampling the group: {}",
                crate::settings::report(&e)
            ),
        }
        (s, caught_up)
    }
}

impl LabArgs {
    /// The lab's defaults with `args` on top (e.g. `["--records", "5000"]`),
    /// for callers other than the command line (the demo).
    pub(crate) fn with(args: &[&str]) -> std::result::Result<LabArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            lab: LabArgs,
        }
        let argv = std::iter::once("lab").chain(args.iter().copied());
        Ok(<Cmd as clap::Parser>::try_parse_from(argv)?.lab)
    }
}

/// How a lab run ended.
pub(crate) struct Outcome {
    pub accounting: Accounting,
    pub caught_up: bool,
    pub report: PathBuf,
}

pub(crate) async fn run(g: &Global, a: LabArgs) -> Result<ExitCode> {
    let o = experiment(g, a).await?;
    Ok(if o.accounting.identity_holds && o.caught_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the experiment, writes the report and prints the accounting.
pub(crate) async fn experiment(g: &Global, a: LabArgs) -> Result<Outcome> {
    let topic = a
        .topic
        .clone()
        .unwrap_or_else(|| format!("lab-{}", unix_ms()));
    let group = format!("{topic}-group");
    let tiers: Vec<String> = a
        .retry_tiers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut topics = vec![
        topic.clone(),
        format!("{topic}-out"),
        format!("{topic}-dlt"),
    ];
    for t in &tiers {
        let d = humantime::parse_duration(t).map_err(|e| Error::InvalidArgument {
            message: format!("--retry-tiers {t}: {e}"),
        })?;
        topics.push(format!("{topic}-retry-{}", d.as_millis()));
    }
    let client = g.client().await?;
    let admin = client.admin();
    create_topics(&admin, &topics, a.partitions).await?;
    eprintln!(
        "lab: topic {topic}, group {group}, {} members, {} records",
        a.consumers, a.records
    );

    let endpoint = a.metrics.serve()?;
    let mut handles = Vec::new();
    let mut runs = Vec::new();
    let (max_in_flight, process_ms) = (a.max_in_flight.to_string(), a.process_ms.to_string());
    let out_topic = format!("{topic}-out");
    for i in 0..a.consumers.max(1) {
        let args = PipelineArgs::parse(&[
            "--topic",
            &topic,
            "--group",
            &group,
            "--retry-tiers",
            &a.retry_tiers,
            "--max-attempts",
            "3",
            "--backoff-ms",
            "10",
            "--max-backoff-ms",
            "100",
            "--max-in-flight",
            &max_in_flight,
            "--process-ms",
            &process_ms,
            "--output-topic",
            &out_topic,
            "--commit-interval-ms",
            "500",
        ])?;
        // Events stay quiet: the samples show their effect.
        let member = crate::pipeline::build(g, &args, |_| {}).await?;
        let h = member.pipeline.handle();
        if let Some(e) = &endpoint {
            e.add_pipeline(&format!("member-{i}"), &h);
        }
        handles.push(h);
        runs.push(tokio::spawn(async move {
            let producer = member.producer.clone();
            let r = member.run().await;
            producer.close(Duration::from_secs(10)).await;
            r
        }));
    }
    // Let the members join before the burst, so the partitions spread out.
    let joined = Instant::now();
    while joined.elapsed() < Duration::from_secs(30) {
        let assigned: usize = handles
            .iter()
            .map(|h| h.assignment().iter().filter(|tp| tp.topic == topic).count())
            .sum();
        if assigned >= a.partitions as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let producer = g
        .reaching(g.producer_builder(&[("linger.ms", "5")]).build())
        .await?;
    if let Some(e) = &endpoint {
        e.add_producer("burst", &producer);
    }
    let plan = Plan {
        records: Some(a.records),
        rate: a.rate,
        size: a.size,
        keys: a.keys,
        partitions: None,
        profile: a.profile,
        duration: None,
        bad: a.bad,
        simulate_error: a.simulate_error,
        fail_times: a.fail_times,
        seed: a.seed,
    };
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let burst_done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let mut s = Sampler {
            live: live.clone(),
            handles: handles.clone(),
            producer: producer.clone(),
            monitor: Monitor::new(&group, 10, Duration::from_secs(1), Rules::default()),
            topic: topic.clone(),
            start,
            last: None,
            throttle_before: 0,
        };
        let (done, limit) = (burst_done.clone(), a.timeout);
        let admin = client.admin();
        // A baseline at 0 s, before the first record.
        let (baseline, _) = s.sample(&admin).await;
        tokio::spawn(async move {
            let mut samples = vec![baseline];
            let mut caught_up_since: Option<usize> = None;
            let mut t = 0;
            loop {
                tokio::time::sleep_until((start + Duration::from_secs(t + 1)).into()).await;
                t += 1;
                let (sample, caught_up) = s.sample(&admin).await;
                eprintln!(
                    "lab {:>4.0}s produced {:>7} processed {:>7} dead-lettered {:>5} lag {:>7} group {}",
                    sample.t,
                    sample.produced,
                    sample.processed,
                    sample.dead_lettered,
                    sample.partitions.values().map(|p| p.lag).sum::<i64>(),
                    sample.group_status.map_or("-", |st| st.name()),
                );
                samples.push(sample);
                let finished = done.load(Ordering::Acquire);
                caught_up_since = match (finished && caught_up, caught_up_since) {
                    (true, None) => Some(samples.len()),
                    (true, since) => since,
                    (false, _) => None,
                };
                // Two caught-up samples in a row, so the charts end flat.
                if caught_up_since.is_some_and(|i| samples.len() > i) {
                    return (samples, true);
                }
                if start.elapsed() > limit {
                    return (samples, false);
                }
            }
        })
    };
    let marks = burst::send(
        &producer,
        &topic,
        &plan,
        &live,
        Box::pin(std::future::pending()),
    )
    .await;
    burst_done.store(true, Ordering::Release);
    let sent_elapsed = start.elapsed();
    let (samples, caught_up) = sampler.await.map_err(|e| Error::InvalidArgument {
        message: format!("the sampler failed: {e}"),
    })?;
    let elapsed = start.elapsed();
    let marks = marks?;
    let summary = burst::Summary::new(&topic, &plan, &live, marks, sent_elapsed, &producer);
    producer.close(Duration::from_secs(10)).await;
    let finals: Vec<Metrics> = handles.iter().map(|h| h.metrics()).collect();
    for h in &handles {
        h.shutdown();
    }
    for r in runs {
        match r.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("warning: a pipeline member failed: {e}"),
            Err(e) => eprintln!("warning: a pipeline member panicked: {e}"),
        }
    }
    if !caught_up {
        eprintln!("lab: the group did not catch up within {:?}", a.timeout);
    }

    // Accounting from the records themselves.
    let read_limit = Duration::from_secs(60);
    let out_ids = read_ids(g, &admin, &out_topic, read_limit).await?;
    let dlq_ids = read_ids(g, &admin, &format!("{topic}-dlt"), read_limit).await?;
    client.close();
    let failed: BTreeSet<u64> = live.failed_ids().into_iter().collect();
    let produced: BTreeSet<u64> = (0..summary.sent).filter(|i| !failed.contains(i)).collect();
    let out_set: BTreeSet<u64> = out_ids.iter().copied().collect();
    let dlq_set: BTreeSet<u64> = dlq_ids.iter().copied().collect();
    let seen: BTreeSet<u64> = out_set.union(&dlq_set).copied().collect();
    let both = out_set.intersection(&dlq_set).count() as u64;
    let acc = Accounting {
        produced: produced.len() as u64,
        processed: out_set.len() as u64,
        dead_lettered: dlq_set.len() as u64,
        in_retry: in_retry(&totals(&finals)),
        duplicates: (out_ids.len() - out_set.len()) as u64
            + (dlq_ids.len() - dlq_set.len()) as u64
            + both,
        lost: produced.difference(&seen).count() as u64,
        unexpected: seen.difference(&produced).count() as u64,
        expected_dead_letters: marks.bad + marks.simulate_error,
        identity_holds: false,
    };
    let acc = Accounting {
        identity_holds: acc.produced == acc.processed + acc.dead_lettered - both + acc.in_retry
            && acc.in_retry == 0
            && acc.lost == 0,
        ..acc
    };
    let p = |x: &burst::Percentiles| [x.p50, x.p90, x.p99, x.p999, x.p9999, x.max];
    let (c, u) = (p(&summary.corrected_ms), p(&summary.uncorrected_ms));
    let latency_total = ["p50", "p90", "p99", "p99.9", "p99.99", "max"]
        .iter()
        .enumerate()
        .map(|(i, l)| ((*l).to_owned(), c[i], u[i]))
        .collect();
    let rate = match a.rate {
        Rate::Max => "max".to_owned(),
        Rate::PerSecond(r) => format!("{r}"),
    };
    let settings: Vec<(String, String)> = [
        ("topic", topic.clone()),
        ("records", a.records.to_string()),
        ("rate", rate),
        ("profile", format!("{:?}", a.profile).to_lowercase()),
        ("consumers", a.consumers.to_string()),
        ("partitions", a.partitions.to_string()),
        ("process ms", a.process_ms.to_string()),
        ("bad", a.bad.to_string()),
        ("simulate error", a.simulate_error.to_string()),
        ("fail times", a.fail_times.to_string()),
        ("retry tiers", a.retry_tiers.clone()),
        ("seed", a.seed.to_string()),
        (
            "sent in",
            format!(
                "{:.2} s ({:.0} records/s)",
                summary.elapsed_s, summary.records_per_s
            ),
        ),
        ("send failures", summary.failed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let r = Report {
        title: format!(
            "kafka-ingest burst lab: {} records, {} members",
            a.records, a.consumers
        ),
        settings,
        accounting: acc.clone(),
        latency_total,
        elapsed_s: elapsed.as_secs_f64(),
        samples,
    };
    let html = report::write(&a.out, &r).map_err(|e| Error::InvalidArgument {
        message: format!("writing the report to {}: {e}", a.out.display()),
    })?;
    crate::out!("{}", acc.line());
    crate::out!("report: {}", html.display());
    Ok(Outcome {
        accounting: acc,
        caught_up,
        report: html,
    })
}
