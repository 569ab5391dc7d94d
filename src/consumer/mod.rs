//! The consumer: group membership with manual or automatic commits,
//! manual assignment, pause/resume, seeks and a rebalance listener.
//!
//! ```no_run
//! # async fn demo() -> kafka_ingest::Result<()> {
//! use std::time::Duration;
//! use kafka_ingest::Consumer;
//! let consumer = Consumer::builder()
//!     .bootstrap("127.0.0.1:9092")
//!     .set("group.id", "ingest")
//!     .set("enable.auto.commit", "false")
//!     .set("auto.offset.reset", "earliest")
//!     .build()
//!     .await?;
//! consumer.subscribe(&["events"]).await?;
//! loop {
//!     let records = consumer.poll(Duration::from_secs(1)).await?;
//!     for r in &records { /* process */ }
//!     consumer.commit().await?; // at-least-once: commit after processing
//! #   break;
//! }
//! consumer.close().await;
//! # Ok(()) }
//! ```

mod config;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;

pub use crate::engine::consumer::Strategy;
pub use config::{ConsumerConfig, OffsetReset};

use crate::client::cluster_config;
use crate::config::{property_setters, Pending, Settable};
use crate::engine::consumer::group::{Group, GroupConfig, Joined};
use crate::engine::consumer::{ConsumerEngine, FetchConfig};
use crate::engine::{admin, Cluster, ClusterError};
use crate::error::{Error, Result};
use crate::types::{ListedOffset, OffsetAndMetadata, OffsetSpec, TopicPartition};

/// A record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared by the records of a partition: no copy per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Create time, or the broker's append time when `log_append_time`.
    pub timestamp: i64,
    /// Whether `timestamp` is the broker's LogAppendTime.
    pub log_append_time: bool,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Called during rebalances, from inside [`Consumer::poll`] (and `close`),
