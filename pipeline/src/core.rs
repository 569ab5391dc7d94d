//! The pipeline's state machine: partitions with their queues, trackers,
//! pause reasons, retries, breakers and limits. Synchronous and free of
//! IO; `run.rs` holds it under one mutex and turns its decisions (jobs to
//! start, partitions to pause, seeks) into actions.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_ingest::{ConsumerRecord, OffsetAndMetadata, TopicPartition};

use crate::breaker::Breaker;
use crate::config::{Config, Ordering};
use crate::error::HandlerError;
use crate::headers::{self, Provenance};
use crate::lanes::{LaneKey, Lanes};
use crate::metrics::{Lateness, Metrics, TierMetrics};
use crate::pause::{Reason, Reasons};
use crate::rate::{Limited, Limiter, RateLimits};
use crate::record::{At, Event, Record};
use crate::tracker::{Delivery, Tracker};

/// Base64 characters one completion can add to the offset map at most
/// (two runs of up to ten varint bytes each).
const MAX_MAP_GROWTH: usize = 27;

/// What a topic is to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Source topic number `topic`.
    Source { topic: usize },
    /// Retry tier `tier` of source topic `topic`.
    Tier { topic: usize, tier: usize },
}

/// One record on its way through the pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    pub rec: Arc<ConsumerRecord>,
    pub bytes: usize,
    /// Number of the next attempt, counting earlier tiers.
    pub attempt: u32,
    /// Attempts made in this stage (in place, or in this tier).
    pub stage_attempts: u32,
    pub origin: Arc<Provenance>,
    pub tier: Option<usize>,
    /// When a tier record became due (wall ms).
    pub due: Option<i64>,
    pub first_failure: Option<i64>,
    pub first_attempt: Option<Instant>,
    pub prev_delay: Duration,
}

impl Work {
    pub fn record(&self) -> Record {
        Record {
            inner: self.rec.clone(),
            attempt: self.attempt,
            origin: self.origin.clone(),
            tier: self.tier,
        }
    }

    pub fn at(&self) -> At {
        At {
            partition: TopicPartition::new(&*self.rec.topic, self.rec.partition),
            offset: self.rec.offset,
        }
    }
}

/// A unit of work to run: a handler call (then maybe a forward), or only
/// the forward of a record held by the DLQ breaker.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: u64,
    pub tp: TopicPartition,
    pub epoch: u64,
    pub lane: LaneKey,
    pub role: Role,
    pub work: Work,
    /// Set for a held dead letter released by a breaker reset.
    pub dead_letter: Option<HandlerError>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Processed,
    /// Forwarded to tier `n` of its source topic.
    Forwarded(usize),
    DeadLettered {
        fatal: bool,
    },
    /// Given up (shutdown or revoke): stays incomplete, so never committed.
    Abandoned,
}

#[derive(Debug)]
struct Part {
    epoch: u64,
    role: Role,
    tracker: Tracker,
    lanes: Lanes<Work>,
    retry_ready: VecDeque<(LaneKey, Work)>,
    delayed: BTreeMap<(Instant, u64), (LaneKey, Work)>,
    parked: Vec<(LaneKey, Work, HandlerError)>,
    bytes: usize,
    records: usize,
    in_flight: usize,
    reasons: Reasons,
    /// Whether the consumer has it paused now.
    applied: bool,
    revoking: bool,
    /// Tier partitions: paused until this instant and wall time (ms).
    hold: Option<(Instant, i64)>,
    rate: Wait,
    breaker: Breaker,
    last_commit: Option<OffsetAndMetadata>,
    /// Completions left before the offset map's size is measured again.
    map_check: usize,
}

/// A rate-limit wait: until when (`None`: until the limits change), since when.
#[derive(Debug, Default, Clone, Copy)]
struct Wait {
    active: bool,
    until: Option<Instant>,
    since: Option<Instant>,
}

impl Wait {
    fn start(&mut self, until: Option<Instant>, now: Instant) {
        if !self.active {
            self.since = Some(now);
        }
        self.active = true;
        self.until = until;
    }

    /// Ends the wait; returns its length.
    fn end(&mut self, now: Instant) -> Duration {
        let d = self.since.map_or(Duration::ZERO, |s| now - s);
        *self = Wait::default();
        d
    }

