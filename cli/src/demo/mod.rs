//! `kafka-ingest demo` (README command 1, through `scripts/demo`): the
//! seed's whole story against the local broker and registry, every figure
//! measured in this run:
//! 1. an idempotent, batching producer writes IngestEvent v1;
//! 2. a consumer group reads them with manual commits while one member
//!    leaves and the others take over its partitions;
//! 3. schema v2 is registered and produced, read together with v1, and an
//!    incompatible v3 is refused;
//! 4. a burst through the pipeline: pauses, retries, DLQ, a rate limit;
//! 5. the groups' lag and Burrow status, and a short burst lab whose report
//!    the user can open.
//!
//! Exits 1 if a record was lost or processed twice.

mod burst;
mod events;
mod group;
mod lag;
mod producer;
mod schema;

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use kafka_ingest::schema_registry::{self, SchemaRegistryClient, SchemaRegistryConfig};
use kafka_ingest::{Admin, Client, NewTopic, Result};

use crate::{out, Global};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// IngestEvents written with schema v1 (parts 1 and 2), at least 100.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..))]
    events: u64,
    /// IngestEvents written with schema v2 (part 3), at least 1.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    v2_events: u64,
    /// Records of the pipeline burst (part 4), at least 50; 1 in 25 is poison.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(50..))]
    burst: u64,
    /// Records of the burst lab (part 5), at least 1000.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1000..))]
    lab_records: u64,
    /// Where the burst lab writes report.html, data.csv and summary.json.
    #[arg(long, default_value = "lab-report")]
    report_dir: std::path::PathBuf,
    /// Also print the summary as one JSON object, on the last line.
    #[arg(long)]
    json: bool,
}

/// What stops the demo before its summary.
#[derive(Debug)]
pub(crate) enum Failure {
    Kafka(kafka_ingest::Error),
    Registry(schema_registry::Error),
    Pipeline(kafka_ingest_pipeline::Error),
    /// Something did not happen in time (the figures so far are printed).
    Stalled(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Kafka(e) => write!(f, "{}", crate::settings::report(e)),
            Failure::Registry(e) => write!(f, "schema registry: {e}"),
            Failure::Pipeline(e) => write!(f, "pipeline: {e}"),
            Failure::Stalled(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<kafka_ingest::Error> for Failure {
    fn from(e: kafka_ingest::Error) -> Self {
        Failure::Kafka(e)
    }
}

impl From<schema_registry::Error> for Failure {
    fn from(e: schema_registry::Error) -> Self {
        Failure::Registry(e)
    }
}

impl From<kafka_ingest_pipeline::Error> for Failure {
    fn from(e: kafka_ingest_pipeline::Error) -> Self {
        Failure::Pipeline(e)
    }
}

pub(crate) type Outcome<T> = std::result::Result<T, Failure>;

/// Topic, group and subject names, unique per run so reruns never meet.
pub(crate) struct Names {
    pub topic: String,
    pub group: String,
    pub subject: String,
    pub burst_topic: String,
    pub burst_group: String,
}

impl Names {
    fn new() -> Names {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let run = format!("{}-{}", now.as_millis(), std::process::id());
        let topic = format!("demo-events-{run}");
        Names {
            subject: format!("{topic}-value"),
            topic,
            group: format!("demo-group-{run}"),
            burst_topic: format!("demo-burst-{run}"),
            burst_group: format!("demo-pipeline-{run}"),
        }
    }
}

/// What every part uses.
pub(crate) struct Ctx<'a> {
    pub g: &'a Global,
    pub admin: Admin,
    pub registry: SchemaRegistryClient,
    pub registry_config: SchemaRegistryConfig,
    pub names: Names,
}

pub(crate) fn heading(title: &str) {
    out!("");
    out!("== {title} ==");
}

/// The figures the summary and `--json` report.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    produced: u64,
    consumed: u64,
    duplicates: u64,
    lost: u64,
    dead_lettered: u64,
    poison_sent: u64,
    retried: u64,
    v3_refused: bool,
    final_lag: i64,
    final_status: String,
    lab_produced: u64,
    lab_lost: u64,
    lab_duplicates: u64,
    lab_identity_holds: bool,
    lab_report: String,
    seconds: f64,
}

impl Summary {
    fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.lab_identity_holds
            && self.lab_duplicates == 0
    }

