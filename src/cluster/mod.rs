//! Cluster view: metadata cache, broker pool and request routing.
//!
//! Depends on: conn.

mod error;
mod metadata;
mod pool;

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

use crate::retry::{retry, Exhausted, RetryPolicy};

#[cfg(feature = "tls")]
pub(crate) use crate::conn::tls;
pub(crate) use crate::conn::{
    api_name, codes, msg, reauthentication_count, versions, wire, ConnConfig, ConnError,
    Connection, PendingResponse, Security,
};
pub use crate::conn::{Compression, ErrorCode};
pub(crate) use error::{too_large_limit, ClusterError};
pub(crate) use metadata::{Metadata, TopicMeta};
use pool::Pool;
pub(crate) use pool::Role;

/// Settings of the cluster layer, derived from the client config.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    pub bootstrap: Vec<String>,
    pub conn: Arc<ConnConfig>,
    pub metadata_max_age: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Overall budget of one API call (`default.api.timeout.ms`).
    pub api_timeout: Duration,
    /// Let metadata requests auto-create topics (producers do, as in Java).
    pub auto_create_topics: bool,
}

/// Which topics a metadata request asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Topics<'a> {
    All,
    Some(&'a [String]),
}

pub(crate) struct Cluster {
    cfg: ClusterConfig,
    pool: Pool,
    /// Read per record by the producer: a lock-free snapshot (arc-swap), as
    /// a lock and an `Arc` count per read were contended atomics (~3 %).
    meta: ArcSwap<Metadata>,
    refresh: tokio::sync::Mutex<()>,
}

impl Cluster {
    pub(crate) fn new(cfg: ClusterConfig) -> Arc<Cluster> {
        let pool = Pool::new(
            cfg.conn.clone(),
            cfg.reconnect_backoff,
            cfg.reconnect_backoff_max,
        );
        Arc::new(Cluster {
            cfg,
            pool,
            meta: ArcSwap::from_pointee(Metadata::default()),
            refresh: Default::default(),
        })
    }

    pub(crate) fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// Throttling seen on this cluster's connections.
    pub(crate) fn throttle_metrics(&self) -> crate::metrics::ThrottleMetrics {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.cfg.conn.stats;
        crate::metrics::ThrottleMetrics {
            throttled_responses: s.throttled_responses.load(Relaxed),
            throttle_time_ms_total: s.throttle_ms_total.load(Relaxed),
        }
    }

    /// Requests awaiting a response now, and the round-trip histogram.
    pub(crate) fn request_metrics(&self) -> (u64, crate::metrics::Histogram) {
        let r = &self.cfg.conn.stats.requests;
        let n = r.in_flight.load(std::sync::atomic::Ordering::Relaxed);
        (n.max(0) as u64, r.latency.snapshot())
    }

    /// The current snapshot, however old.
    pub(crate) fn cached(&self) -> Arc<Metadata> {
        self.meta.load_full()
    }

    /// The current snapshot without counting a reference: for short reads
    /// on a hot path (hold it briefly; many held at once degrade to counts).
    pub(crate) fn peek(&self) -> arc_swap::Guard<Arc<Metadata>> {
        self.meta.load()
    }

    fn store(&self, m: Metadata) -> Arc<Metadata> {
        let m = Arc::new(m);
        self.meta.store(m.clone());
        m
    }

    /// Whether `m` is older than `metadata.max.age.ms` or was invalidated:
    /// background loops that route from the cache refresh when this is true.
    pub(crate) fn is_stale(&self, m: &Metadata) -> bool {
        self.is_stale_at(m, Instant::now())
    }

    /// [`is_stale`](Self::is_stale) as of `now` (saves a clock read per record).
    pub(crate) fn is_stale_at(&self, m: &Metadata, now: Instant) -> bool {
        now.saturating_duration_since(m.fetched) >= self.cfg.metadata_max_age
    }

    /// Marks the cache stale so the next lookup refreshes (after NOT_LEADER etc.).
    pub(crate) fn invalidate(&self) {
        let mut m = (*self.cached()).clone();
        m.fetched = Metadata::default().fetched;
        self.store(m);
    }

    /// Fetches metadata from any reachable broker and merges it into the cache.
    pub(crate) async fn refresh(&self, topics: Topics<'_>) -> Result<Arc<Metadata>, ClusterError> {
        let requested = Instant::now();
        let _one_at_a_time = self.refresh.lock().await;
        let cached = self.cached();
        // Someone refreshed while we waited for the lock.
        if cached.fetched >= requested && covers(&cached, topics) {
            return Ok(cached);
        }
        let span = tracing::debug_span!("metadata_refresh");
        let _e = span.enter();
        let req = msg::MetadataRequest::default()
            .with_allow_auto_topic_creation(self.cfg.auto_create_topics)
            .with_topics(match topics {
                Topics::All => None,
                Topics::Some(names) => Some(
                    names
                        .iter()
                        .map(|n| {
                            msg::MetadataRequestTopic::default().with_name(Some(msg::topic_name(n)))
                        })
                        .collect(),
                ),
            });
        drop(_e);
        let mut tried = Vec::new();
        let mut last = None;
        for addr in self.candidates(&cached) {
            let conn = match self.pool.get(&addr, Role::Meta).await {
                Ok(c) => c,
                // A refused login is the same on every broker: say so now.
                Err(e) if e.is_auth() => return Err(e.into()),
                Err(e) => {
                    tried.push(e.to_string());
                    last = Some(e);
                    continue;
                }
            };
            match conn.send(&req, versions::METADATA).await {
                Ok((resp, _)) => {
                    let merged = cached.merge(resp, matches!(topics, Topics::All));
                    tracing::debug!(
                        brokers = merged.brokers.len(),
                        topics = merged.topics.len(),
                        "metadata refreshed"
                    );
                    return Ok(self.store(merged));
                }
                Err(e) if e.is_auth() => return Err(e.into()),
                Err(e) => {
                    tried.push(e.to_string());
                    last = Some(e);
                }
            }
        }
        Err(ClusterError::NoBrokerAvailable { tried, last })
    }