    fn due(&self, now: Instant) -> bool {
        self.active && self.until.is_some_and(|u| u <= now)
    }
}

impl Part {
    fn new(epoch: u64, role: Role, tracker: Tracker) -> Part {
        Part {
            epoch,
            role,
            tracker,
            lanes: Lanes::default(),
            retry_ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            parked: Vec::new(),
            bytes: 0,
            records: 0,
            in_flight: 0,
            reasons: Reasons::default(),
            applied: false,
            revoking: false,
            hold: None,
            rate: Wait::default(),
            breaker: Breaker::default(),
            last_commit: None,
            map_check: 0,
        }
    }

    /// Drops everything not running; the records stay pending, so no
    /// commit passes them. Returns (bytes, records) released.
    fn drop_waiting(&mut self) -> (usize, usize) {
        let mut dropped: Vec<Work> = self.lanes.drain();
        dropped.extend(self.retry_ready.drain(..).map(|(_, w)| w));
        dropped.extend(
            std::mem::take(&mut self.delayed)
                .into_values()
                .map(|(_, w)| w),
        );
        dropped.extend(self.parked.drain(..).map(|(_, w, _)| w));
        let bytes: usize = dropped.iter().map(|w| w.bytes).sum();
        self.bytes -= bytes;
        self.records -= dropped.len();
        (bytes, dropped.len())
    }
}

/// The state of one pipeline.
pub(crate) struct Core {
    cfg: Arc<Config>,
    parts: BTreeMap<TopicPartition, Part>,
    order: Vec<TopicPartition>,
    cursor: usize,
    roles: HashMap<String, Role>,
    next_epoch: u64,
    next_job: u64,
    in_flight: usize,
    bytes: usize,
    records: usize,
    /// Largest record seen, and records per poll: what one poll may add.
    largest: usize,
    poll_records: usize,
    global: Reasons,
    global_rate: Wait,
    limiter: Limiter,
    pub rng: fastrand::Rng,
    metadata_limit: usize,
    stopping: bool,
    m: Metrics,
    lateness: Vec<Lateness>,
    events: Vec<Event>,
    /// Running jobs, to cancel them on revoke and shutdown.
    pub aborts: HashMap<u64, (TopicPartition, tokio::task::AbortHandle)>,
}

impl Core {
    pub fn new(cfg: Arc<Config>, now: Instant) -> Core {
        let mut roles = HashMap::new();
        let mut tiers = Vec::new();
        for (i, t) in cfg.topics.iter().enumerate() {
            roles.insert(t.clone(), Role::Source { topic: i });
            for (n, d) in cfg.tiers.iter().enumerate() {
                let name = cfg.tier_topic(t, n);
                tiers.push(TierMetrics {
                    topic: name.clone(),
                    delay_ms: d.as_millis() as u64,
                    ..Default::default()
                });
                roles.insert(name, Role::Tier { topic: i, tier: n });
            }
        }
        let lateness = vec![Lateness::default(); tiers.len()];
        Core {
            limiter: Limiter::new(cfg.rate, now),
            rng: fastrand::Rng::with_seed(cfg.seed),
            metadata_limit: cfg.max_metadata_bytes.unwrap_or(4096),
            cfg,
            parts: BTreeMap::new(),
            order: Vec::new(),
            cursor: 0,
            roles,
            next_epoch: 1,
            next_job: 1,
            in_flight: 0,
            bytes: 0,
            records: 0,
            largest: 0,
            poll_records: 500,
            global: Reasons::default(),
            global_rate: Wait::default(),
            stopping: false,
            m: Metrics {
                tiers,
                ..Default::default()
            },
            lateness,
            events: Vec::new(),
            aborts: HashMap::new(),
        }
    }

    pub fn role(&self, topic: &str) -> Option<Role> {
        self.roles.get(topic).copied()
    }

    /// The metadata budget: the broker's limit, or a lower configured one.
    pub fn set_metadata_limit(&mut self, broker: usize) {
        self.metadata_limit = self
            .cfg
            .max_metadata_bytes
            .map_or(broker, |m| m.min(broker));
    }

