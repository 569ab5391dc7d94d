//! Part 2: three consumers in one group with manual commits; one member
//! leaves mid-stream and the others take over its partitions. The members
//! decode with the v2 reader schema (part 3 reads their tally).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_ingest::schema_registry::apache_avro::types::Value;
use kafka_ingest::schema_registry::{self, json, AvroDeserializer};
use kafka_ingest::{Consumer, ConsumerRecord, ErrorCode, GroupDescription};
use tokio::task::JoinHandle;

use super::producer::Produced;
use super::{events, heading, lag, Ctx, Failure, Outcome};
use crate::out;

/// "Processing" takes this long a record, so a member can leave mid-stream.
const WORK_PER_RECORD: Duration = Duration::from_millis(1);
/// Longest wait for the group to settle or catch up.
const PATIENCE: Duration = Duration::from_secs(45);

/// Offsets one member processed in a row on one partition.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub member: String,
    pub first: i64,
    pub last: i64,
}

/// What the members processed, counted by event id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Deliveries per event id.
    seen: HashMap<i64, u64>,
    pub per_member: BTreeMap<String, u64>,
    pub per_partition: BTreeMap<i32, u64>,
    pub runs: BTreeMap<i32, Vec<Run>>,
    pub commits: BTreeMap<String, u64>,
    /// Records per writer schema id.
    pub by_writer: BTreeMap<u32, u64>,
    /// Per writer schema id: records whose `source` was null after decoding.
    pub source_null: BTreeMap<u32, u64>,
    /// The first record of each writer schema id, as read (JSON).
    pub samples: BTreeMap<u32, String>,
    pub undecodable: u64,
}

impl Tally {
    fn record(
        &mut self,
        member: &str,
        r: &ConsumerRecord,
        decoded: schema_registry::Result<(u32, Value)>,
        reader: Option<&schema_registry::apache_avro::Schema>,
    ) {
        *self.per_member.entry(member.to_owned()).or_default() += 1;
        *self.per_partition.entry(r.partition).or_default() += 1;
        let runs = self.runs.entry(r.partition).or_default();
        match runs.last_mut() {
            Some(run) if run.member == member && run.last + 1 == r.offset => run.last = r.offset,
            _ => runs.push(Run {
                member: member.to_owned(),
                first: r.offset,
                last: r.offset,
            }),
        }
        let Ok((writer, value)) = decoded else {
            self.undecodable += 1;
            return;
        };
        let Some(id) = events::event_id(&value) else {
            self.undecodable += 1;
            return;
        };
        *self.seen.entry(id).or_default() += 1;
        *self.by_writer.entry(writer).or_default() += 1;
        if events::source_is_null(&value) {
            *self.source_null.entry(writer).or_default() += 1;
        }
        if let (false, Some(schema)) = (self.samples.contains_key(&writer), reader) {
            if let Ok(j) = json::value_to_json(&value, schema) {
                self.samples.insert(writer, j.to_string());
            }
        }
    }

    /// Records processed, repeats included.
    pub fn deliveries(&self) -> u64 {
        self.per_member.values().sum()
    }

    /// Extra deliveries, and ids of `0..n` never processed.
    pub fn duplicates_and_missing(&self, n: u64) -> (u64, u64) {
        let dups = self.seen.values().map(|c| c - 1).sum();
        let missing = (0..n as i64)
            .filter(|id| !self.seen.contains_key(id))
            .count();
        (dups, missing as u64)
    }
}

struct Member {
    name: String,
    leave: Arc<AtomicBool>,
    task: Option<JoinHandle<Outcome<()>>>,
}

