//! Classic consumer group membership: FindCoordinator, JoinGroup, SyncGroup,
//! a background Heartbeat task, LeaveGroup, and commits through the coordinator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::assignor::{self, Member, Strategy};
use super::offsets::{self, Committer};
use crate::cluster::wire::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Assignment,
    Subscription,
};
use crate::cluster::{msg, versions, Cluster, ClusterError, Connection, ErrorCode, Role, Topics};
use crate::engine::tasks::Tasks;
use crate::retry::{retry, Class, Exhausted, RetryAction, RetryPolicy};
use crate::types::{OffsetAndMetadata, TopicPartition};

use crate::cluster::codes as code;

/// Group settings derived from the consumer config.
#[derive(Debug, Clone)]
pub(crate) struct GroupConfig {
    pub group_id: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub strategies: Vec<Strategy>,
}

impl GroupConfig {
    /// Cooperative only if every configured assignor is (as in Java).
    pub(crate) fn cooperative(&self) -> bool {
        self.strategies.iter().all(|s| s.is_cooperative())
    }
}

#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation: i32,
    /// Set when the group needs this member to (re)join.
    rejoin: bool,
    /// Set when the member was fenced/expired: its partitions are lost.
    lost: bool,
    /// Between a successful SyncGroup and the next rejoin.
    stable: bool,
    /// A JoinGroup/SyncGroup round is in flight: no heartbeats (as in Java).
    joining: bool,
    fatal: Option<ClusterError>,
}

/// Result of one join round.
#[derive(Debug)]
pub(crate) struct Joined {
    pub assignment: Vec<TopicPartition>,
    pub generation: i32,
}

pub(crate) struct Group {
    cluster: Arc<Cluster>,
    pub(crate) cfg: GroupConfig,
    coordinator: Mutex<Option<i32>>,
    member: Mutex<Membership>,
    topics: Mutex<Vec<String>>,
    last_poll: Mutex<Instant>,
    max_poll_interval: Duration,
    /// Wakes `poll` when a rebalance is needed.
    wake_poll: Arc<Notify>,
    closed: std::sync::atomic::AtomicBool,
}

impl Group {
    pub(crate) fn start(
        cluster: Arc<Cluster>,
        cfg: GroupConfig,
        max_poll_interval: Duration,
        wake_poll: Arc<Notify>,
        tasks: &Tasks,
    ) -> Arc<Group> {
        let g = Arc::new(Group {
            cluster,
            cfg,
            coordinator: Mutex::new(None),
            member: Mutex::new(Membership {
                generation: -1,
                ..Default::default()
            }),
            topics: Mutex::new(Vec::new()),
            last_poll: Mutex::new(Instant::now()),
            max_poll_interval,
            wake_poll,
            closed: Default::default(),
        });
        tasks.spawn("heartbeat", heartbeat_loop(Arc::downgrade(&g)));
        g
    }

    fn member(&self) -> MutexGuard<'_, Membership> {
        self.member.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn subscribe(&self, topics: Vec<String>) {
        *self.topics.lock().unwrap_or_else(|p| p.into_inner()) = topics;
        self.member().rejoin = true;
    }

