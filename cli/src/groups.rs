//! `kafka-ingest groups ...`: kafka-consumer-groups.sh's list, describe,
//! delete, delete-offsets and reset-offsets.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use kafka_ingest::{Admin, Error, GroupDescription, OffsetSpec, Result, TopicPartition};

use crate::Global;

#[derive(Subcommand)]
pub(crate) enum GroupsCmd {
    /// Every group with its type (classic or consumer), state and protocol type.
    List,
    /// Members, assignment, committed offset, log-end offset and lag per partition.
    Describe {
        /// Group ids (or --all).
        #[arg(required_unless_present = "all")]
        groups: Vec<String>,
        /// Describe every group.
        #[arg(long, conflicts_with = "groups")]
        all: bool,
    },
    /// Delete groups (they must have no active members).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete a group's committed offsets of topics or partitions.
    DeleteOffsets {
        /// Group id.
        #[arg(long)]
        group: String,
        /// TOPIC or TOPIC:P,P (repeatable).
        #[arg(long, required = true, value_name = "TOPIC[:P,...]")]
        topic: Vec<String>,
    },
    /// Reset a group's committed offsets (the group must be inactive).
    /// Prints the plan; applies it only with --execute.
    ResetOffsets(ResetArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by", "by_duration", "to_current"])))]
#[command(group(ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
pub(crate) struct ResetArgs {
    /// Group id.
    #[arg(long)]
    group: String,
    /// TOPIC or TOPIC:P,P (repeatable).
    #[arg(long, value_name = "TOPIC[:P,...]")]
    topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// To the log start.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to the log's range).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// To the first offset at or after this time: RFC 3339, or
    /// YYYY-MM-DDTHH:mm:SS[.sss] in local time, or ms since the epoch.
    #[arg(long, value_name = "TIME")]
    to_datetime: Option<String>,
    /// Move the committed offset by N (negative: back).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    shift_by: Option<i64>,
    /// To the first offset at or after now minus this ISO 8601 duration (e.g. PT1H, P1DT2H).
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// To the current committed offsets (no change; re-commits them).
    #[arg(long)]
    to_current: bool,
    /// Only print the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Apply the new offsets.
    #[arg(long)]
    execute: bool,
}

/// A time as ms since the epoch: digits, RFC 3339, or a local date-time.
pub(crate) fn parse_time(s: &str) -> std::result::Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    s.parse::<jiff::civil::DateTime>()
        .map_err(|e| format!("`{s}` is not a time (RFC 3339, YYYY-MM-DDTHH:mm:SS or ms): {e}"))?
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("`{s}`: {e}"))
}

/// An ISO 8601 duration (Java's Duration.parse; days are 24 hours) in ms.
fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let span: jiff::Span = s
        .parse()
        .map_err(|e| format!("`{s}` is not an ISO 8601 duration such as PT30M: {e}"))?;
    span.total(jiff::SpanTotal::from(jiff::Unit::Millisecond).days_are_24_hours())
        .map(|ms| ms as i64)
        .map_err(|e| format!("`{s}`: {e}"))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        message: message.into(),
    }
}

/// `TOPIC` (every partition) or `TOPIC:P,P`.
async fn partitions(admin: &Admin, specs: &[String]) -> Result<Vec<TopicPartition>> {
    let mut out = Vec::new();
    for spec in specs {
        match spec.rsplit_once(':') {
            Some((t, ps)) => {
                for p in ps.split(',') {
                    let p = p.trim().parse::<i32>().map_err(|_| {
                        invalid(format!("--topic `{spec}`: `{p}` is not a partition"))
                    })?;
                    out.push(TopicPartition::new(t, p));
                }
            }
            None => {
                let t = admin.describe_topic(spec).await?;
                out.extend(
                    t.partitions
                        .iter()
                        .map(|p| TopicPartition::new(spec, p.partition)),
                );
            }
        }
    }
    Ok(out)
}

fn print_group(d: &GroupDescription) {
    crate::out!(
        "Group: {}\tType: {}\tState: {}\tAssignor: {}\tMembers: {}\tCoordinator: {}",
        d.group,
        d.group_type,
        d.state,
        d.protocol,
        d.members.len(),
        d.coordinator
    );
    for m in &d.members {
        let parts: Vec<String> = m.assignment.iter().map(|tp| tp.to_string()).collect();
        crate::out!(
            "  Member: {}{}\tClient: {}\tHost: {}\tPartitions: {}",
            m.member_id,
            m.instance_id
                .as_deref()
                .map(|i| format!(" (instance {i})"))
                .unwrap_or_default(),
            m.client_id,
            m.host,
            parts.join(",")
        );
    }
    crate::out!("TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tOWNER");
    for o in &d.offsets {
        crate::out!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            o.partition.topic,
            o.partition.partition,
            o.committed.map_or("-".into(), |c| c.to_string()),
            o.log_end,
            o.lag.map_or("-".into(), |l| l.to_string()),
            o.owner.as_deref().unwrap_or("-")
        );
    }
}

pub(crate) async fn run(global: &Global, cmd: GroupsCmd) -> Result<ExitCode> {
    let client = global.client().await?;
    let admin = client.admin();
    let code = groups(&admin, cmd).await;
    client.close();
    code
}

