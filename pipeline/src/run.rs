//! Running a pipeline: the poll loop, the timer task, handler workers,
//! forwards, commits, the rebalance listener and graceful shutdown.
//!
//! ```text
//! poll loop ──records──▶ Core::accept ──▶ Core::next_jobs ──spawn──▶ worker
//!     │ interval commit                                            │ handler, then
//!     │ (listener: revoke = drain, commit, forget)                 │ retry later / forward (acked) / done
//! timer task: due retries, tier holds, rate waits ──▶ Core::tick ──┘ Core::finish ──▶ next_jobs
//! ```
//! Every decision is made under the core's mutex; pauses and seeks are
//! applied to the consumer under it too, so they happen in decision order.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use kafka_ingest::{
    Admin, Backoff, Client, ConfigResource, Consumer, ConsumerBuilder, NewTopic, OffsetAndMetadata,
    OffsetSpec, Producer, ProducerRecord, RebalanceListener, TopicPartition,
};
use tokio::sync::Notify;

use crate::config::{Config, InvalidMetadata};
use crate::core::{Core, Done, Job, Role};
use crate::error::{Error, FailureKind, HandlerError, HandlerResult, Result};
use crate::headers::{forward_headers, Failure};
use crate::metrics::Metrics;
use crate::offset_map::OffsetMap;
use crate::rate::RateLimits;
use crate::record::{At, Event, Record};
use crate::tracker::Tracker;
use crate::PipelineBuilder;

type HandlerFn = Arc<dyn Fn(Record) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Where forwards go, per source topic.
#[derive(Debug, Default)]
struct Destinations {
    tiers: Vec<Vec<String>>,
    dlq: Vec<String>,
    partitions: HashMap<String, i32>,
}