    pub fn metadata_limit(&self) -> usize {
        self.metadata_limit
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn event(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Starts tracking a newly assigned partition.
    pub fn add(&mut self, tp: TopicPartition, tracker: Tracker) {
        let Some(role) = self.role(&tp.topic) else {
            return;
        };
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        if self
            .parts
            .insert(tp.clone(), Part::new(epoch, role, tracker))
            .is_none()
        {
            self.order.push(tp);
        }
    }

    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.parts.keys().cloned().collect()
    }

    fn lane(&self, role: Role, rec: &ConsumerRecord) -> LaneKey {
        match (role, self.cfg.ordering) {
            (Role::Tier { .. }, _) | (_, Ordering::Unordered) => LaneKey::Offset(rec.offset),
            (_, Ordering::Partition) => LaneKey::Partition,
            (_, Ordering::Key) => match &rec.key {
                Some(k) => LaneKey::Key(k.clone()),
                None => LaneKey::Offset(rec.offset),
            },
        }
    }

    /// Queues polled records. Returns the seeks to make: a tier partition
    /// whose next record is not due is sought back to it and paused.
    pub fn accept(
        &mut self,
        records: Vec<ConsumerRecord>,
        now: Instant,
        wall: i64,
    ) -> Vec<(TopicPartition, i64)> {
        let mut seeks = Vec::new();
        let mut held: HashSet<TopicPartition> = HashSet::new();
        for rec in records {
            let tp = TopicPartition::new(&*rec.topic, rec.partition);
            if held.contains(&tp) || self.stopping {
                continue;
            }
            let lane = match self.parts.get(&tp) {
                Some(p) if !p.revoking && p.hold.is_none() => self.lane(p.role, &rec),
                _ => continue, // not ours (any more), or re-fetched when due
            };
            let Some(part) = self.parts.get_mut(&tp) else {
                continue;
            };
            let tier = match part.role {
                Role::Tier { tier, .. } => Some(tier),
                Role::Source { .. } => None,
            };
            let due = tier.and_then(|_| headers::due(&rec.headers));
            if let Some(due) = due.filter(|d| *d > wall) {
                let wait = Duration::from_millis((due - wall) as u64);
                part.hold = Some((now + wait, due));
                part.reasons.insert(Reason::RetryDelay);
                part.tracker.rewind(rec.offset);
                seeks.push((tp.clone(), rec.offset));
                held.insert(tp);
                continue;
            }
            self.m.received += 1;
            if part.tracker.deliver(rec.offset) == Delivery::Skip {
                self.m.skipped += 1;
                continue;
            }
            let bytes = record_bytes(&rec);
            self.largest = self.largest.max(bytes);
            let (attempt, origin) = match tier {
                None => (1, Provenance::of(&rec)),
                Some(_) => (
                    headers::attempts(&rec.headers),
                    Provenance::from_headers(&rec.headers).unwrap_or_else(|| Provenance::of(&rec)),
                ),
            };
            let first_failure =
                tier.and_then(|_| headers::long(&rec.headers, headers::names::FIRST_FAILURE));
            let work = Work {
                rec: Arc::new(rec),
                bytes,
                attempt,
                stage_attempts: 0,
                origin: Arc::new(origin),
                tier,
                due,
                first_failure,
                first_attempt: None,
                prev_delay: Duration::ZERO,
            };
            part.lanes.push(lane, work);
            part.bytes += bytes;
            part.records += 1;
            self.bytes += bytes;
            self.records += 1;
            self.m.max_buffered_bytes = self.m.max_buffered_bytes.max(self.bytes);
            update_buffer(&self.cfg, part);
        }
        self.update_global_buffer();
        seeks
    }

    /// Jobs to start now, one per partition per round (fair), up to
    /// `max_in_flight`. Rate-limited partitions are paused instead.
    pub fn next_jobs(&mut self, now: Instant) -> Vec<Job> {
        let mut out = Vec::new();
        if self.stopping || self.order.is_empty() {
            return out;
        }
        let n = self.order.len();
        'rounds: while self.in_flight < self.cfg.max_in_flight {
            let mut progress = false;
            for i in 0..n {
                if self.in_flight >= self.cfg.max_in_flight {
                    break 'rounds;
                }
                if self.global.blocks_dispatch() {
                    break 'rounds;
                }
                let tp = self.order[(self.cursor + i) % n].clone();
                let Some(part) = self.parts.get_mut(&tp) else {
                    continue;
                };
                if part.revoking {
                    continue;
                }
                // A full offset map stops new work only: retries of started
                // records are what shrinks it.
                let mut retry_only = part.reasons;
                retry_only.remove(Reason::OffsetMap);
                if retry_only.blocks_dispatch() {
                    continue;
                }
                let new_work = !part.reasons.contains(Reason::OffsetMap);
                let bytes = match part.retry_ready.front() {
                    Some((_, w)) => w.bytes,
                    None => match part.lanes.peek().filter(|_| new_work) {
                        Some(w) => w.bytes,
                        None => continue,
                    },
                };
                match self.limiter.try_take(&tp, bytes, now) {
                    Ok(()) => {}
                    Err((Limited::Global, wait)) => {
                        self.global.insert(Reason::RateLimit);
                        self.global_rate.start(wait.map(|w| now + w), now);
                        break 'rounds;
                    }
                    Err((Limited::Partition, wait)) => {
                        part.reasons.insert(Reason::RateLimit);
                        part.rate.start(wait.map(|w| now + w), now);
                        continue;
                    }
                }
                let (lane, work) = match part.retry_ready.pop_front() {
                    Some(x) => x,
                    None => match part.lanes.start() {
                        Some(x) => x,
                        None => continue,
                    },
                };
                part.in_flight += 1;
                self.in_flight += 1;
                let id = self.next_job;
                self.next_job += 1;
                out.push(Job {
                    id,
                    tp,
                    epoch: part.epoch,
                    lane,
                    role: part.role,
                    work,
                    dead_letter: None,
                });
                progress = true;
            }
            self.cursor = (self.cursor + 1) % n;
            if !progress {
                break;
            }
        }
        out
    }

