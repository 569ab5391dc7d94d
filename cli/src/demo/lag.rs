//! Part 5: the groups' lag and Burrow status (`crate::lag::Monitor`), and a
//! short burst lab with its report. `lag_rows` is the plain offset view the
//! other parts wait on.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_ingest::{Admin, Result, TopicPartition};

use super::burst::BurstLag;
use super::{heading, Ctx, Outcome};
use crate::lab::LabArgs;
use crate::lag::burrow::{Rules, Status};
use crate::lag::{GroupLag, Monitor};
use crate::out;

/// One partition of a group.
#[derive(Debug, Clone)]
pub(crate) struct LagRow {
    pub partition: TopicPartition,
    pub committed: Option<i64>,
    pub log_end: i64,
    /// Log end minus committed; the whole log end when nothing is
    /// committed yet (the demo's topics start at offset 0).
    pub lag: i64,
}

/// Every partition the group owns or has committed.
pub(crate) async fn lag_rows(admin: &Admin, group: &str) -> Result<Vec<LagRow>> {
    let d = admin.describe_group(group).await?;
    Ok(d.offsets
        .into_iter()
        .map(|o| LagRow {
            lag: o.lag.unwrap_or(o.log_end).max(0),
            partition: o.partition,
            committed: o.committed,
            log_end: o.log_end,
        })
        .collect())
}

/// Burrow's window over ten samples a quarter-second apart (the demo's
/// burst lasts seconds, not minutes).
pub(crate) fn monitor(group: &str) -> Monitor {
    Monitor::new(group, 10, SAMPLE, Rules::default())
}

const SAMPLE: Duration = Duration::from_millis(250);

/// Lag per topic, `topic 12, topic-retry-500 0`.
fn per_topic(g: &GroupLag) -> String {
    let mut by: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &g.partitions {
        *by.entry(r.topic.as_str()).or_default() += r.lag.unwrap_or(r.log_end);
    }
    by.iter()
        .map(|(t, l)| format!("{t} {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Samples until the group is OK with no lag (up to ten samples).
async fn settled(ctx: &Ctx<'_>, m: &mut Monitor) -> Outcome<GroupLag> {
    let mut now = m.sample(&ctx.admin).await?;
    for _ in 0..10 {
        if now.status == Status::Ok && now.total_lag == 0 {
            break;
        }
        tokio::time::sleep(SAMPLE).await;
        now = m.sample(&ctx.admin).await?;
    }
    Ok(now)
}

/// What part 5 found.
pub(crate) struct Part5 {
    pub final_lag: i64,
    pub final_status: Status,
    pub lab: crate::lab::Outcome,
}

/// Prints the burst group's lag and Burrow status during the burst and both
/// groups' now, then runs a short burst lab that writes its report.
pub(crate) async fn part5(
    ctx: &Ctx<'_>,
    burst: &mut BurstLag,
    lab_args: LabArgs,
) -> Outcome<Part5> {
    heading("5. Lag and Burrow status");
    let mut last_second = None;
    let over_time: Vec<String> = burst
        .samples
        .iter()
        .filter(|(t, _, _)| {
            let s = t.as_secs();
            let first = last_second != Some(s);
            last_second = Some(s);
            first
        })
        .map(|(t, l, st)| format!("{:.1} s: {l} {st}", t.as_secs_f64()))
        .collect();
    out!(
        "group {} during the burst (lag, Burrow status; one sample a second): {}",
        ctx.names.burst_group,
        over_time.join(", ")
    );
    if let Some(peak) = &burst.peak {
        out!("  at its peak: {} ({})", peak.total_lag, per_topic(peak));
    }
    let pipeline = settled(ctx, &mut burst.monitor).await?;
    let events = settled(ctx, &mut monitor(&ctx.names.group)).await?;
    for g in [&pipeline, &events] {
        out!(
            "group {} at the end: lag {}, Burrow status {} ({})",
            g.group,
            g.total_lag,
            g.status,
            per_topic(g)
        );
    }
    out!("(Burrow, per partition over its window of commits: OK = no lag at some commit, or falling;");
    out!(" WARN = lag grew at every commit; STALL = commits stuck at one offset while lagging (a retry");
    out!(" tier waits for due records); STOP = no recent commit while lagging. The group is ERR while");
    out!(" a partition is STOP, STALL or REWIND.)");
    out!("");
    out!("a short burst lab (`kafka-ingest lab`, charts of lag, rates, retries, pauses, latency):");
    let lab = crate::lab::experiment(ctx.g, lab_args).await?;
    out!("open {} in a browser", lab.report.display());
    Ok(Part5 {
        final_lag: pipeline.total_lag + events.total_lag,
        final_status: pipeline.status.max(events.status),
        lab,
    })
}