pub(crate) struct Shared {
    cfg: Arc<Config>,
    core: Mutex<Core>,
    producer: Producer,
    consumer: OnceLock<Consumer>,
    group: OnceLock<String>,
    admin: OnceLock<Admin>,
    handler: OnceLock<HandlerFn>,
    dest: OnceLock<Destinations>,
    /// Wakes the timer task (a nearer deadline may exist).
    timer: Notify,
    /// What the timer task sleeps until.
    timer_at: Mutex<Option<Instant>>,
    /// A job ended (revoke and shutdown wait for this).
    idle: Notify,
    shutdown: AtomicBool,
    done: AtomicBool,
    fatal: Mutex<Option<Error>>,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the core, then reports its events outside the lock.
    fn locked<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (r, events) = {
            let mut core = self.core();
            let r = f(&mut core);
            (r, core.take_events())
        };
        self.emit(events);
        r
    }

    fn emit(&self, events: Vec<Event>) {
        for e in events {
            match &self.cfg.on_event {
                Some(f) => f(&e),
                None => log_event(&e),
            }
        }
    }

    /// Starts what can start, applies pause changes, wakes the timer.
    fn pump(self: &Arc<Self>) {
        let events = {
            let mut core = self.core();
            for job in core.next_jobs(Instant::now()) {
                let (id, tp) = (job.id, job.tp.clone());
                let handle = tokio::spawn(run_job(self.clone(), job));
                core.aborts.insert(id, (tp, handle.abort_handle()));
            }
            self.apply_pauses(&mut core);
            (core.take_events(), core.deadline())
        };
        self.emit(events.0);
        if let Some(due) = events.1 {
            let sleeping = *self.timer_at.lock().unwrap_or_else(|p| p.into_inner());
            if sleeping.is_none_or(|t| due < t) {
                self.timer.notify_one();
            }
        }
    }

    fn apply_pauses(&self, core: &mut Core) {
        let Some(consumer) = self.consumer.get() else {
            return;
        };
        let (pause, resume) = core.pause_changes();
        if !pause.is_empty() {
            consumer.pause(&pause);
        }
        if !resume.is_empty() {
            consumer.resume(&resume);
        }
    }

    fn finish(self: &Arc<Self>, job: Job, done: Done) {
        self.locked(|c| c.finish(job, done));
        self.idle.notify_waiters();
        self.pump();
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(AtomicOrdering::Acquire)
    }

    fn group(&self) -> &str {
        self.group.get().map_or("", |g| g.as_str())
    }

    /// Commits the committable offsets (and maps) of `tps` (all when `None`).
    async fn commit(&self, tps: Option<&[TopicPartition]>) {
        let Some(consumer) = self.consumer.get() else {
            return;
        };
        let points = self.locked(|c| c.commit_points(tps));
        if points.is_empty() {
            return;
        }
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = points
            .iter()
            .map(|(tp, _, o)| (tp.clone(), o.clone()))
            .collect();
        match consumer.commit_offsets_with_metadata(&offsets).await {
            Ok(()) => self.locked(|c| c.committed(points)),
            Err(e) => self.locked(|c| c.commit_failed(e.to_string())),
        }
    }

    /// Waits until no job of `tps` runs, at most `limit`.
    async fn drain(&self, tps: Option<&[TopicPartition]>, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.core().in_flight_of(tps) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.core().in_flight_of(tps) == 0;
            }
        }
    }

    /// Revoked (or lost) partitions: stop, drain within the revoke
    /// timeout (then cancel), commit what completed, forget them.
    async fn revoke(self: &Arc<Self>, tps: &[TopicPartition], commit: bool) {
        self.locked(|c| c.begin_revoke(tps));
        self.pump();
        if !self.drain(Some(tps), self.cfg.revoke_timeout).await {
            tracing::warn!(
                partitions = tps.len(),
                "revoke timeout: cancelling running handlers"
            );
        }
        if commit {
            self.commit(Some(tps)).await;
        }
        self.locked(|c| c.remove(tps));
        self.pump();
    }

    /// Newly assigned partitions: read their committed offset maps.
    async fn assign(self: &Arc<Self>, consumer: &Consumer, tps: &[TopicPartition]) {
        let committed = match consumer.committed_with_metadata(tps).await {
            Ok(c) => c,
            Err(e) => {
                // Without the map, completed records are redone: duplicates, never a loss.
                self.locked(|c| {
                    for tp in tps {
                        c.event(Event::MetadataIgnored {
                            partition: tp.clone(),
                            error: format!("reading committed offsets failed: {e}"),
                        });
                        c.add(tp.clone(), Tracker::default());
                    }
                });
                self.pump();
                return;
            }
        };
        let with_map: Vec<(TopicPartition, OffsetSpec)> = committed
            .iter()
            .filter(|(_, o)| o.as_ref().is_some_and(|o| !o.metadata.is_empty()))
            .map(|(tp, _)| (tp.clone(), OffsetSpec::Latest))
            .collect();
        let ends = match (self.admin.get(), with_map.is_empty()) {
            (Some(admin), false) => admin.list_offsets(&with_map).await.ok(),
            _ => None,
        };
        for tp in tps {
            let found = committed.get(tp).cloned().flatten();
            let end = ends.as_ref().and_then(|e| e.get(tp)).map(|o| o.offset);
            let tracker = match found {
                None => Tracker::default(),
                Some(oam) => match OffsetMap::decode(&oam.metadata, oam.offset, end) {
                    Ok(map) => Tracker::new(Some(oam.offset), map),
                    Err(source) if self.cfg.invalid_metadata == InvalidMetadata::Ignore => {
                        self.locked(|c| {
                            c.event(Event::MetadataIgnored {
                                partition: tp.clone(),
                                error: source.to_string(),
                            })
                        });
                        Tracker::new(Some(oam.offset), OffsetMap::default())
                    }
                    Err(source) => {
                        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
                        fatal.get_or_insert(Error::OffsetMap {
                            partition: tp.clone(),
                            source,
                        });
                        continue; // not tracked: its records are not processed
                    }
                },
            };
            self.locked(|c| c.add(tp.clone(), tracker));
        }
        self.pump();
    }

    fn next_tier(&self, role: Role) -> Option<(usize, &str)> {
        let dest = self.dest.get()?;
        let (topic, next) = match role {
            Role::Source { topic } => (topic, 0),
            Role::Tier { topic, tier } => (topic, tier + 1),
        };
        dest.tiers
            .get(topic)?
            .get(next)
            .map(|name| (next, name.as_str()))
    }

    fn dlq(&self, role: Role) -> String {
        let (Role::Source { topic } | Role::Tier { topic, .. }) = role;
        self.dest
            .get()
            .and_then(|d| d.dlq.get(topic).cloned())
            .unwrap_or_else(|| self.cfg.dlq_topic(&self.cfg.topics[topic]))
    }

    /// Produces the forward and waits for its acknowledgement; tries again
    /// (with backoff) until acked, or gives up when the partition is gone
    /// or the pipeline stops (the record then stays uncommitted).
    async fn forward(
        &self,
        job: &Job,
        topic: &str,
        error: &HandlerError,
        due: Option<i64>,
    ) -> bool {
        let rec = &job.work.rec;
        let wall = now_ms();
        let failure = Failure {
            class: error.class(),
            message: error.message(),
            attempts: job.work.attempt.saturating_sub(1),
            first_failure: job.work.first_failure.unwrap_or(wall),
            last_failure: wall,
            due,
        };
        let partition = self
            .dest
            .get()
            .and_then(|d| d.partitions.get(topic))
            .and_then(|n| (rec.partition < *n).then_some(rec.partition));
        let out = ProducerRecord {
            topic: topic.to_owned(),
            partition,
            key: rec.key.clone(),
            value: rec.value.clone(),
            headers: forward_headers(rec, self.group(), &failure),
            timestamp: None,
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            let result = match self.producer.send(out.clone()).await {
                Ok(delivery) => delivery.await.map(|_| ()),
                Err(e) => Err(e),
            };
            let e = match result {
                Ok(()) => return true,
                Err(e) => e,
            };
            self.locked(|c| {
                c.event(Event::ForwardFailed {
                    at: job.work.at(),
                    topic: topic.to_owned(),
                    error: e.to_string(),
                })
            });
            if self.stopping() {
                return false;
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn dead_letter(self: &Arc<Self>, job: Job, error: HandlerError) {
        let Some((job, error)) = self.locked(|c| c.admit_dead(job, error)) else {
            self.idle.notify_waiters();
            self.pump();
            return; // held by the breaker
        };
        let topic = self.dlq(job.role);
        if !self.forward(&job, &topic, &error, None).await {
            return self.finish(job, Done::Abandoned);
        }
        let fatal = error.is_fatal();
        self.locked(|c| {
            c.event(Event::DeadLettered {
                at: job.work.at(),
                origin: At {
                    partition: TopicPartition::new(
                        job.work.origin.topic.clone(),
                        job.work.origin.partition,
                    ),
                    offset: job.work.origin.offset,
                },
                attempt: job.work.attempt.saturating_sub(1),
                topic: topic.clone(),
                fatal,
                error: error.to_string(),
            })
        });
        self.finish(job, Done::DeadLettered { fatal });
    }
}

fn panic_error(p: Box<dyn std::any::Any + Send>) -> HandlerError {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".into());
    HandlerError::new(FailureKind::Retryable, "panic", msg)
}

/// One job: the handler, then what its outcome requires.
async fn run_job(s: Arc<Shared>, mut job: Job) {
    if let Some(error) = job.dead_letter.take() {
        return s.dead_letter(job, error).await;
    }
    let Some(handler) = s.handler.get().cloned() else {
        return s.finish(job, Done::Abandoned);
    };
    s.locked(|c| c.started(&job, now_ms()));
    job.work.first_attempt.get_or_insert_with(Instant::now);
    let result = AssertUnwindSafe(handler(job.work.record()))
        .catch_unwind()
        .await;
    job.work.stage_attempts += 1;
    let error = match result {
        Ok(Ok(())) => return s.finish(job, Done::Processed),
        Ok(Err(e)) => e,
        Err(p) => panic_error(p),
    };
    job.work.first_failure.get_or_insert_with(now_ms);
    job.work.attempt += 1;
    if !error.is_fatal() {
        let retry = s.cfg.retry;
        let max = match job.role {
            Role::Source { .. } => retry.max_attempts,
            Role::Tier { .. } => 1,
        };
        let made = job.work.stage_attempts;
        let since = job
            .work
            .first_attempt
            .map_or(Duration::ZERO, |t| t.elapsed());
        let prev = job.work.prev_delay;
        let delay = s.locked(|c| retry.delay(made, prev, &mut c.rng));
        let elapsed_ok = retry.max_elapsed.is_none_or(|m| since + delay <= m);
        if made < max && elapsed_ok {
            s.locked(|c| c.retry_later(job, delay, &error, Instant::now()));
            return s.pump();
        }
        if let Some((tier, topic)) = s.next_tier(job.role) {
            let topic = topic.to_owned();
            let due = now_ms() + s.cfg.tiers[tier].as_millis() as i64;
            if !s.forward(&job, &topic, &error, Some(due)).await {
                return s.finish(job, Done::Abandoned);
            }
            s.locked(|c| {
                c.event(Event::Forwarded {
                    at: job.work.at(),
                    attempt: job.work.attempt - 1,
                    topic,
                    error: error.to_string(),
                })
            });
            return s.finish(job, Done::Forwarded(tier));
        }
    }
    s.dead_letter(job, error).await
}

/// The rebalance listener the pipeline installs on its consumer.
struct Listener(Weak<Shared>);

impl RebalanceListener for Listener {
    fn on_partitions_revoked<'a>(
        &'a self,
        _: &'a Consumer,
        tps: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.revoke(tps, true).await;
            }
        })
    }

    fn on_partitions_lost<'a>(
        &'a self,
        _: &'a Consumer,
        tps: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.revoke(tps, false).await;
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        tps: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.assign(consumer, tps).await;
            }
        })
    }
}