    /// Records a handler attempt starting; measures tier lateness.
    pub fn started(&mut self, job: &Job, wall: i64) {
        self.m.attempts += 1;
        if let (Role::Tier { topic, tier }, Some(due), 0) =
            (job.role, job.work.due, job.work.stage_attempts)
        {
            let i = topic * self.cfg.tiers.len() + tier;
            self.m.tiers[i].attempted += 1;
            self.lateness[i].record(wall - due);
        }
    }

    /// A job ended. Late completions (revoked partition) change nothing.
    pub fn finish(&mut self, job: Job, done: Done) {
        self.aborts.remove(&job.id);
        let Some(part) = self.parts.get_mut(&job.tp).filter(|p| p.epoch == job.epoch) else {
            return;
        };
        part.in_flight -= 1;
        self.in_flight -= 1;
        if done == Done::Abandoned {
            return; // lane stays busy: nothing of this key runs before it
        }
        part.lanes.finish(&job.lane);
        part.tracker.complete(job.work.rec.offset);
        part.bytes -= job.work.bytes;
        part.records -= 1;
        self.bytes -= job.work.bytes;
        self.records -= 1;
        match done {
            Done::Processed => {
                self.m.processed += 1;
                if let Some(l) = &self.cfg.dlq_limit {
                    part.breaker.ok(l);
                }
            }
            Done::Forwarded(tier) => {
                let (Role::Source { topic } | Role::Tier { topic, .. }) = job.role;
                self.m.tiers[topic * self.cfg.tiers.len() + tier].forwarded += 1;
            }
            Done::DeadLettered { fatal } => {
                self.m.dead_lettered += 1;
                self.m.fatal += u64::from(fatal);
            }
            Done::Abandoned => {}
        }
        update_buffer(&self.cfg, part);
        if let Some(e) = check_map(&job.tp, part, self.metadata_limit) {
            self.events.push(e);
        }
        self.update_global_buffer();
    }