async fn groups(admin: &Admin, cmd: GroupsCmd) -> Result<ExitCode> {
    match cmd {
        GroupsCmd::List => {
            crate::out!("GROUP\tTYPE\tSTATE\tPROTOCOL-TYPE");
            for g in admin.list_groups().await? {
                crate::out!(
                    "{}\t{}\t{}\t{}",
                    g.group,
                    g.group_type,
                    g.state,
                    g.protocol_type
                );
            }
        }
        GroupsCmd::Describe { groups, all } => {
            let groups = if all {
                admin
                    .list_groups()
                    .await?
                    .into_iter()
                    .map(|g| g.group)
                    .collect()
            } else {
                groups
            };
            for (i, d) in admin.describe_groups(&groups).await?.iter().enumerate() {
                if i > 0 {
                    crate::out!("");
                }
                print_group(d);
            }
        }
        GroupsCmd::Delete { groups } => {
            let mut failed = false;
            for (g, r) in admin.delete_groups(&groups).await? {
                match r {
                    Ok(()) => crate::out!("deleted group {g}"),
                    Err(e) => {
                        eprintln!("error: {}", crate::settings::report(&e));
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        GroupsCmd::DeleteOffsets { group, topic } => {
            let tps = partitions(admin, &topic).await?;
            admin.delete_group_offsets(&group, &tps).await?;
            for tp in tps {
                crate::out!(
                    "deleted offset of {}\t{}\tin group {group}",
                    tp.topic,
                    tp.partition
                );
            }
        }
        GroupsCmd::ResetOffsets(args) => return reset(admin, args).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn reset(admin: &Admin, args: ResetArgs) -> Result<ExitCode> {
    // A group that does not exist yet can be given offsets (as Java does).
    let (state, committed) = match admin.describe_group(&args.group).await {
        Ok(d) => {
            if !d.members.is_empty() || !matches!(d.state.as_str(), "Empty" | "Dead") {
                let msg = format!(
                    "offsets of group `{}` can only be reset while it is inactive; it is {} with {} member(s)",
                    args.group,
                    d.state,
                    d.members.len()
                );
                if args.execute {
                    return Err(invalid(msg));
                }
                eprintln!("warning: {msg}");
            }
            let committed: BTreeMap<TopicPartition, i64> = d
                .offsets
                .iter()
                .filter_map(|o| o.committed.map(|c| (o.partition.clone(), c)))
                .collect();
            (d.state, committed)
        }
        Err(Error::UnknownGroup(_)) => ("Dead".to_owned(), BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let tps = if args.all_topics {
        committed.keys().cloned().collect()
    } else {
        partitions(admin, &args.topic).await?
    };
    if tps.is_empty() {
        return Err(invalid(format!(
            "group `{}` has no committed offsets to reset (name topics with --topic)",
            args.group
        )));
    }
    let specs = |s: OffsetSpec| tps.iter().map(|tp| (tp.clone(), s)).collect::<Vec<_>>();
    let earliest = admin.list_offsets(&specs(OffsetSpec::Earliest)).await?;
    let latest = admin.list_offsets(&specs(OffsetSpec::Latest)).await?;
    let bounds = |tp: &TopicPartition| {
        (
            earliest.get(tp).map_or(0, |o| o.offset),
            latest.get(tp).map_or(0, |o| o.offset),
        )
    };
    let at_time = match (&args.to_datetime, &args.by_duration) {
        (Some(t), _) => Some(parse_time(t).map_err(invalid)?),
        (_, Some(d)) => {
            let now = jiff::Timestamp::now().as_millisecond();
            Some(now - parse_duration(d).map_err(invalid)?)
        }
        _ => None,
    };
    let by_time = match at_time {
        Some(t) => admin.list_offsets(&specs(OffsetSpec::Timestamp(t))).await?,
        None => BTreeMap::new(),
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &tps {
        let (lo, hi) = bounds(tp);
        let current = committed.get(tp).copied();
        let target = if args.to_earliest {
            lo
        } else if args.to_latest {
            hi
        } else if let Some(n) = args.to_offset {
            n
        } else if let Some(n) = args.shift_by {
            let c = current.ok_or_else(|| {
                invalid(format!(
                    "{tp} has no committed offset to shift (group `{}`)",
                    args.group
                ))
            })?;
            c + n
        } else if at_time.is_some() {
            by_time
                .get(tp)
                .map(|o| o.offset)
                .filter(|o| *o >= 0)
                .unwrap_or(hi)
        } else {
            current.unwrap_or(lo)
        };
        plan.insert(tp.clone(), target.clamp(lo, hi));
    }
    crate::out!("GROUP\tTOPIC\tPARTITION\tNEW-OFFSET");
    for (tp, o) in &plan {
        crate::out!("{}\t{}\t{}\t{o}", args.group, tp.topic, tp.partition);
    }
    if args.execute {
        admin.alter_group_offsets(&args.group, &plan).await?;
        eprintln!(
            "reset {} offsets of group {} (was {state})",
            plan.len(),
            args.group
        );
    } else {
        eprintln!("dry run: nothing changed; add --execute to apply");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1000").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:02Z").unwrap(), 2000);
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_time("2024-01-01T00:00:00.000").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("PT1M").unwrap(), 60_000);
        assert_eq!(parse_duration("P1DT1S").unwrap(), 86_401_000);
        assert!(parse_duration("1 fortnight").is_err());
    }
}