async fn timer_task(s: Arc<Shared>) {
    while !s.done.load(AtomicOrdering::Acquire) {
        let woken = s.timer.notified();
        let far = Instant::now() + Duration::from_secs(3600);
        let deadline = s.core().deadline().unwrap_or(far);
        *s.timer_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
        let at = tokio::time::Instant::from_std(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = woken => {}
        }
        s.locked(|c| c.tick(Instant::now(), now_ms()));
        s.pump();
    }
}

fn log_event(e: &Event) {
    match e {
        Event::Retrying { .. } | Event::Forwarded { .. } => tracing::info!("{e}"),
        Event::BreakerOpen { .. } => tracing::error!("{e}"),
        _ => tracing::warn!("{e}"),
    }
}

/// The ingestion pipeline: built by [`Pipeline::builder`], run with
/// [`run`](Self::run) until [`PipelineHandle::shutdown`].
pub struct Pipeline {
    shared: Arc<Shared>,
    consumer: ConsumerBuilder,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

/// Controls a running pipeline. Cheap to clone.
#[derive(Clone)]
pub struct PipelineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle").finish_non_exhaustive()
    }
}

impl PipelineHandle {
    /// Starts a graceful shutdown: stop fetching, finish (or after the
    /// shutdown timeout cancel) running handlers and forwards, commit,
    /// leave the group. [`Pipeline::run`] then returns.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, AtomicOrdering::Release);
    }

    /// The current counters and gauges.
    pub fn metrics(&self) -> Metrics {
        self.shared.core().metrics()
    }

    /// The pipeline's consumer once [`Pipeline::run`] has connected it
    /// (for its client metrics).
    pub fn consumer(&self) -> Option<Consumer> {
        self.shared.consumer.get().cloned()
    }

    /// Pauses partitions (reason `manual`): nothing more of them is
    /// fetched or started.
    pub fn pause(&self, tps: &[TopicPartition]) {
        self.shared.locked(|c| c.set_manual(Some(tps), true));
        self.shared.pump();
    }

    /// Removes the `manual` reason from partitions.
    pub fn resume(&self, tps: &[TopicPartition]) {
        self.shared.locked(|c| c.set_manual(Some(tps), false));
        self.shared.pump();
    }

    /// Pauses every partition (reason `manual`).
    pub fn pause_all(&self) {
        self.shared.locked(|c| c.set_manual(None, true));
        self.shared.pump();
    }

    /// Ends [`pause_all`](Self::pause_all).
    pub fn resume_all(&self) {
        self.shared.locked(|c| c.set_manual(None, false));
        self.shared.pump();
    }

    /// Changes the rate limits while running.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.shared.locked(|c| c.set_rate(limits, Instant::now()));
        self.shared.pump();
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.shared.core().rate()
    }

    /// Closes the DLQ breaker of `tps` (all when `None`): held dead letters
    /// are forwarded and the partitions resume.
    pub fn reset_breaker(&self, tps: Option<&[TopicPartition]>) {
        let s = &self.shared;
        let jobs = s.locked(|c| c.reset_breaker(tps));
        {
            let mut core = s.core();
            for job in jobs {
                let (id, tp) = (job.id, job.tp.clone());
                let handle = tokio::spawn(run_job(s.clone(), job));
                core.aborts.insert(id, (tp, handle.abort_handle()));
            }
        }
        s.pump();
    }

    /// Partitions the pipeline tracks now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.core().assigned()
    }

    /// The offset-map budget in force (`offset.metadata.max.bytes`, or a
    /// lower configured one).
    pub fn metadata_limit(&self) -> usize {
        self.shared.core().metadata_limit()
    }
}