    /// The attempt failed and will run again after `delay`; its lane stays
    /// busy meanwhile, so nothing of the same key overtakes it.
    pub fn retry_later(
        &mut self,
        mut job: Job,
        delay: Duration,
        error: &HandlerError,
        now: Instant,
    ) {
        self.aborts.remove(&job.id);
        let partition_order = self.cfg.ordering == Ordering::Partition;
        let Some(part) = self.parts.get_mut(&job.tp).filter(|p| p.epoch == job.epoch) else {
            return;
        };
        part.in_flight -= 1;
        self.in_flight -= 1;
        self.m.retried += 1;
        let at = job.work.at();
        let attempt = job.work.attempt - 1;
        job.work.prev_delay = delay;
        part.delayed
            .insert((now + delay, job.id), (job.lane, job.work));
        if partition_order && matches!(part.role, Role::Source { .. }) {
            part.reasons.insert(Reason::RetryDelay);
        }
        self.events.push(Event::Retrying {
            at,
            attempt,
            delay,
            error: error.to_string(),
        });
    }

    /// Whether a record may be dead-lettered now. If the breaker is (or
    /// now becomes) open, the job is held and `None` returned.
    pub fn admit_dead(&mut self, job: Job, error: HandlerError) -> Option<(Job, HandlerError)> {
        let Some(limit) = self.cfg.dlq_limit else {
            return Some((job, error));
        };
        let Some(part) = self.parts.get_mut(&job.tp).filter(|p| p.epoch == job.epoch) else {
            return Some((job, error)); // revoked: the forward is abandoned anyway
        };
        if part.breaker.admit_dead(&limit) {
            return Some((job, error));
        }
        self.aborts.remove(&job.id);
        part.in_flight -= 1;
        self.in_flight -= 1;
        let opened = part.reasons.insert(Reason::Breaker);
        part.parked.push((job.lane, job.work, error));
        if opened {
            self.events.push(Event::BreakerOpen { partition: job.tp });
        }
        None
    }

    /// Closes the breakers of `tps` (all when `None`); returns the held
    /// dead letters as jobs to forward now.
    pub fn reset_breaker(&mut self, tps: Option<&[TopicPartition]>) -> Vec<Job> {
        let mut out = Vec::new();
        for (tp, part) in self.parts.iter_mut() {
            if tps.is_some_and(|t| !t.contains(tp)) || part.revoking {
                continue;
            }
            part.breaker.reset();
            part.reasons.remove(Reason::Breaker);
            for (lane, work, error) in part.parked.drain(..) {
                part.in_flight += 1;
                self.in_flight += 1;
                out.push(Job {
                    id: self.next_job,
                    tp: tp.clone(),
                    epoch: part.epoch,
                    lane,
                    role: part.role,
                    work,
                    dead_letter: Some(error),
                });
                self.next_job += 1;
            }
        }
        out
    }