    pub(crate) fn subscription(&self) -> Vec<String> {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn unsubscribe(&self) {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.member().stable = false;
    }

    /// Records a poll (for `max.poll.interval.ms`).
    pub(crate) fn polled(&self) {
        *self.last_poll.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(crate) fn needs_join(&self) -> bool {
        let m = self.member();
        m.rejoin || !m.stable
    }

    pub(crate) fn request_rejoin(&self) {
        self.member().rejoin = true;
    }

    /// Takes the "partitions lost" flag (fenced, expired or left on poll timeout).
    pub(crate) fn take_lost(&self) -> bool {
        std::mem::take(&mut self.member().lost)
    }

    pub(crate) fn fatal(&self) -> Option<ClusterError> {
        self.member().fatal.clone()
    }

    pub(crate) fn generation(&self) -> (i32, String) {
        let m = self.member();
        (m.generation, m.member_id.clone())
    }

    /// A connection to the coordinator for `role` (heartbeats and commits
    /// never share one with a JoinGroup the broker may hold for minutes).
    /// The coordinator is found on first use and after failures.
    pub(crate) async fn coordinator(&self, role: Role) -> Result<Connection, ClusterError> {
        let known = *self.coordinator.lock().unwrap_or_else(|p| p.into_inner());
        let node = match known {
            Some(id) => id,
            None => {
                let node = find_coordinator(&self.cluster, &self.cfg.group_id).await?;
                *self.coordinator.lock().unwrap_or_else(|p| p.into_inner()) = Some(node);
                tracing::debug!(group = %self.cfg.group_id, coordinator = node, "found coordinator");
                node
            }
        };
        match self.cluster.broker_for(node, role).await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.coordinator_failed();
                Err(e)
            }
        }
    }

    fn coordinator_failed(&self) {
        *self.coordinator.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Forgets the coordinator when an error says it moved or is gone.
    fn note_coordinator_error(&self, err: &ClusterError) {
        let moved = match err.class() {
            Class::Broker(c) => {
                matches!(c, code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE)
            }
            Class::Network | Class::Timeout | Class::Routing => true,
            _ => false,
        };
        if moved {
            self.coordinator_failed();
        }
    }

    /// Retries `op` on coordinator moves and load, within `default.api.timeout.ms`.
    async fn with_coordinator<T, F, Fut>(
        &self,
        what: &str,
        role: Role,
        op: F,
    ) -> Result<T, ClusterError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let op = &op;
        let result = retry(
            self.cluster.retry_policy(),
            || async move { op(self.coordinator(role).await?).await },
            ClusterError::retry_action,
            |err, _| self.note_coordinator_error(err),
        )
        .await;
        if let Err(Exhausted::Failed(e)) = &result {
            self.note_coordinator_error(e);
        }
        self.cluster.settle(what, result)
    }

    /// One full rebalance round: JoinGroup, assignment if leader, SyncGroup.
    /// Cancel-safe: dropping the future mid-round ends the "joining" state,
    /// so heartbeats resume; the next join starts a fresh round.
    pub(crate) async fn join(&self, owned: &[TopicPartition]) -> Result<Joined, ClusterError> {
        if let Some(e) = self.fatal() {
            return Err(e);
        }
        self.member().joining = true;
        let _joining = JoiningGuard(self);
        let c = self.cluster.config();
        let span = self.cfg.rebalance_timeout + c.api_timeout;
        let policy = RetryPolicy::within(c.retry_backoff, c.retry_backoff_max, span);
        let result = retry(
            policy,
            || self.join_once(owned),
            |e| match e {
                JoinError::Retry(e) if !e.is_auth() => RetryAction::Retry,
                _ => RetryAction::NoRetry,
            },
            |e, _| tracing::debug!(group = %self.cfg.group_id, error = %e.inner(), "rejoining"),
        )
        .await;
        result.map_err(|e| match e {
            Exhausted::Failed(e) | Exhausted::GaveUp { last: Some(e), .. } => e.into_inner(),
            Exhausted::GaveUp { last: None, .. } => ClusterError::Timeout {
                what: format!("joining group `{}`", self.cfg.group_id),
                after: span,
                last: None,
            },
        })
    }