impl Pipeline {
    /// Starts a builder over a consumer builder (the pipeline installs its
    /// rebalance listener and turns `enable.auto.commit` off) and an
    /// idempotent producer for forwards.
    pub fn builder(consumer: ConsumerBuilder, producer: Producer) -> PipelineBuilder {
        PipelineBuilder::new(consumer, producer)
    }

    pub(crate) fn new(consumer: ConsumerBuilder, producer: Producer, cfg: Config) -> Pipeline {
        let cfg = Arc::new(cfg);
        Pipeline {
            shared: Arc::new(Shared {
                core: Mutex::new(Core::new(cfg.clone(), Instant::now())),
                cfg,
                producer,
                consumer: OnceLock::new(),
                group: OnceLock::new(),
                admin: OnceLock::new(),
                handler: OnceLock::new(),
                dest: OnceLock::new(),
                timer: Notify::new(),
                timer_at: Mutex::new(None),
                idle: Notify::new(),
                shutdown: AtomicBool::new(false),
                done: AtomicBool::new(false),
                fatal: Mutex::new(None),
            }),
            consumer,
        }
    }

    /// A handle to control the pipeline (usable before and during `run`).
    pub fn handle(&self) -> PipelineHandle {
        PipelineHandle {
            shared: self.shared.clone(),
        }
    }