    /// Moves due retries to the front, ends holds and rate waits that are over.
    pub fn tick(&mut self, now: Instant, wall: i64) {
        let partition_order = self.cfg.ordering == Ordering::Partition;
        let mut throttled = Duration::ZERO;
        for part in self.parts.values_mut() {
            while let Some(entry) = part.delayed.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                part.retry_ready.push_back(entry.remove());
            }
            if let Some((at, due)) = part.hold {
                if at <= now {
                    if wall >= due {
                        part.hold = None;
                    } else {
                        part.hold = Some((now + Duration::from_millis((due - wall) as u64), due));
                    }
                }
            }
            let delaying = part.hold.is_some()
                || (partition_order
                    && !part.delayed.is_empty()
                    && matches!(part.role, Role::Source { .. }));
            if !delaying {
                part.reasons.remove(Reason::RetryDelay);
            }
            if part.rate.due(now) {
                throttled += part.rate.end(now);
                part.reasons.remove(Reason::RateLimit);
            }
        }
        if self.global_rate.due(now) {
            throttled += self.global_rate.end(now);
            self.global.remove(Reason::RateLimit);
        }
        self.m.throttled_ms += throttled.as_millis() as u64;
    }

    /// When `tick` has something to do next.
    pub fn deadline(&self) -> Option<Instant> {
        let mut at = self.global_rate.until.filter(|_| self.global_rate.active);
        let mut min = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a: Instant| a.min(t)));
            }
        };
        for part in self.parts.values() {
            min(part.delayed.keys().next().map(|k| k.0));
            min(part.hold.map(|h| h.0));
            min(part.rate.until.filter(|_| part.rate.active));
        }
        at
    }

    /// Partitions whose pause state must change: (pause, resume).
    pub fn pause_changes(&mut self) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for (tp, part) in self.parts.iter_mut() {
            let want =
                part.revoking || self.stopping || !part.reasons.union(self.global).is_empty();
            if want != part.applied {
                part.applied = want;
                if want {
                    pause.push(tp.clone());
                } else {
                    resume.push(tp.clone());
                }
            }
        }
        (pause, resume)
    }

    /// Offsets to commit (those that moved), each with its offset map.
    /// A map over the metadata limit is not committed: the partition's
    /// previous commit stays, and an event says so.
    pub fn commit_points(
        &mut self,
        tps: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, u64, OffsetAndMetadata)> {
        let limit = self.metadata_limit;
        let mut out = Vec::new();
        for (tp, part) in self.parts.iter() {
            if tps.is_some_and(|t| !t.contains(tp)) {
                continue;
            }
            let Some((at, map)) = part.tracker.commit_point() else {
                continue;
            };
            let metadata = map.encode(at);
            if metadata.len() > limit {
                self.events.push(Event::OffsetMapFull {
                    partition: tp.clone(),
                    bytes: metadata.len(),
                    limit,
                });
                continue;
            }
            let oam = OffsetAndMetadata::new(at, metadata);
            if part.last_commit.as_ref() != Some(&oam) {
                out.push((tp.clone(), part.epoch, oam));
            }
        }
        out
    }

    /// Notes a successful commit.
    pub fn committed(&mut self, done: Vec<(TopicPartition, u64, OffsetAndMetadata)>) {
        self.m.commits += 1;
        for (tp, epoch, oam) in done {
            if let Some(part) = self.parts.get_mut(&tp).filter(|p| p.epoch == epoch) {
                part.last_commit = Some(oam);
            }
        }
    }

    pub fn commit_failed(&mut self, error: String) {
        self.m.commit_failures += 1;
        self.events.push(Event::CommitFailed { error });
    }

    /// Stops starting work on `tps` and drops what waits (it stays uncommitted).
    pub fn begin_revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(part) = self.parts.get_mut(tp) {
                part.revoking = true;
                let (b, r) = part.drop_waiting();
                self.bytes -= b;
                self.records -= r;
            }
        }
        self.update_global_buffer();
    }

    /// Running jobs of `tps` (all partitions when `None`).
    pub fn in_flight_of(&self, tps: Option<&[TopicPartition]>) -> usize {
        self.parts
            .iter()
            .filter(|(tp, _)| tps.is_none_or(|t| t.contains(tp)))
            .map(|(_, p)| p.in_flight)
            .sum()
    }

    /// Forgets `tps`: their late completions will change nothing. Cancels
    /// their running jobs; returns how many.
    pub fn remove(&mut self, tps: &[TopicPartition]) -> usize {
        for tp in tps {
            if let Some(part) = self.parts.remove(tp) {
                self.in_flight -= part.in_flight;
                self.bytes -= part.bytes;
                self.records -= part.records;
                if part.rate.active {
                    self.m.throttled_ms += part
                        .rate
                        .since
                        .map_or(0, |s| s.elapsed().as_millis() as u64);
                }
            }
            self.limiter.forget(tp);
        }
        self.order.retain(|tp| self.parts.contains_key(tp));
        self.cursor = 0;
        let mut cancelled = 0;
        self.aborts.retain(|_, (tp, h)| {
            if tps.contains(tp) {
                h.abort();
                cancelled += 1;
                false
            } else {
                true
            }
        });
        self.update_global_buffer();
        cancelled
    }

    /// Shutdown: nothing new starts, waiting work is dropped (uncommitted).
    pub fn stop(&mut self) {
        self.stopping = true;
        let all: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        for tp in &all {
            if let Some(part) = self.parts.get_mut(tp) {
                let (b, r) = part.drop_waiting();
                self.bytes -= b;
                self.records -= r;
            }
        }
    }

    /// Cancels every running job (shutdown timeout). Their records stay
    /// incomplete; a new epoch makes any completion racing this a no-op.
    pub fn abort_all(&mut self) -> usize {
        let n = self.aborts.len();
        for (_, (_, h)) in self.aborts.drain() {
            h.abort();
        }
        for part in self.parts.values_mut() {
            part.epoch = self.next_epoch;
            self.next_epoch += 1;
            part.in_flight = 0;
        }
        self.in_flight = 0;
        n
    }

    pub fn set_manual(&mut self, tps: Option<&[TopicPartition]>, paused: bool) {
        match tps {
            None => self.global.set(Reason::Manual, paused),
            Some(tps) => {
                for tp in tps {
                    if let Some(p) = self.parts.get_mut(tp) {
                        p.reasons.set(Reason::Manual, paused);
                    }
                }
            }
        }
    }

    /// New rate limits; every rate wait ends so dispatch re-checks.
    pub fn set_rate(&mut self, limits: RateLimits, now: Instant) {
        self.limiter.set(limits, now);
        let mut throttled = Duration::ZERO;
        for part in self.parts.values_mut() {
            if part.rate.active {
                throttled += part.rate.end(now);
                part.reasons.remove(Reason::RateLimit);
            }
        }
        if self.global_rate.active {
            throttled += self.global_rate.end(now);
            self.global.remove(Reason::RateLimit);
        }
        self.m.throttled_ms += throttled.as_millis() as u64;
    }

    pub fn rate(&self) -> RateLimits {
        self.limiter.limits()
    }

    /// Sets how many records one poll may return (`max.poll.records`).
    pub fn set_poll_records(&mut self, n: usize) {
        self.poll_records = n;
    }

    /// Global watermarks with hysteresis. One poll can add up to
    /// `max.poll.records` × the largest record seen, so fetching also stops
    /// while that much would not fit under the limit.
    fn update_global_buffer(&mut self) {
        let b = &self.cfg.buffer;
        let (max, bytes) = (b.max_bytes as f64, self.bytes as f64);
        let reserve = (self.poll_records * self.largest) as f64;
        if bytes >= b.high * max || (self.bytes > 0 && bytes + reserve > max) {
            self.global.insert(Reason::Buffer);
        } else if bytes <= b.low * max && (self.bytes == 0 || bytes + reserve <= max) {
            self.global.remove(Reason::Buffer);
        }
    }

    pub fn metrics(&self) -> Metrics {
        let mut m = self.m.clone();
        m.in_flight = self.in_flight;
        m.buffered_bytes = self.bytes;
        m.buffered_records = self.records;
        m.assigned = self.parts.len();
        let now = Instant::now();
        let mut waiting = self
            .global_rate
            .since
            .filter(|_| self.global_rate.active)
            .map_or(0, |s| (now - s).as_millis() as u64);
        for part in self.parts.values() {
            let eff = part.reasons.union(self.global);
            for r in eff.iter() {
                *m.paused.entry(r).or_default() += 1;
            }
            m.breaker_open += usize::from(part.breaker.is_open());
            if let (Some(next), Some(c)) = (part.tracker.next(), &part.last_commit) {
                m.commit_lag += (next - c.offset).max(0);
            }
            if part.rate.active {
                waiting += part.rate.since.map_or(0, |s| (now - s).as_millis() as u64);
            }
        }
        m.throttled_ms += waiting;
        for (t, l) in m.tiers.iter_mut().zip(&self.lateness) {
            l.fill(t);
        }
        m
    }
}