    async fn join_once(&self, owned: &[TopicPartition]) -> Result<Joined, JoinError> {
        let conn = self
            .coordinator(Role::Join)
            .await
            .map_err(JoinError::Retry)?;
        tracing::debug!(group = %self.cfg.group_id, member = %self.member().member_id, owned = owned.len(), "JoinGroup");
        let topics = self.subscription();
        let (member_id, generation) = {
            let m = self.member();
            (m.member_id.clone(), m.generation)
        };
        let mut owned_by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in owned {
            owned_by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        let protocols = self
            .cfg
            .strategies
            .iter()
            .map(|s| {
                let sub = Subscription {
                    topics: topics.clone(),
                    // Java's CooperativeStickyAssignor also puts the generation in user data.
                    user_data: s
                        .is_cooperative()
                        .then(|| Bytes::copy_from_slice(&generation.to_be_bytes())),
                    owned: owned_by_topic.clone().into_iter().collect(),
                    generation,
                    rack: None,
                };
                let meta = encode_subscription(&sub).map_err(|e| JoinError::Fatal(codec_err(e)))?;
                Ok(msg::JoinGroupRequestProtocol::default()
                    .with_name(s2(s.name()))
                    .with_metadata(meta))
            })
            .collect::<Result<Vec<_>, JoinError>>()?;
        let req = msg::JoinGroupRequest::default()
            .with_group_id(msg::GroupId(s2(&self.cfg.group_id)))
            .with_session_timeout_ms(ms(self.cfg.session_timeout))
            .with_rebalance_timeout_ms(ms(self.cfg.rebalance_timeout))
            .with_member_id(s2(&member_id))
            .with_group_instance_id(self.cfg.instance_id.as_deref().map(s2))
            .with_protocol_type(s2("consumer"))
            .with_protocols(protocols);
        // The broker holds JoinGroup until every member joined (up to the rebalance timeout).
        let (resp, _) = conn
            .send_long(&req, versions::JOIN_GROUP, self.cfg.rebalance_timeout)
            .await
            .map_err(|e| JoinError::Retry(e.into()))?;
        if resp.error_code == code::MEMBER_ID_REQUIRED {
            // KIP-394: join again with the id the coordinator just gave us.
            self.member().member_id = resp.member_id.to_string();
        }
        self.check_round("JoinGroup", resp.error_code)?;
        let member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        let protocol = resp.protocol_name.as_deref().and_then(Strategy::parse);
        {
            let mut m = self.member();
            m.member_id = member_id.clone();
            m.generation = generation;
        }
        let assignments = if resp.leader.as_str() == member_id && !resp.skip_assignment {
            let strategy = protocol.unwrap_or(self.cfg.strategies[0]);
            self.lead(strategy, &resp.members)
                .await
                .map_err(JoinError::Retry)?
        } else {
            Vec::new()
        };
        let req = msg::SyncGroupRequest::default()
            .with_group_id(msg::GroupId(s2(&self.cfg.group_id)))
            .with_generation_id(generation)
            .with_member_id(s2(&member_id))
            .with_group_instance_id(self.cfg.instance_id.as_deref().map(s2))
            .with_protocol_type(Some(s2("consumer")))
            .with_protocol_name(resp.protocol_name.clone())
            .with_assignments(assignments);
        let (sync, _) = conn
            .send_long(&req, versions::SYNC_GROUP, self.cfg.rebalance_timeout)
            .await
            .map_err(|e| JoinError::Retry(e.into()))?;
        self.check_round("SyncGroup", sync.error_code)?;
        let a = decode_assignment(sync.assignment).map_err(|e| JoinError::Fatal(codec_err(e)))?;
        let mut assignment: Vec<TopicPartition> = a
            .partitions
            .into_iter()
            .flat_map(|(t, ps)| {
                ps.into_iter()
                    .map(move |p| TopicPartition::new(t.clone(), p))
            })
            .collect();
        assignment.sort();
        {
            let mut m = self.member();
            m.stable = true;
            m.rejoin = false;
        }
        self.polled();
        tracing::debug!(group = %self.cfg.group_id, generation, member = %member_id, partitions = assignment.len(), "joined");
        Ok(Joined {
            assignment,
            generation,
        })
    }

    /// Classifies a JoinGroup/SyncGroup error: start the round over (after
    /// fixing what the code says) or give up.
    fn check_round(&self, api: &str, error: i16) -> Result<(), JoinError> {
        let retry = || JoinError::Retry(ClusterError::broker(api, ErrorCode(error), None));
        match error {
            0 => Ok(()),
            code::MEMBER_ID_REQUIRED
            | code::COORDINATOR_LOAD_IN_PROGRESS
            | code::REBALANCE_IN_PROGRESS => Err(retry()),
            code::UNKNOWN_MEMBER_ID | code::ILLEGAL_GENERATION => {
                self.reset_member(error == code::UNKNOWN_MEMBER_ID);
                Err(retry())
            }
            code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_failed();
                Err(retry())
            }
            c => Err(JoinError::Fatal(self.fatal_error(api, c))),
        }
    }