    /// Connects, subscribes and processes records with `handler` until
    /// shutdown; returns the final metrics.
    pub async fn run<H, F>(self, handler: H) -> Result<Metrics>
    where
        H: Fn(Record) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = HandlerResult> + Send + 'static,
    {
        let s = self.shared;
        let h: HandlerFn = Arc::new(move |r| handler(r).boxed());
        let _ = s.handler.set(h);
        let consumer = self
            .consumer
            .set("enable.auto.commit", "false")
            .rebalance_listener(Arc::new(Listener(Arc::downgrade(&s))))
            .build()
            .await
            .map_err(Error::kafka("connecting the consumer"))?;
        let group = consumer
            .config()
            .group_id
            .clone()
            .ok_or_else(|| Error::config("consumer", "needs group.id"))?;
        let _ = s.group.set(group);
        let poll_records = consumer.config().max_poll_records;
        s.locked(|c| c.set_poll_records(poll_records));
        let client = Client::connect(consumer.config().client.clone())
            .await
            .map_err(Error::kafka("connecting the admin client"))?;
        let admin = client.admin();
        let limit = metadata_limit(&admin).await;
        s.locked(|c| c.set_metadata_limit(limit));
        let topics = prepare_topics(&s.cfg, &admin).await?;
        let _ = s.dest.set(topics.dest);
        let _ = s.admin.set(admin);
        let _ = s.consumer.set(consumer.clone());
        consumer
            .subscribe(&topics.subscribe)
            .await
            .map_err(Error::kafka("subscribing"))?;
        let timer = tokio::spawn(timer_task(s.clone()));
        let result = poll_loop(&s, &consumer).await;
        shutdown(&s, &consumer).await;
        s.done.store(true, AtomicOrdering::Release);
        s.timer.notify_one();
        let _ = timer.await;
        client.close();
        result?;
        let metrics = s.core().metrics();
        Ok(metrics)
    }
}

async fn poll_loop(s: &Arc<Shared>, consumer: &Consumer) -> Result<()> {
    let mut last_commit = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        if s.stopping() {
            return Ok(());
        }
        if let Some(e) = s.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        match consumer.poll(s.cfg.poll_timeout).await {
            Ok(records) => {
                backoff.reset();
                if !records.is_empty() {
                    s.locked(|c| {
                        for (tp, offset) in c.accept(records, Instant::now(), now_ms()) {
                            // The partition is ours (just polled); a failure means it was revoked.
                            let _ = consumer.seek(&tp, offset);
                        }
                    });
                    s.pump();
                }
            }
            Err(e) if e.is_retriable() => {
                tracing::warn!(error = %e, "poll failed; polling again");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                return Err(Error::Kafka {
                    context: "polling".into(),
                    source: e,
                })
            }
        }
        if last_commit.elapsed() >= s.cfg.commit_interval {
            s.commit(None).await;
            last_commit = Instant::now();
        }
    }
}

