//! Part 5: the groups' lag, from committed offsets and log-end offsets
//! (`Admin::describe_group`).

use kafka_ingest::{Admin, Result, TopicPartition};

use super::burst::BurstLag;
use super::{heading, Ctx, Outcome};
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

pub(crate) fn total(rows: &[LagRow]) -> i64 {
    rows.iter().map(|r| r.lag).sum()
}

/// Lag per topic, `topic 12, topic-retry-500 0`.
fn per_topic(rows: &[LagRow]) -> String {
    let mut by: std::collections::BTreeMap<&str, i64> = Default::default();
    for r in rows {
        *by.entry(r.partition.topic.as_str()).or_default() += r.lag;
    }
    by.iter()
        .map(|(t, l)| format!("{t} {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the burst group's lag during the burst and both groups' lag now;
/// returns the total lag now.
pub(crate) async fn part5(ctx: &Ctx<'_>, burst: &BurstLag) -> Outcome<i64> {
    let events = lag_rows(&ctx.admin, &ctx.names.group).await?;
    let pipeline = lag_rows(&ctx.admin, &ctx.names.burst_group).await?;
    heading("5. Lag (committed offsets vs log-end offsets)");
    let mut last_second = None;
    let over_time: Vec<String> = burst
        .samples
        .iter()
        .filter(|(t, _)| {
            let s = t.as_secs();
            let first = last_second != Some(s);
            last_second = Some(s);
            first
        })
        .map(|(t, l)| format!("{:.1} s: {l}", t.as_secs_f64()))
        .collect();
    out!(
        "group {} during the burst (one sample a second): {}",
        ctx.names.burst_group,
        over_time.join(", ")
    );
    out!("  at its peak: {}", per_topic(&burst.peak_rows));
    out!(
        "group {} at the end: {} ({})",
        ctx.names.burst_group,
        total(&pipeline),
        per_topic(&pipeline)
    );
    out!(
        "group {} at the end: {} ({})",
        ctx.names.group,
        total(&events),
        per_topic(&events)
    );
    Ok(total(&events) + total(&pipeline))
}