    /// Leader: decode every member's subscription and compute the plan.
    async fn lead(
        &self,
        strategy: Strategy,
        members: &[msg::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<msg::SyncGroupRequestAssignment>, ClusterError> {
        let mut parsed = Vec::new();
        for m in members {
            let sub = decode_subscription(m.metadata.clone()).map_err(codec_err)?;
            let generation = if sub.generation >= 0 {
                sub.generation
            } else {
                sub.user_data
                    .as_ref()
                    .filter(|u| u.len() >= 4)
                    .map_or(-1, |u| i32::from_be_bytes([u[0], u[1], u[2], u[3]]))
            };
            parsed.push(Member {
                id: m.member_id.to_string(),
                topics: sub.topics.into_iter().collect::<BTreeSet<_>>(),
                owned: sub
                    .owned
                    .into_iter()
                    .flat_map(|(t, ps)| {
                        ps.into_iter()
                            .map(move |p| TopicPartition::new(t.clone(), p))
                    })
                    .collect(),
                generation,
            });
        }
        let topics: Vec<String> = parsed
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let meta = self.cluster.refresh(Topics::Some(&topics)).await?;
        let counts: HashMap<String, i32> = topics
            .iter()
            .filter_map(|t| {
                meta.topics
                    .get(t)
                    .map(|m| (t.clone(), m.partitions.len() as i32))
            })
            .collect();
        let plan = assignor::assign(strategy, &parsed, &counts);
        tracing::debug!(group = %self.cfg.group_id, ?strategy, members = parsed.len(), "computed assignment");
        plan.into_iter()
            .map(|(member, tps)| {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in tps {
                    by_topic.entry(tp.topic).or_default().push(tp.partition);
                }
                let bytes = encode_assignment(&Assignment {
                    partitions: by_topic.into_iter().collect(),
                    user_data: None,
                })
                .map_err(codec_err)?;
                Ok(msg::SyncGroupRequestAssignment::default()
                    .with_member_id(s2(&member))
                    .with_assignment(bytes))
            })
            .collect()
    }

    /// Forgets the generation after the coordinator rejected it. `seen` is the
    /// generation the failed request carried: a reply about an older one
    /// (overtaken by a join that already succeeded) is ignored.
    fn reset_member_if(&self, seen: i32, forget_id: bool) {
        if self.member().generation != seen {
            return;
        }
        self.reset_member(forget_id);
    }

    fn reset_member(&self, forget_id: bool) {
        let mut m = self.member();
        if forget_id {
            m.member_id.clear();
        }
        m.generation = -1;
        m.stable = false;
        m.rejoin = true;
        m.lost = true;
    }

    fn fatal_error(&self, api: &str, c: i16) -> ClusterError {
        let e = ClusterError::broker(
            format!("{api} for group `{}`", self.cfg.group_id),
            ErrorCode(c),
            None,
        );
        if c == code::FENCED_INSTANCE_ID {
            self.member().fatal = Some(e.clone());
        }
        e
    }

    /// Commits offsets as this member (or standalone when not in a generation).
    pub(crate) async fn commit(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClusterError> {
        let with: BTreeMap<TopicPartition, OffsetAndMetadata> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o, "")))
            .collect();
        self.commit_with_metadata(&with).await
    }