/// The running members and their shared tally.
pub(crate) struct Group {
    members: Vec<Member>,
    tally: Arc<Mutex<Tally>>,
    first: GroupDescription,
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kafka's REBALANCE_IN_PROGRESS: a commit made while the group rebalances.
const REBALANCE_IN_PROGRESS: i16 = 27;

/// Polls, decodes and counts, commits after every poll; on `leave`
/// commits what it processed and leaves the group.
async fn member(
    consumer: Consumer,
    name: String,
    decoder: Arc<AvroDeserializer>,
    tally: Arc<Mutex<Tally>>,
    leave: Arc<AtomicBool>,
) -> Outcome<()> {
    while !leave.load(Ordering::Acquire) {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if records.is_empty() {
            continue;
        }
        for r in &records {
            let decoded = decoder
                .deserialize_with_id(r.value.as_deref().unwrap_or_default())
                .await;
            lock(&tally).record(&name, r, decoded, decoder.reader_schema());
        }
        tokio::time::sleep(WORK_PER_RECORD * records.len() as u32).await;
        // At-least-once: commit only what was processed. A rebalance (a
        // member leaving) refuses it; the next poll finishes the rebalance and
        // the next commit covers these records too (cooperative-sticky keeps
        // this member's partitions).
        match consumer.commit().await {
            Ok(()) => *lock(&tally).commits.entry(name.clone()).or_default() += 1,
            Err(e) if e.code() == Some(ErrorCode(REBALANCE_IN_PROGRESS)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    consumer.close().await;
    Ok(())
}

/// The member names of a description, by client id (`demo-A` is A).
fn owners(d: &GroupDescription) -> Vec<(String, Vec<i32>)> {
    let mut v: Vec<(String, Vec<i32>)> = d
        .members
        .iter()
        .map(|m| {
            let name = m.client_id.strip_prefix("demo-").unwrap_or(&m.client_id);
            let mut parts: Vec<i32> = m.assignment.iter().map(|tp| tp.partition).collect();
            parts.sort();
            (name.to_owned(), parts)
        })
        .collect();
    v.sort();
    v
}

fn list(parts: &[i32]) -> String {
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until `n` members own every partition of the topic, each some.
async fn settled(ctx: &Ctx<'_>, n: usize) -> Outcome<GroupDescription> {
    let start = Instant::now();
    loop {
        let d = match ctx.admin.describe_group(&ctx.names.group).await {
            Ok(d) => d,
            // Until the first member's JoinGroup the group does not exist.
            Err(kafka_ingest::Error::UnknownGroup(_)) if start.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let owned: usize = d.members.iter().map(|m| m.assignment.len()).sum();
        if d.state == "Stable"
            && d.members.len() == n
            && owned == 6
            && d.members.iter().all(|m| !m.assignment.is_empty())
        {
            return Ok(d);
        }
        if start.elapsed() > PATIENCE {
            return Err(Failure::Stalled(format!(
                "group {} did not settle with {n} members within {PATIENCE:?} (state {}, {} members)",
                ctx.names.group,
                d.state,
                d.members.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Group {
    /// Starts `n` members (A, B, C...) and waits until each owns partitions.
    pub(crate) async fn start(ctx: &Ctx<'_>, n: usize) -> Outcome<Group> {
        let decoder = Arc::new(AvroDeserializer::with_reader_schema(
            ctx.registry.clone(),
            events::V2,
        )?);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut members = Vec::new();
        for name in ["A", "B", "C", "D", "E"].into_iter().take(n) {
            let consumer = ctx
                .g
                .consumer_builder(&[
                    ("auto.offset.reset", "earliest"),
                    ("partition.assignment.strategy", "cooperative-sticky"),
                    ("heartbeat.interval.ms", "500"),
                    ("max.poll.records", "100"),
                ])
                .set("enable.auto.commit", "false")
                .set("group.id", &ctx.names.group)
                .set("client.id", &format!("demo-{name}"))
                .build()
                .await?;
            consumer.subscribe(&[&ctx.names.topic]).await?;
            let leave = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(member(
                consumer,
                name.to_owned(),
                decoder.clone(),
                tally.clone(),
                leave.clone(),
            ));
            members.push(Member {
                name: name.to_owned(),
                leave,
                task: Some(task),
            });
        }
        let first = settled(ctx, n).await?;
        Ok(Group {
            members,
            tally,
            first,
        })
    }

    pub(crate) fn tally(&self) -> Tally {
        lock(&self.tally).clone()
    }

    /// Asks one member to leave and waits until it has.
    async fn leave(&mut self, name: &str) -> Outcome<()> {
        let Some(m) = self.members.iter_mut().find(|m| m.name == name) else {
            return Ok(());
        };
        m.leave.store(true, Ordering::Release);
        if let Some(t) = m.task.take() {
            t.await
                .map_err(|e| Failure::Stalled(format!("member {name} failed: {e}")))??;
        }
        self.members.retain(|m| m.name != name);
        Ok(())
    }

    /// A member that stopped on its own failed: its error.
    async fn check(&mut self) -> Outcome<()> {
        for m in &mut self.members {
            if m.task.as_ref().is_some_and(|t| t.is_finished()) {
                if let Some(t) = m.task.take() {
                    let name = &m.name;
                    t.await
                        .map_err(|e| Failure::Stalled(format!("member {name} failed: {e}")))??;
                    return Err(Failure::Stalled(format!("member {name} stopped early")));
                }
            }
        }
        Ok(())
    }

    /// Waits until the group has committed all `total` records of the
    /// topic (committed offsets at the log end).
    pub(crate) async fn caught_up(
        &mut self,
        ctx: &Ctx<'_>,
        total: u64,
    ) -> Outcome<Vec<lag::LagRow>> {
        let start = Instant::now();
        loop {
            self.check().await?;
            let rows = lag::lag_rows(&ctx.admin, &ctx.names.group).await?;
            let end: i64 = rows.iter().map(|r| r.log_end).sum();
            let done = rows.iter().all(|r| r.committed.is_some() && r.lag == 0);
            if rows.len() == 6 && done && end == total as i64 {
                return Ok(rows);
            }
            if start.elapsed() > PATIENCE {
                return Err(Failure::Stalled(format!(
                    "group {} did not commit all {total} records within {PATIENCE:?} \
                     ({} processed so far)",
                    ctx.names.group,
                    lock(&self.tally).deliveries()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Part 2: the members and their partitions, member C leaving after a
    /// quarter of its records, the takeover, and the commits.
    pub(crate) async fn part2(&mut self, ctx: &Ctx<'_>, produced: &Produced) -> Outcome<()> {
        let before = owners(&self.first);
        let leaver = "C";
        let mine: u64 = before
            .iter()
            .filter(|(n, _)| n == leaver)
            .flat_map(|(_, ps)| ps.iter())
            .filter_map(|p| produced.per_partition.get(p).map(|d| d.0))
            .sum();
        let threshold = (mine / 4).max(1);
        let start = Instant::now();
        while lock(&self.tally)
            .per_member
            .get(leaver)
            .copied()
            .unwrap_or(0)
            < threshold
        {
            self.check().await?;
            if start.elapsed() > PATIENCE {
                return Err(Failure::Stalled(format!(
                    "member {leaver} did not process {threshold} records within {PATIENCE:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.leave(leaver).await?;
        let left_with = lock(&self.tally)
            .per_member
            .get(leaver)
            .copied()
            .unwrap_or(0);
        let after = settled(ctx, self.members.len()).await?;
        let total: u64 = produced.per_partition.values().map(|d| d.0).sum();
        let committed = self.caught_up(ctx, total).await?;
        let t = self.tally();

        heading(&format!("2. Consumer group {}", ctx.names.group));
        out!(
            "{} members, and the partitions each owns (Admin::describe_group, state {}, protocol {}):",
            before.len(),
            self.first.state,
            self.first.protocol
        );
        for (name, parts) in &before {
            out!("  {name}: partitions {}", list(parts));
        }
        out!(
            "manual commits (enable.auto.commit=false): each member commits after processing \
             a poll, so a committed offset is a processed record"
        );
        out!(
            "member {leaver} left after processing {left_with} of its {mine} records (commit, \
             then LeaveGroup); the others took over:"
        );
        for (name, parts) in owners(&after) {
            out!("  {name}: partitions {}", list(&parts));
        }
        let leaver_parts = before
            .iter()
            .find(|(n, _)| n == leaver)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        for p in &leaver_parts {
            let runs = t.runs.get(p).cloned().unwrap_or_default();
            let text: Vec<String> = runs
                .iter()
                .map(|r| format!("{} offsets {}..{}", r.member, r.first, r.last))
                .collect();
            let seamless = runs.windows(2).all(|w| w[1].first == w[0].last + 1);
            out!(
                "  partition {p}: {} ({})",
                text.join(", then "),
                if seamless {
                    "no offset skipped or read twice"
                } else {
                    "OFFSETS SKIPPED OR READ TWICE"
                }
            );
        }
        let (dups, missing) = t.duplicates_and_missing(total);
        let counts: Vec<String> = t
            .per_member
            .iter()
            .map(|(m, c)| format!("{m} {c}"))
            .collect();
        out!(
            "processed: {} = {} of {total} produced; {dups} duplicates and {missing} missing \
             by event id",
            counts.join(", "),
            t.deliveries()
        );
        let sizes = produced.per_partition.values().map(|d| d.0);
        out!(
            "  (uneven: the 24 sensor keys hash unevenly, so partitions hold {} to {} records, \
             and {leaver} handed its unprocessed records to the others)",
            sizes.clone().min().unwrap_or(0),
            sizes.max().unwrap_or(0)
        );
        let commits: Vec<String> = t.commits.iter().map(|(m, c)| format!("{m} {c}")).collect();
        out!("commits: {}", commits.join(", "));
        out!("committed offsets (describe_group) = records processed per partition:");
        for r in &committed {
            let p = r.partition.partition;
            out!(
                "  partition {p}: committed {}, processed {}, log end {}",
                r.committed.unwrap_or(-1),
                t.per_partition.get(&p).copied().unwrap_or(0),
                r.log_end
            );
        }
        Ok(())
    }

    /// Stops every member (each commits and leaves); the final tally.
    pub(crate) async fn stop(mut self) -> Outcome<Tally> {
        let names: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
        for n in names {
            self.leave(&n).await?;
        }
        Ok(self.tally())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp: 0,
            log_append_time: false,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    fn event(id: i64) -> schema_registry::Result<(u32, Value)> {
        Ok((1, Value::Record(vec![("event_id".into(), Value::Long(id))])))
    }

    #[test]
    fn tally_counts_repeats_and_gaps_by_event_id_and_keeps_runs() {
        let mut t = Tally::default();
        t.record("C", &rec(0, 0), event(0), None);
        t.record("C", &rec(0, 1), event(1), None);
        // A takes over at offset 1: the record is processed twice.
        t.record("A", &rec(0, 1), event(1), None);
        t.record("A", &rec(0, 2), event(2), None);
        assert_eq!(t.deliveries(), 4);
        assert_eq!(t.duplicates_and_missing(4), (1, 1), "1 twice, 3 never");
        let runs: Vec<(String, i64, i64)> = t.runs[&0]
            .iter()
            .map(|r| (r.member.clone(), r.first, r.last))
            .collect();
        assert_eq!(runs, [("C".into(), 0, 1), ("A".into(), 1, 2)]);
        assert_eq!(t.by_writer[&1], 4);
        assert_eq!(t.source_null[&1], 4, "no `source` field reads as null");
    }
}