/// so the application may commit here before ownership moves. Do not call
/// `poll` from a callback.
pub trait RebalanceListener: Send + Sync {
    /// Partitions are about to move away; commit what was processed.
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions were added to this member.
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions were lost without a chance to commit (the member was
    /// fenced or timed out); others may own them already. Defaults to
    /// `on_partitions_revoked`, as in Java.
    fn on_partitions_lost<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Subscribed,
    Assigned,
}

struct Inner {
    engine: Arc<ConsumerEngine>,
    cluster: Arc<Cluster>,
    group: Option<Arc<Group>>,
    config: ConsumerConfig,
    listener: Option<Arc<dyn RebalanceListener>>,
    poll_lock: tokio::sync::Mutex<()>,
    /// A rebalance round running in the background, so `poll` can return
    /// at its timeout (and be dropped) without disturbing the join.
    join: Mutex<Option<PendingJoin>>,
    mode: Mutex<Mode>,
    last_auto_commit: Mutex<Instant>,
    /// What the subscription last saw in metadata (see `watch_metadata`).
    watch: Mutex<Watch>,
    closed: AtomicBool,
}

/// Subscription state checked against metadata every `metadata.max.age.ms`:
/// a pattern picks up new topics, and a partition-count change rejoins.
struct Watch {
    pattern: Option<regex::Regex>,
    partitions: BTreeMap<String, usize>,
    checked: Instant,
}

type PendingJoin = tokio::task::JoinHandle<std::result::Result<Joined, ClusterError>>;

/// A Kafka consumer. Cheap to clone; clones are the same consumer.
#[derive(Clone)]
pub struct Consumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.inner.config.group_id)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Starts a builder with default settings.
    pub fn builder() -> ConsumerBuilder {
        ConsumerBuilder::default()
    }

    /// Creates a consumer from a config (validated first).
    pub async fn new(config: ConsumerConfig) -> Result<Consumer> {
        Self::create(config, None).await
    }

    async fn create(
        config: ConsumerConfig,
        listener: Option<Arc<dyn RebalanceListener>>,
    ) -> Result<Consumer> {
        config.validate()?;
        let mut cc = cluster_config(&config.client);
        cc.auto_create_topics = config.allow_auto_create_topics;
        let cluster = Cluster::new(cc);
        cluster
            .retrying("Metadata", || {
                cluster.refresh(crate::engine::Topics::Some(&[]))
            })
            .await?;
        let engine = ConsumerEngine::start(
            cluster.clone(),
            FetchConfig {
                min_bytes: config.fetch_min_bytes,
                max_wait: config.fetch_max_wait,
                max_bytes: config.fetch_max_bytes,
                partition_max_bytes: config.max_partition_fetch_bytes,
                read_committed: config.read_committed,
            },
        );
        let group = config.group_id.as_ref().map(|g| {
            let tasks = &engine.tasks;
            Group::start(
                cluster.clone(),
                GroupConfig {
                    group_id: g.clone(),
                    instance_id: config.group_instance_id.clone(),
                    session_timeout: config.session_timeout,
                    rebalance_timeout: config.max_poll_interval,
                    heartbeat_interval: config.heartbeat_interval,
                    strategies: config.assignment_strategies.clone(),
                },
                config.max_poll_interval,
                engine.data.clone(),
                tasks,
            )
        });
        Ok(Consumer {
            inner: Arc::new(Inner {
                engine,
                cluster,
                group,
                config,
                listener,
                poll_lock: tokio::sync::Mutex::new(()),
                join: Mutex::new(None),
                mode: Mutex::new(Mode::None),
                last_auto_commit: Mutex::new(Instant::now()),
                watch: Mutex::new(Watch {
                    pattern: None,
                    partitions: BTreeMap::new(),
                    checked: Instant::now(),
                }),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The validated config.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.config
    }

    #[cfg(feature = "unstable-internals")]
    pub(crate) fn engine_tasks(&self) -> &crate::engine::tasks::Tasks {
        &self.inner.engine.tasks
    }

    #[cfg(feature = "unstable-internals")]
    pub(crate) fn inject_session_fault(&self, unknown_id: bool) {
        *self
            .inner
            .engine
            .session_fault
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(unknown_id);
    }

    /// Broker throttling (KIP-219) this client has honoured so far
    /// (also in [`metrics`](Self::metrics)).
    pub fn throttle_metrics(&self) -> crate::metrics::ThrottleMetrics {
        self.inner.cluster.throttle_metrics()
    }

    /// A snapshot of this consumer's counters, gauges and per-partition lag.
    pub fn metrics(&self) -> crate::metrics::ConsumerMetrics {
        use std::sync::atomic::Ordering::Relaxed;
        let e = &self.inner.engine;
        let s = &e.stats;
        let (in_flight_requests, request_latency) = self.inner.cluster.request_metrics();
        crate::metrics::ConsumerMetrics {
            records_fetched: s.records_fetched.load(Relaxed),
            bytes_fetched: s.bytes_fetched.load(Relaxed),
            fetch_requests: s.fetch_requests.load(Relaxed),
            incremental_fetches: s.incremental_fetches.load(Relaxed),
            fetch_partitions_sent: s.fetch_partitions_sent.load(Relaxed),
            errors: s.errors.snapshot(),
            in_flight_requests,
            request_latency,
            rebalances: s.rebalances.load(Relaxed),
            commits: s.commits.load(Relaxed),
            commit_failures: s.commit_failures.load(Relaxed),
            commit_latency: s.commit_latency.snapshot(),
            lag: e.lag(),
            throttle: self.inner.cluster.throttle_metrics(),
        }
    }

    /// Times a commit and counts its outcome.
    async fn counted_commit<F>(&self, commit: F) -> Result<()>
    where
        F: std::future::Future<Output = std::result::Result<(), ClusterError>>,
    {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.inner.engine.stats;
        let start = Instant::now();
        let r = commit.await;
        s.commit_latency.record(start.elapsed());
        match &r {
            Ok(()) => s.commits.fetch_add(1, Relaxed),
            Err(e) => {
                s.errors.add(e.kind(), 1);
                s.commit_failures.fetch_add(1, Relaxed)
            }
        };
        Ok(r?)
    }

    fn mode(&self) -> Mode {
        *self.inner.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_mode(&self, m: Mode) {
        *self.inner.mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
    }

    fn group(&self) -> Result<&Arc<Group>> {
        self.inner.group.as_ref().ok_or_else(|| {
            Error::config("group.id", "is required for group management and commits")
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Joins the group and consumes `topics` (group management). When a
    /// topic's partition count changes, the member rejoins so the new
    /// partitions are assigned (checked every `metadata.max.age.ms`).
    pub async fn subscribe<S: AsRef<str>>(&self, topics: &[S]) -> Result<()> {
        crate::topic_name::validate_all(topics)?;
        let topics: Vec<String> = topics.iter().map(|t| t.as_ref().to_owned()).collect();
        self.subscribe_with(topics, None).await
    }

    /// Joins the group and consumes every topic whose whole name matches
    /// `pattern` (a [`regex`](https://docs.rs/regex) expression; internal
    /// topics excluded, as Java's `exclude.internal.topics`). Topics created
    /// later are picked up on the next metadata refresh
    /// (`metadata.max.age.ms`), which also rejoins on partition-count changes.
    pub async fn subscribe_pattern(&self, pattern: &str) -> Result<()> {
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::invalid(format!("pattern `{pattern}`: {e}")))?;
        let m = self
            .inner
            .cluster
            .retrying("Metadata", || {
                self.inner.cluster.refresh(crate::engine::Topics::All)
            })
            .await?;
        let topics = matching(&re, &m);
        self.subscribe_with(topics, Some(re)).await
    }

    async fn subscribe_with(
        &self,
        mut topics: Vec<String>,
        pattern: Option<regex::Regex>,
    ) -> Result<()> {
        self.check_open()?;
        if self.mode() == Mode::Assigned {
            return Err(Error::config(
                "subscribe",
                "this consumer uses assign(); call unsubscribe() first",
            ));
        }
        let group = self.group()?;
        topics.sort();
        topics.dedup();
        let m = self
            .inner
            .cluster
            .refresh(crate::engine::Topics::Some(&topics))
            .await
            .map_err(Error::from)?;
        {
            let mut w = self.watch();
            w.partitions = partition_counts(&topics, &m);
            w.pattern = pattern;
            w.checked = Instant::now();
        }
        group.subscribe(topics);
        self.set_mode(Mode::Subscribed);
        Ok(())
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.inner.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every `metadata.max.age.ms`: re-matches the pattern and compares
    /// partition counts; a change means a rejoin. Bounded by `left`; a
    /// failed refresh is tried again next time.
    async fn watch_metadata(&self, g: &Group, left: Duration) {
        let (due, all) = {
            let w = self.watch();
            (
                w.checked.elapsed() >= self.inner.config.client.metadata_max_age,
                w.pattern.is_some(),
            )
        };
        if !due {
            return;
        }
        let subscribed = g.subscription();
        let cluster = &self.inner.cluster;
        let refresh = async {
            if all {
                cluster.refresh(crate::engine::Topics::All).await
            } else {
                cluster
                    .refresh(crate::engine::Topics::Some(&subscribed))
                    .await
            }
        };
        let m = match tokio::time::timeout(left.max(Duration::from_millis(1)), refresh).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "subscription metadata refresh failed");
                return;
            }
            Err(_) => return,
        };
        let mut w = self.watch();
        w.checked = Instant::now();
        let topics = match &w.pattern {
            Some(re) => matching(re, &m),
            None => subscribed.clone(),
        };
        let counts = partition_counts(&topics, &m);
        if topics != subscribed {
            tracing::debug!(?topics, "pattern subscription changed");
            g.subscribe(topics);
        } else if counts != w.partitions {
            tracing::debug!(?counts, "partition counts changed; rejoining");
            g.request_rejoin();
        }
        w.partitions = counts;
    }

    /// Consumes exactly these partitions, without group management.
    pub async fn assign(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        crate::topic_name::validate_partitions(partitions)?;
        if self.mode() == Mode::Subscribed {
            return Err(Error::config(
                "assign",
                "this consumer uses subscribe(); call unsubscribe() first",
            ));
        }
        self.inner.engine.set_assignment(partitions);
        self.set_mode(if partitions.is_empty() {
            Mode::None
        } else {
            Mode::Assigned
        });
        Ok(())
    }

    /// Leaves the group (or drops the manual assignment).
    pub async fn unsubscribe(&self) -> Result<()> {
        let _g = self.inner.poll_lock.lock().await;
        if self.mode() == Mode::Subscribed {
            let owned = self.assignment();
            self.revoke(&owned).await;
            self.watch().pattern = None;
            if let Some(g) = &self.inner.group {
                g.unsubscribe();
                g.leave("the consumer unsubscribed").await;
            }
        }
        self.inner.engine.set_assignment(&[]);
        self.set_mode(Mode::None);
        Ok(())
    }

    /// Partitions currently assigned to this consumer.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.inner.engine.assignment()
    }

    /// Returns fetched records, waiting up to `timeout` for some. Also runs
    /// rebalances (and the listener) and auto-commits when enabled.
    ///
    /// Returns by `timeout` even while a rebalance is in progress: the
    /// JoinGroup/SyncGroup round runs in the background and the next poll
    /// applies its result. Cancel-safe: dropping the future loses no
    /// records and does not disturb the rebalance (a listener callback that
    /// was interrupted runs again on the next poll).
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.poll_max(timeout, self.inner.config.max_poll_records)
            .await
    }

    async fn poll_max(&self, timeout: Duration, max: usize) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        let _g = self.inner.poll_lock.lock().await;
        let deadline = Instant::now() + timeout;
        let engine = &self.inner.engine;
        if let Some(g) = &self.inner.group {
            g.polled();
        }
        loop {
            if let Some(e) = engine.tasks.fatal() {
                return Err(e.into());
            }
            let data = engine.data.clone();
            let arrived = data.notified();
            if let Some(g) = &self.inner.group {
                if let Some(e) = g.fatal() {
                    return Err(e.into());
                }
                if self.mode() == Mode::Subscribed {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.watch_metadata(g, left).await;
                    if self.step_rebalance(g).await? {
                        continue;
                    }
                }
            }
            self.update_positions().await?;
            self.maybe_auto_commit().await;
            if let Some(e) = engine.take_error() {
                return Err(e.into());
            }
            if let Some(e) = engine.take_failure() {
                return Err(e.into());
            }
            let mut records = Vec::new();
            engine.drain(max, |topic, partition, r| {
                if records.capacity() == 0 {
                    records.reserve_exact(max.min(1 << 16)); // one allocation per poll
                }
                records.push(ConsumerRecord {
                    topic: topic.clone(),
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    log_append_time: r.log_append_time,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                })
            });
            if !records.is_empty() {
                engine.failures_due();
                return Ok(records);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                engine.failures_due();
                return Ok(Vec::new());
            }
            // Positions still unknown: look again soon instead of sleeping it out.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), arrived).await;
        }
    }

    /// Records one by one (fetching one at a time from the prefetch buffer,
    /// so `commit` never covers records the stream has not yielded yet).
    pub fn stream(&self) -> impl Stream<Item = Result<ConsumerRecord>> + '_ {
        futures_util::stream::unfold((self, VecDeque::new()), |(c, mut buf)| async move {
            loop {
                if let Some(r) = buf.pop_front() {
                    return Some((Ok(r), (c, buf)));
                }
                match c.poll_max(Duration::from_millis(500), 1).await {
                    Ok(v) => buf.extend(v),
                    Err(Error::Closed) => return None,
                    Err(e) => return Some((Err(e), (c, buf))),
                }
            }
        })
    }

    /// Moves a rebalance forward without waiting for the broker: starts a
    /// background join when one is needed, applies a finished one. Returns
    /// whether it changed something (so `poll` looks again at once).
    async fn step_rebalance(&self, g: &Arc<Group>) -> Result<bool> {
        let finished = {
            let mut join = self.inner.join.lock().unwrap_or_else(|p| p.into_inner());
            match join.as_ref() {
                Some(h) if h.is_finished() => join.take(),
                Some(_) => return Ok(false), // still joining
                None => None,
            }
        };
        if let Some(handle) = finished {
            let joined = match handle.await {
                Ok(r) => r?,
                Err(e) => {
                    return Err(Error::Background {
                        task: "group join".into(),
                        message: e.to_string(),
                    })
                }
            };
            self.apply_join(g, joined).await;
            return Ok(true);
        }
        if !g.needs_join() {
            return Ok(false);
        }
        let engine = &self.inner.engine;
        if g.take_lost() {
            let owned = engine.assignment();
            if !owned.is_empty() {
                if let Some(l) = &self.inner.listener {
                    l.on_partitions_lost(self, &owned).await;
                }
                engine.set_assignment(&[]);
            }
        }
        if !g.cfg.cooperative() {
            // Eager: give everything up before rejoining.
            let owned = engine.assignment();
            if !owned.is_empty() {
                self.revoke(&owned).await;
                engine.set_assignment(&[]);
            }
        }
        let owned = engine.assignment();
        let (g2, data) = (g.clone(), engine.data.clone());
        let handle = tokio::spawn(async move {
            let r = g2.join(&owned).await;
            data.notify_waiters();
            r
        });
        *self.inner.join.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(true)
    }

    /// Takes on the assignment of a finished join (listener callbacks here).
    async fn apply_join(&self, g: &Arc<Group>, joined: Joined) {
        let engine = &self.inner.engine;
        let owned = engine.assignment();
        let now: BTreeSet<&TopicPartition> = joined.assignment.iter().collect();
        let before: BTreeSet<&TopicPartition> = owned.iter().collect();
        let revoked: Vec<TopicPartition> =
            before.difference(&now).map(|tp| (*tp).clone()).collect();
        let added: Vec<TopicPartition> = now.difference(&before).map(|tp| (*tp).clone()).collect();
        if !revoked.is_empty() {
            // Cooperative: give these up, then rejoin so others can take them (KIP-429).
            self.revoke(&revoked).await;
            engine.remove_partitions(&revoked);
            g.request_rejoin();
        }
        engine.add_partitions(&added);
        engine
            .stats
            .rebalances
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(
            generation = joined.generation,
            added = added.len(),
            revoked = revoked.len(),
            "rebalanced"
        );
        if let Some(l) = &self.inner.listener {
            l.on_partitions_assigned(self, &added).await;
        }
    }

    async fn revoke(&self, partitions: &[TopicPartition]) {
        if let Some(l) = &self.inner.listener {
            l.on_partitions_revoked(self, partitions).await;
        }
        if self.inner.config.enable_auto_commit && self.inner.group.is_some() {
            let positions: BTreeMap<TopicPartition, i64> = self
                .inner
                .engine
                .positions()
                .into_iter()
                .filter(|(tp, _)| partitions.contains(tp))
                .collect();
            if let Err(e) = self.commit_offsets(&positions).await {
                tracing::warn!(error = %e, "auto-commit before revocation failed");
            }
        }
    }

    async fn maybe_auto_commit(&self) {
        if !self.inner.config.enable_auto_commit || self.inner.group.is_none() {
            return;
        }
        let due = {
            let mut last = self
                .inner
                .last_auto_commit
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= self.inner.config.auto_commit_interval;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            if let Err(e) = self.commit().await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }
    }

    /// Gives every partition without a position one: its committed offset,
    /// else `auto.offset.reset`.
    async fn update_positions(&self) -> Result<()> {
        let engine = &self.inner.engine;
        let (lookup, reset): (Vec<TopicPartition>, Vec<TopicPartition>) = {
            let st = engine.state();
            let missing = st.parts.iter().filter(|(_, p)| p.position.is_none());
            let (r, l): (Vec<_>, Vec<_>) = missing.partition(|(_, p)| p.reset_now);
            (
                l.into_iter().map(|(tp, _)| tp.clone()).collect(),
                r.into_iter().map(|(tp, _)| tp.clone()).collect(),
            )
        };
        if lookup.is_empty() && reset.is_empty() {
            return Ok(());
        }
        let mut reset = reset;
        match &self.inner.group {
            Some(g) if !lookup.is_empty() => {
                let committed = g.committed(&lookup).await?;
                for tp in lookup {
                    match committed.get(&tp).copied().flatten() {
                        Some(o) => {
                            engine.seek(&tp, Some(o), false);
                        }
                        None => reset.push(tp),
                    }
                }
            }
            _ => reset.extend(lookup),
        }
        if reset.is_empty() {
            return Ok(());
        }
        let spec = match self.inner.config.auto_offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::None => {
                let tp = &reset[0];
                return Err(Error::NoOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                });
            }
        };
        let specs: Vec<_> = reset.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = admin::list_offsets(
            &self.inner.cluster,
            &specs,
            self.inner.config.read_committed,
        )
        .await?;
        for (tp, o) in found {
            engine.seek(&tp, Some(o.offset), false);
        }
        Ok(())
    }

    /// Commits the current positions of every assigned partition and waits.
    pub async fn commit(&self) -> Result<()> {
        let positions = self.inner.engine.positions();
        self.commit_offsets(&positions).await
    }

    /// Commits explicit offsets (the next offset to read) and waits.
    pub async fn commit_offsets(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        self.check_open()?;
        let g = self.group()?;
        self.counted_commit(g.commit(offsets)).await
    }

    /// Commits explicit offsets, each with a metadata string (at most the
    /// broker's `offset.metadata.max.bytes`; a longer one fails with
    /// `OFFSET_METADATA_TOO_LARGE`), and waits.
    pub async fn commit_offsets_with_metadata(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        self.check_open()?;
        let g = self.group()?;
        self.counted_commit(g.commit_with_metadata(offsets)).await
    }

    /// Commits the current positions in the background; the handle yields the outcome.
    pub fn commit_async(&self) -> tokio::task::JoinHandle<Result<()>> {
        let c = self.clone();
        let positions = self.inner.engine.positions();
        tokio::spawn(async move { c.commit_offsets(&positions).await })
    }

    /// Committed offsets of `partitions` (`None` where nothing is committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        Ok(self.group()?.committed(partitions).await?)
    }

    /// Committed offsets of `partitions` with the metadata stored beside
    /// them (`None` where nothing is committed; `""` when committed without).
    pub async fn committed_with_metadata(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
        Ok(self.group()?.committed_with_metadata(partitions).await?)
    }

    /// The next offset `poll` will return for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.inner
            .engine
            .state()
            .parts
            .get(tp)
            .and_then(|p| p.position)
    }

    /// Moves the position of an assigned partition. A negative offset is an
    /// error (use [`seek_to_beginning`](Self::seek_to_beginning) or
    /// [`seek_to_end`](Self::seek_to_end)).
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::invalid(format!(
                "cannot seek {tp} to offset {offset}: offsets are >= 0"
            )));
        }
        if self.inner.engine.seek(tp, Some(offset), false) {
            Ok(())
        } else {
            Err(Error::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
        }
    }

    /// For each partition, the earliest offset whose timestamp is at least
    /// the given one (ms since the epoch), as Java's `offsetsForTimes`;
    /// `None` where no such record exists. Honors `isolation.level`.
    pub async fn offsets_for_times(
        &self,
        times: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Option<ListedOffset>>> {
        if let Some((tp, t)) = times.iter().find(|(_, t)| **t < 0) {
            return Err(Error::invalid(format!("timestamp {t} of {tp} is negative")));
        }
        let specs: Vec<_> = times
            .iter()
            .map(|(tp, t)| (tp.clone(), OffsetSpec::Timestamp(*t)))
            .collect();
        let found = admin::list_offsets(
            &self.inner.cluster,
            &specs,
            self.inner.config.read_committed,
        )
        .await?;
        Ok(times
            .keys()
            .map(|tp| {
                let o = found.get(tp).copied().filter(|o| o.offset >= 0);
                (tp.clone(), o)
            })
            .collect())
    }

    /// Moves to the log start of these partitions.
    pub async fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, OffsetSpec::Earliest).await
    }

    /// Moves to the log end of these partitions.
    pub async fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, OffsetSpec::Latest).await
    }

    async fn seek_to(&self, partitions: &[TopicPartition], spec: OffsetSpec) -> Result<()> {
        let specs: Vec<_> = partitions.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = admin::list_offsets(
            &self.inner.cluster,
            &specs,
            self.inner.config.read_committed,
        )
        .await?;
        for (tp, o) in found {
            self.seek(&tp, o.offset)?;
        }
        Ok(())
    }

    /// Stops fetching these partitions; the member keeps heartbeating.
    pub fn pause(&self, partitions: &[TopicPartition]) {
        self.inner.engine.set_paused(partitions, true);
    }

    /// Resumes fetching these partitions.
    pub fn resume(&self, partitions: &[TopicPartition]) {
        self.inner.engine.set_paused(partitions, false);
    }

    /// Currently paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.inner
            .engine
            .state()
            .parts
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The member id and generation while in a group.
    pub fn group_generation(&self) -> Option<(String, i32)> {
        self.inner.group.as_ref().map(|g| {
            let (gen, id) = g.generation();
            (id, gen)
        })
    }

    /// Leaves the group promptly (LeaveGroup, so the others rebalance at
    /// once) and stops. Auto-commit, when enabled, commits first; with manual
    /// commits, call [`commit`](Self::commit) or use [`commit_and_close`](Self::commit_and_close).
    pub async fn close(&self) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let _g = self.inner.poll_lock.lock().await;
        if let Some(join) = self
            .inner
            .join
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            join.abort();
        }
        if self.mode() == Mode::Subscribed {
            let owned = self.assignment();
            self.revoke(&owned).await;
        } else if self.inner.config.enable_auto_commit && self.inner.group.is_some() {
            let _ = self.commit().await;
        }
        self.inner.closed.store(true, Ordering::Release);
        if let Some(g) = &self.inner.group {
            g.leave("the consumer is being closed").await;
            g.close();
        }
        self.inner.engine.close();
        self.inner.engine.join_tasks().await;
        self.inner.engine.close_sessions().await;
        self.inner.cluster.close();
    }

    /// Commits the current positions, then closes.
    pub async fn commit_and_close(&self) -> Result<()> {
        let r = if self.inner.group.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.close().await;
        r
    }
}