/// Buffer watermarks of one partition, with hysteresis.
fn update_buffer(cfg: &Config, part: &mut Part) {
    let (high, low) = (cfg.buffer.high, cfg.buffer.low);
    let (max_b, max_r) = (
        cfg.partition_max_bytes() as f64,
        cfg.partition.max_records as f64,
    );
    let (b, r) = (part.bytes as f64, part.records as f64);
    if b >= high * max_b || r >= high * max_r {
        part.reasons.insert(Reason::Buffer);
    } else if b <= low * max_b && r <= low * max_r {
        part.reasons.remove(Reason::Buffer);
    }
}

/// Offset-map pressure: measured exactly only when enough completions
/// could have grown it to the threshold (75% of the limit) since the last
/// measurement. Clears below 60%.
fn check_map(tp: &TopicPartition, part: &mut Part, limit: usize) -> Option<Event> {
    if part.map_check > 0 {
        part.map_check -= 1;
        return None;
    }
    let (at, map) = part.tracker.commit_point()?;
    let bytes = map.encoded_len(at);
    let threshold = limit * 3 / 4;
    if bytes >= threshold {
        part.map_check = 0;
        if part.reasons.insert(Reason::OffsetMap) {
            return Some(Event::OffsetMapFull {
                partition: tp.clone(),
                bytes,
                limit,
            });
        }
    } else {
        if bytes < limit * 3 / 5 {
            part.reasons.remove(Reason::OffsetMap);
        }
        part.map_check = if part.reasons.contains(Reason::OffsetMap) {
            0
        } else {
            (threshold - bytes) / MAX_MAP_GROWTH
        };
    }
    None
}