    /// Commits offsets with metadata strings.
    pub(crate) async fn commit_with_metadata(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ClusterError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let used = &std::sync::atomic::AtomicI32::new(-1);
        let result = self
            .with_coordinator("OffsetCommit", Role::Group, |conn| async move {
                let (generation, member_id) = self.generation();
                used.store(generation, std::sync::atomic::Ordering::Relaxed);
                let who = Committer {
                    group: self.cfg.group_id.clone(),
                    generation,
                    member_id,
                    instance_id: self.cfg.instance_id.clone(),
                };
                offsets::commit(&conn, &who, offsets).await
            })
            .await;
        if let Err(ClusterError::Broker { code, .. }) = &result {
            if matches!(code.0, code::UNKNOWN_MEMBER_ID | code::ILLEGAL_GENERATION) {
                self.reset_member_if(
                    used.load(std::sync::atomic::Ordering::Relaxed),
                    code.0 == code::UNKNOWN_MEMBER_ID,
                );
                self.wake_poll.notify_waiters();
            } else if code.0 == code::REBALANCE_IN_PROGRESS {
                // As Java: the caller gets the error; the next poll rejoins
                // (generation kept), after which the commit can be retried.
                self.request_rejoin();
                self.wake_poll.notify_waiters();
            }
        }
        result
    }

    /// Committed offsets of `tps`.
    pub(crate) async fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, ClusterError> {
        self.with_coordinator("OffsetFetch", Role::Group, |conn| async move {
            offsets::committed(&conn, &self.cfg.group_id, tps).await
        })
        .await
    }

    /// Committed offsets of `tps` with their metadata.
    pub(crate) async fn committed_with_metadata(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ClusterError> {
        self.with_coordinator("OffsetFetch", Role::Group, |conn| async move {
            offsets::committed_with_metadata(&conn, &self.cfg.group_id, tps).await
        })
        .await
    }

    /// Leaves the group (dynamic members only: a static member keeps its
    /// slot so a restart within the session timeout causes no rebalance).
    pub(crate) async fn leave(&self, reason: &str) {
        let (generation, member_id) = self.generation();
        {
            let mut m = self.member();
            m.stable = false;
            m.generation = -1;
        }
        if member_id.is_empty() || generation < 0 || self.cfg.instance_id.is_some() {
            return;
        }
        let Ok(conn) = self.coordinator(Role::Group).await else {
            return;
        };
        let version = conn.version(versions::LEAVE_GROUP).unwrap_or(0);
        let mut req =
            msg::LeaveGroupRequest::default().with_group_id(msg::GroupId(s2(&self.cfg.group_id)));
        req = if version >= 3 {
            req.with_members(vec![msg::MemberIdentity::default()
                .with_member_id(s2(&member_id))
                .with_reason(Some(s2(reason)))])
        } else {
            req.with_member_id(s2(&member_id))
        };
        match conn.send(&req, versions::LEAVE_GROUP).await {
            Ok((r, _)) if r.error_code == 0 => {
                tracing::debug!(group = %self.cfg.group_id, "left group")
            }
            Ok((r, _)) => tracing::debug!(code = r.error_code, "LeaveGroup failed"),
            Err(e) => tracing::debug!(error = %e, "LeaveGroup failed"),
        }
        self.member().member_id.clear();
    }

    pub(crate) fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Asks any broker which node coordinates `group`, and makes sure that node
/// is in the metadata cache so it can be dialed by id.
pub(crate) async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<i32, ClusterError> {
    let conn = cluster.any_broker().await?;
    let version = conn.version(versions::FIND_COORDINATOR)?;
    let key = msg::StrBytes::from_string(group.to_owned());
    let mut req = msg::FindCoordinatorRequest::default().with_key_type(0);
    req = if version >= 4 {
        req.with_coordinator_keys(vec![key])
    } else {
        req.with_key(key)
    };
    let (resp, _) = conn.send(&req, versions::FIND_COORDINATOR).await?;
    let (code, node) = match resp.coordinators.first() {
        Some(c) => (c.error_code, c.node_id.0),
        None => (resp.error_code, resp.node_id.0),
    };
    if let Some(code) = ErrorCode::check(code) {
        return Err(ClusterError::broker(
            format!("finding the coordinator of group `{group}`"),
            code,
            None,
        ));
    }
    if !cluster.cached().brokers.contains_key(&node) {
        cluster.refresh(Topics::Some(&[])).await?;
    }
    Ok(node)
}

enum JoinError {
    Retry(ClusterError),
    Fatal(ClusterError),
}

/// Ends the "joining" state however `join` ends (including being dropped).
struct JoiningGuard<'a>(&'a Group);

impl Drop for JoiningGuard<'_> {
    fn drop(&mut self) {
        self.0.member().joining = false;
    }
}

