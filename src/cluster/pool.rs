//! Broker pool: one shared connection per address and [`Role`], opened
//! lazily and re-opened after failure with exponential backoff and jitter.
//!
//! Kafka serves one request at a time per connection, so traffic that may be
//! held by the broker (a long-poll Fetch, a JoinGroup waiting for the other
//! members) gets its own connection and never delays heartbeats, commits or
//! produce requests (franz-go does the same; Java keeps the coordinator apart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::conn::{ConnConfig, ConnError, Connection};

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Metadata, admin requests, ListOffsets, FindCoordinator, InitProducerId.
    Meta,
    /// Produce requests.
    Produce,
    /// Fetch requests (long polls).
    Fetch,
    /// Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup.
    Group,
    /// JoinGroup and SyncGroup, which the broker holds during a rebalance.
    Join,
}

struct Slot {
    conn: Option<Connection>,
    backoff: Backoff,
    not_before: Instant,
    dialing: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) struct Pool {
    cfg: Arc<ConnConfig>,
    backoff: (Duration, Duration),
    slots: Mutex<HashMap<(String, Role), Slot>>,
}

impl Pool {
    pub(crate) fn new(
        cfg: Arc<ConnConfig>,
        reconnect_backoff: Duration,
        reconnect_backoff_max: Duration,
    ) -> Self {
        Pool {
            cfg,
            backoff: (reconnect_backoff, reconnect_backoff_max),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot<T>(&self, addr: &str, role: Role, f: impl FnOnce(&mut Slot) -> T) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .entry((addr.to_owned(), role))
            .or_insert_with(|| Slot {
                conn: None,
                backoff: Backoff::new(self.backoff.0, self.backoff.1),
                not_before: Instant::now(),
                dialing: Arc::new(tokio::sync::Mutex::new(())),
            });
        f(slot)
    }

    fn live(&self, addr: &str, role: Role) -> Option<Connection> {
        self.slot(addr, role, |s| s.conn.clone().filter(|c| !c.is_closed()))
    }

    /// A live connection to `addr`, dialing if needed. Concurrent callers
    /// share one dial; a recently failed address waits out its backoff.
    pub(crate) async fn get(&self, addr: &str, role: Role) -> Result<Connection, ConnError> {
        if let Some(c) = self.live(addr, role) {
            return Ok(c);
        }
        let dialing = self.slot(addr, role, |s| s.dialing.clone());
        let _guard = dialing.lock().await;
        if let Some(c) = self.live(addr, role) {
            return Ok(c);
        }
        let wait = self.slot(addr, role, |s| {
            s.not_before.saturating_duration_since(Instant::now())
        });
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match Connection::connect(addr, self.cfg.clone()).await {
            Ok(c) => {
                self.slot(addr, role, |s| {
                    s.backoff.reset();
                    s.conn = Some(c.clone());
                });
                Ok(c)
            }
            Err(e) => {
                self.slot(addr, role, |s| {
                    s.conn = None;
                    s.not_before = Instant::now() + s.backoff.next_delay();
                });
                tracing::debug!(broker = addr, ?role, error = %e, "connect failed");
                Err(e)
            }
        }
    }

    /// Whether `addr` has a live connection of any role already.
    pub(crate) fn is_connected(&self, addr: &str) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .any(|((a, _), s)| a == addr && s.conn.as_ref().is_some_and(|c| !c.is_closed()))
    }

    /// Drops every connection (their tasks end with the last handle).
    pub(crate) fn close_all(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for s in slots.values_mut() {
            if let Some(c) = s.conn.take() {
                c.poison(ConnError::Closed {
                    addr: c.addr().to_owned(),
                });
            }
        }
    }
}