/// Bytes a record counts for in buffers and byte rates.
pub(crate) fn record_bytes(r: &ConsumerRecord) -> usize {
    r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + headers::size(&r.headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset_map::OffsetMap;
    use bytes::Bytes;

    fn rec(topic: &str, partition: i32, offset: i64, key: &str) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp: 0,
            log_append_time: false,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        }
    }

    fn core() -> Core {
        let cfg = Config {
            topics: vec!["t".into()],
            ..Config::default()
        };
        Core::new(Arc::new(cfg), Instant::now())
    }

    #[test]
    fn a_late_completion_never_touches_the_new_owner() {
        let mut c = core();
        let tp = TopicPartition::new("t", 0);
        c.add(tp.clone(), Tracker::new(Some(0), OffsetMap::default()));
        c.accept(
            vec![rec("t", 0, 0, "a"), rec("t", 0, 1, "b")],
            Instant::now(),
            0,
        );
        let jobs = c.next_jobs(Instant::now());
        assert_eq!(jobs.len(), 2);
        c.begin_revoke(std::slice::from_ref(&tp));
        c.remove(std::slice::from_ref(&tp));
        // Reassigned to us; the old jobs finish afterwards.
        c.add(tp.clone(), Tracker::new(Some(0), OffsetMap::default()));
        for j in jobs {
            c.finish(j, Done::Processed);
        }
        let points = c.commit_points(None);
        assert_eq!(points[0].2.offset, 0, "the new state saw no completion");
        assert_eq!(c.metrics().processed, 0);
        assert_eq!(c.metrics().in_flight, 0);
    }

    #[test]
    fn same_key_waits_for_its_retry_other_keys_do_not() {
        let mut c = core();
        let tp = TopicPartition::new("t", 0);
        c.add(tp.clone(), Tracker::new(Some(0), OffsetMap::default()));
        let now = Instant::now();
        c.accept(
            vec![
                rec("t", 0, 0, "a"),
                rec("t", 0, 1, "a"),
                rec("t", 0, 2, "b"),
            ],
            now,
            0,
        );
        let mut jobs = c.next_jobs(now);
        let offsets: Vec<i64> = jobs.iter().map(|j| j.work.rec.offset).collect();
        assert_eq!(offsets, vec![0, 2], "one per key");
        let b = jobs.pop().unwrap();
        let a = jobs.pop().unwrap();
        let err = HandlerError::new(crate::FailureKind::Retryable, "x", "y");
        c.retry_later(a, Duration::from_millis(50), &err, now);
        c.finish(b, Done::Processed);
        assert!(c.next_jobs(now).is_empty(), "key a is held by its retry");
        c.tick(now + Duration::from_millis(60), 0);
        let again = c.next_jobs(now + Duration::from_millis(60));
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].work.rec.offset, 0,
            "the retry runs before offset 1"
        );
    }

    #[test]
    fn pauses_of_partitions_that_stay_survive_a_revoke_of_others() {
        let mut c = core();
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        c.add(p0.clone(), Tracker::default());
        c.add(p1.clone(), Tracker::default());
        c.set_manual(Some(std::slice::from_ref(&p0)), true);
        assert_eq!(c.pause_changes(), (vec![p0.clone()], vec![]));
        c.begin_revoke(std::slice::from_ref(&p1));
        c.remove(std::slice::from_ref(&p1));
        assert_eq!(
            c.pause_changes(),
            (vec![], vec![]),
            "p0 stays paused, unchanged"
        );
        assert_eq!(c.metrics().paused.get(&Reason::Manual), Some(&1));
        c.set_manual(Some(std::slice::from_ref(&p0)), false);
        assert_eq!(c.pause_changes(), (vec![], vec![p0]));
    }
}