impl JoinError {
    fn inner(&self) -> &ClusterError {
        let (JoinError::Retry(e) | JoinError::Fatal(e)) = self;
        e
    }

    fn into_inner(self) -> ClusterError {
        let (JoinError::Retry(e) | JoinError::Fatal(e)) = self;
        e
    }
}

fn codec_err(e: crate::cluster::wire::CodecError) -> ClusterError {
    ClusterError::broker("consumer protocol", ErrorCode(-1), Some(e.to_string()))
}

fn s2(v: &str) -> msg::StrBytes {
    msg::StrBytes::from_string(v.to_owned())
}

fn ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Heartbeats on its own schedule, however slowly the application polls.
async fn heartbeat_loop(group: Weak<Group>) -> Result<(), ClusterError> {
    let interval = match group.upgrade() {
        Some(g) => g.cfg.heartbeat_interval,
        None => return Ok(()),
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(g) = group.upgrade() else {
            return Ok(());
        };
        if g.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let (generation, member_id, stable, joining) = {
            let m = g.member();
            (m.generation, m.member_id.clone(), m.stable, m.joining)
        };
        if member_id.is_empty() || generation < 0 || joining {
            continue;
        }
        let since_poll = g.last_poll.lock().map(|t| t.elapsed()).unwrap_or_default();
        if stable && since_poll > g.max_poll_interval {
            tracing::warn!(group = %g.cfg.group_id, "max.poll.interval.ms exceeded; leaving the group");
            g.leave("consumer poll timeout has expired").await;
            let mut m = g.member();
            m.lost = true;
            m.rejoin = true;
            drop(m);
            g.wake_poll.notify_waiters();
            continue;
        }
        let req = msg::HeartbeatRequest::default()
            .with_group_id(msg::GroupId(s2(&g.cfg.group_id)))
            .with_generation_id(generation)
            .with_member_id(s2(&member_id))
            .with_group_instance_id(g.cfg.instance_id.as_deref().map(s2));
        let result = match g.coordinator(Role::Group).await {
            Ok(conn) => conn
                .send(&req, versions::HEARTBEAT)
                .await
                .map(|(r, _)| r.error_code)
                .map_err(ClusterError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(0) => {}
            Ok(code::REBALANCE_IN_PROGRESS) => {
                tracing::debug!(group = %g.cfg.group_id, member = %member_id, generation, "heartbeat: rebalance in progress");
                // Only for the generation it was about: a join may have finished meanwhile.
                if g.member().generation != generation {
                    continue;
                }
                g.request_rejoin();
                g.wake_poll.notify_waiters();
            }
            Ok(c @ (code::ILLEGAL_GENERATION | code::UNKNOWN_MEMBER_ID)) => {
                tracing::debug!(group = %g.cfg.group_id, member = %member_id, generation, code = c, "heartbeat: member fenced");
                g.reset_member_if(generation, c == code::UNKNOWN_MEMBER_ID);
                g.wake_poll.notify_waiters();
            }
            Ok(code::FENCED_INSTANCE_ID) => {
                g.fatal_error("Heartbeat", code::FENCED_INSTANCE_ID);
                g.wake_poll.notify_waiters();
            }
            Ok(code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE) => g.coordinator_failed(),
            Ok(c) => tracing::debug!(code = c, "heartbeat error"),
            // A refused login will not heal: poll() reports it.
            Err(e) if e.is_auth() => {
                g.member().fatal = Some(e);
                g.wake_poll.notify_waiters();
            }
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                g.coordinator_failed();
            }
        }
    }
}