    /// Known brokers first (those already connected lead), then bootstrap.
    fn candidates(&self, m: &Metadata) -> Vec<String> {
        let mut known: Vec<String> = m.brokers.values().map(|b| b.addr()).collect();
        fastrand::shuffle(&mut known);
        known.sort_by_key(|a| !self.pool.is_connected(a));
        for b in &self.cfg.bootstrap {
            if !known.contains(b) {
                known.push(b.clone());
            }
        }
        known
    }

    /// Metadata no older than `metadata.max.age.ms` that knows `topics`.
    pub(crate) async fn metadata(&self, topics: Topics<'_>) -> Result<Arc<Metadata>, ClusterError> {
        let m = self.cached();
        if m.fetched.elapsed() < self.cfg.metadata_max_age && covers(&m, topics) {
            return Ok(m);
        }
        self.refresh(topics).await
    }

    /// Connection to broker `id` for metadata and admin requests.
    pub(crate) async fn broker(&self, id: i32) -> Result<Connection, ClusterError> {
        self.broker_for(id, Role::Meta).await
    }

    /// Connection to broker `id` for one kind of traffic.
    pub(crate) async fn broker_for(&self, id: i32, role: Role) -> Result<Connection, ClusterError> {
        let mut m = self.cached();
        if !m.brokers.contains_key(&id) {
            m = self.refresh(Topics::Some(&[])).await?;
        }
        let b = m.brokers.get(&id).ok_or(ClusterError::UnknownBroker(id))?;
        Ok(self.pool.get(&b.addr(), role).await?)
    }

    /// Connection to any live broker (the least effort one: already connected).
    pub(crate) async fn any_broker(&self) -> Result<Connection, ClusterError> {
        let m = self.cached();
        let mut tried = Vec::new();
        let mut last = None;
        for addr in self.candidates(&m) {
            match self.pool.get(&addr, Role::Meta).await {
                Ok(c) => return Ok(c),
                Err(e) if e.is_auth() => return Err(e.into()),
                Err(e) => {
                    tried.push(e.to_string());
                    last = Some(e);
                }
            }
        }
        Err(ClusterError::NoBrokerAvailable { tried, last })
    }

    /// The controller (KRaft brokers forward admin requests to it).
    pub(crate) async fn controller(&self) -> Result<Connection, ClusterError> {
        let m = self.metadata(Topics::Some(&[])).await?;
        match m.controller_id {
            id if id >= 0 => self.broker(id).await,
            _ => self.any_broker().await,
        }
    }

    /// Leader of a partition and a connection to it.
    #[cfg(feature = "unstable-internals")]
    pub(crate) async fn leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, Connection), ClusterError> {
        let names = [topic.to_owned()];
        let m = self.metadata(Topics::Some(&names)).await?;
        let leader = leader_of(&m, topic, partition)?;
        Ok((leader, self.broker(leader).await?))
    }

    /// The retry policy of one API call: `retry.backoff.ms` ..
    /// `retry.backoff.max.ms`, bounded by `default.api.timeout.ms`.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::within(
            self.cfg.retry_backoff,
            self.cfg.retry_backoff_max,
            self.cfg.api_timeout,
        )
    }

    /// Runs `op` until it succeeds, fails for good, or `default.api.timeout.ms`
    /// passes; retriable failures back off and refresh metadata.
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, op: F) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let result = retry(
            self.retry_policy(),
            op,
            ClusterError::retry_action,
            |err, _| {
                tracing::debug!(what, error = %err, "retrying");
                self.invalidate();
            },
        )
        .await;
        self.settle(what, result)
    }

    /// Turns the outcome of [`retry`] into one error that keeps the last cause.
    pub(crate) fn settle<T>(
        &self,
        what: &str,
        result: Result<T, Exhausted<ClusterError>>,
    ) -> Result<T, ClusterError> {
        match result {
            Ok(v) => Ok(v),
            Err(Exhausted::Failed(e)) => Err(e),
            Err(Exhausted::GaveUp { last, .. }) => Err(ClusterError::Timeout {
                what: what.to_owned(),
                after: self.cfg.api_timeout,
                last: last.map(Box::new),
            }),
        }
    }

    pub(crate) fn close(&self) {
        self.pool.close_all();
    }
}

fn covers(m: &Metadata, topics: Topics<'_>) -> bool {
    match topics {
        Topics::All => !m.brokers.is_empty(),
        Topics::Some(names) => {
            !m.brokers.is_empty() && names.iter().all(|n| m.topics.contains_key(n))
        }
    }
}

/// Leader id of a partition in a snapshot, or why there is none.
pub(crate) fn leader_of(m: &Metadata, topic: &str, partition: i32) -> Result<i32, ClusterError> {
    let t = m
        .topics
        .get(topic)
        .ok_or_else(|| ClusterError::UnknownTopic(topic.to_owned()))?;
    if let Some(code) = t.error {
        return Err(ClusterError::broker(
            format!("metadata for topic `{topic}`"),
            code,
            None,
        ));
    }
    let p = m
        .partition(topic, partition)
        .ok_or_else(|| ClusterError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
        })?;
    if p.leader < 0 {
        return Err(ClusterError::LeaderNotAvailable {
            topic: topic.to_owned(),
            partition,
        });
    }
    Ok(p.leader)
}