    fn print(&self, json: bool) {
        heading("Summary");
        out!("produced       {}", self.produced);
        out!("consumed       {}", self.consumed);
        out!("duplicates     {}", self.duplicates);
        out!("lost           {}", self.lost);
        out!(
            "dead-lettered  {} (poison records sent: {})",
            self.dead_lettered,
            self.poison_sent
        );
        out!("retried        {}", self.retried);
        out!(
            "v3 refused     {}",
            if self.v3_refused { "yes" } else { "NO" }
        );
        out!(
            "final lag      {} (Burrow {})",
            self.final_lag,
            self.final_status
        );
        out!(
            "burst lab      {} records, lost {}, duplicates {}, accounting {}",
            self.lab_produced,
            self.lab_lost,
            self.lab_duplicates,
            if self.lab_identity_holds {
                "holds"
            } else {
                "DOES NOT HOLD"
            }
        );
        out!("lab report     {}", self.lab_report);
        out!("took           {:.1} s", self.seconds);
        out!(
            "{}",
            if self.ok() {
                "OK: every record was processed exactly once or dead-lettered"
            } else {
                "FAILED: records were lost or processed twice"
            }
        );
        if json {
            match serde_json::to_string(self) {
                Ok(j) => out!("{j}"),
                Err(e) => eprintln!("error: summary as JSON: {e}"),
            }
        }
    }
}

pub(crate) async fn run(g: &Global, a: DemoArgs) -> Result<ExitCode> {
    let start = Instant::now();
    match story(g, &a, start).await {
        Ok(s) => {
            s.print(a.json);
            Ok(if s.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn story(g: &Global, a: &DemoArgs, start: Instant) -> Outcome<Summary> {
    let client: Client = g.client().await?;
    let registry_config = g.registry_config()?;
    let registry = SchemaRegistryClient::new(&registry_config)?;
    let ctx = Ctx {
        g,
        admin: client.admin(),
        registry,
        registry_config,
        names: Names::new(),
    };
    let n = &ctx.names;
    out!(
        "kafka-ingest demo: topic {} (6 partitions), group {}, registry {}",
        n.topic,
        n.group,
        ctx.registry_config.urls.join(",")
    );
    let v1 = schema::register_v1(&ctx).await?;
    ctx.admin
        .create_topic(NewTopic::new(&n.topic, 6, 1))
        .await?;
    let mut members = group::Group::start(&ctx, 3).await?;

    let produced = producer::part1(&ctx, a.events).await?;
    members.part2(&ctx, &produced).await?;
    let part3 = schema::part3(&ctx, &mut members, v1, a.events, a.v2_events).await?;
    let tally = members.stop().await?;
    let mut part4 = burst::part4(&ctx, a.burst).await?;
    let records = a.lab_records.to_string();
    let report_dir = a.report_dir.display().to_string();
    let lab_args = crate::lab::LabArgs::with(&["--records", &records, "--out", &report_dir])
        .map_err(|e| Failure::Stalled(format!("lab settings: {e}")))?;
    let part5 = lag::part5(&ctx, &mut part4.lag, lab_args).await?;
    let lab = &part5.lab.accounting;

    let events = a.events + a.v2_events;
    let (ev_dups, ev_lost) = tally.duplicates_and_missing(events);
    Ok(Summary {
        produced: events + part4.sent,
        consumed: tally.deliveries() + part4.processed + part4.dead_lettered,
        duplicates: ev_dups + part4.duplicates,
        lost: ev_lost + part4.lost,
        dead_lettered: part4.dead_lettered,
        poison_sent: part4.poison,
        retried: part4.retried,
        v3_refused: part3.v3_refused,
        final_lag: part5.final_lag,
        final_status: part5.final_status.to_string(),
        lab_produced: lab.produced,
        lab_lost: lab.lost,
        lab_duplicates: lab.duplicates,
        lab_identity_holds: lab.identity_holds && part5.lab.caught_up,
        lab_report: part5.lab.report.display().to_string(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