/// Stop fetching and starting, finish or cancel running work within the
/// shutdown timeout, commit, leave the group.
async fn shutdown(s: &Arc<Shared>, consumer: &Consumer) {
    s.shutdown.store(true, AtomicOrdering::Release);
    s.locked(|c| c.stop());
    s.pump();
    if !s.drain(None, s.cfg.shutdown_timeout).await {
        let n = s.locked(|c| c.abort_all());
        tracing::warn!(
            cancelled = n,
            "shutdown timeout: cancelled running handlers"
        );
    }
    s.commit(None).await;
    consumer.close().await;
    if let Err(e) = s.producer.flush().await {
        tracing::error!(error = %e, "flushing forwards at shutdown failed");
    }
}

/// `offset.metadata.max.bytes` of a broker (4096, Kafka's default, if it
/// cannot be read).
async fn metadata_limit(admin: &Admin) -> usize {
    let read = async {
        let broker = admin.describe_cluster().await.ok()?.brokers.first()?.id;
        let configs = admin
            .describe_configs(&[ConfigResource::broker(broker)])
            .await
            .ok()?;
        configs
            .first()?
            .entries
            .iter()
            .find(|e| e.name == "offset.metadata.max.bytes")?
            .value
            .as_deref()?
            .parse()
            .ok()
    };
    match read.await {
        Some(n) => n,
        None => {
            tracing::warn!(
                "could not read offset.metadata.max.bytes; assuming Kafka's default 4096"
            );
            4096
        }
    }
}

struct Prepared {
    subscribe: Vec<String>,
    dest: Destinations,
}

/// Names every tier and DLQ topic, creates the missing ones (when
/// configured) like their source topic, and learns partition counts.
async fn prepare_topics(cfg: &Config, admin: &Admin) -> Result<Prepared> {
    let mut dest = Destinations::default();
    let mut subscribe = cfg.topics.clone();
    let mut wanted: Vec<(String, String)> = Vec::new(); // (topic, its source)
    for t in &cfg.topics {
        let tiers: Vec<String> = (0..cfg.tiers.len()).map(|i| cfg.tier_topic(t, i)).collect();
        subscribe.extend(tiers.iter().cloned());
        wanted.extend(tiers.iter().map(|n| (n.clone(), t.clone())));
        let dlq = cfg.dlq_topic(t);
        wanted.push((dlq.clone(), t.clone()));
        dest.tiers.push(tiers);
        dest.dlq.push(dlq);
    }
    let existing: std::collections::HashSet<String> = admin
        .list_topics(false)
        .await
        .map_err(Error::kafka("listing topics"))?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if cfg.create_topics {
        let mut create = Vec::new();
        for (name, source) in &wanted {
            if existing.contains(name) || create.iter().any(|n: &NewTopic| &n.name == name) {
                continue;
            }
            let src = admin
                .describe_topic(source)
                .await
                .map_err(Error::kafka(format!("describing source topic `{source}`")))?;
            let rf = src
                .partitions
                .first()
                .map_or(1, |p| p.replicas.len().max(1)) as i16;
            create.push(NewTopic::new(name, src.partitions.len() as i32, rf));
        }
        if !create.is_empty() {
            for (name, r) in admin
                .create_topics(create)
                .await
                .map_err(Error::kafka("creating retry and DLQ topics"))?
            {
                match r {
                    Ok(()) => {}
                    Err(e) if e.code().map(|c| c.0) == Some(36) => {} // created meanwhile
                    Err(e) => return Err(Error::kafka(format!("creating topic `{name}`"))(e)),
                }
            }
        }
    }
    for (name, _) in &wanted {
        if let Ok(d) = admin.describe_topic(name).await {
            dest.partitions
                .insert(name.clone(), d.partitions.len() as i32);
        }
    }
    Ok(Prepared { subscribe, dest })
}