/// Non-internal topics whose whole name matches.
fn matching(re: &regex::Regex, m: &crate::engine::Metadata) -> Vec<String> {
    let mut out: Vec<String> = m
        .topics
        .values()
        .filter(|t| !t.internal && t.error.is_none() && re.is_match(&t.name))
        .map(|t| t.name.clone())
        .collect();
    out.sort();
    out
}

fn partition_counts(topics: &[String], m: &crate::engine::Metadata) -> BTreeMap<String, usize> {
    topics
        .iter()
        .filter_map(|t| m.topics.get(t).map(|tm| (t.clone(), tm.partitions.len())))
        .collect()
}

/// Builds a [`Consumer`]; keeps the first config error until `build()`.
#[derive(Default)]
pub struct ConsumerBuilder {
    pending: Pending<ConsumerConfig>,
    listener: Option<Arc<dyn RebalanceListener>>,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.pending.config)
            .finish_non_exhaustive()
    }
}

impl ConsumerBuilder {
    property_setters!();

    /// Replaces the whole config.
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.pending.config = config;
        self
    }

    /// Sets the rebalance listener.
    pub fn rebalance_listener(mut self, l: Arc<dyn RebalanceListener>) -> Self {
        self.listener = Some(l);
        self
    }

    /// Validates and connects.
    pub async fn build(self) -> Result<Consumer> {
        Consumer::create(self.pending.finish()?, self.listener).await
    }
}

impl Settable for ConsumerConfig {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        ConsumerConfig::set(self, key, value)
    }
}
