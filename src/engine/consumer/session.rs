//! KIP-227 incremental fetch sessions, one per broker. After one full
//! fetch the broker remembers the partitions and their fetch offsets; later
//! requests name only partitions that were added or moved on, and list the
//! ones to forget, so idle partitions cost nothing per fetch.

use std::collections::HashMap;

use crate::types::TopicPartition;

/// Fetch versions before 7 have no sessions.
pub(super) const MIN_VERSION: i16 = 7;
/// Session epoch that asks for a one-off full fetch with no session.
const NO_SESSION: i32 = -1;

/// What the client believes one broker holds for it.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// 0: none yet (the next fetch is full and asks for one).
    pub(crate) id: i32,
    /// The epoch the next request carries; 0 means "full fetch, new session".
    pub(crate) epoch: i32,
    /// Partition -> fetch offset the broker has for it.
    parts: HashMap<TopicPartition, i64>,
}

/// One fetch request's view of the session.
#[derive(Debug)]
pub(super) struct Request {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions to name, with their fetch offsets.
    pub send: Vec<(TopicPartition, i64)>,
    /// Partitions the broker should drop from the session.
    pub forget: Vec<TopicPartition>,
}

impl Request {
    pub fn incremental(&self) -> bool {
        self.epoch > 0
    }
}

impl FetchSession {
    /// The request that fetches exactly `want` (partition, fetch offset).
    pub(super) fn request(&self, want: &[(TopicPartition, i64)], version: i16) -> Request {
        if version < MIN_VERSION {
            return Request {
                session_id: 0,
                epoch: NO_SESSION,
                send: want.to_vec(),
                forget: Vec::new(),
            };
        }
        if self.id == 0 || self.epoch == 0 {
            return Request {
                session_id: self.id,
                epoch: 0,
                send: want.to_vec(),
                forget: Vec::new(),
            };
        }
        let send = want
            .iter()
            .filter(|(tp, offset)| self.parts.get(tp) != Some(offset))
            .cloned()
            .collect();
        let wanted: std::collections::HashSet<&TopicPartition> =
            want.iter().map(|(tp, _)| tp).collect();
        let forget = self
            .parts
            .keys()
            .filter(|tp| !wanted.contains(tp))
            .cloned()
            .collect();
        Request {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forget,
        }
    }

    /// The broker answered `req` without a top-level error.
    pub(super) fn answered(
        &mut self,
        req: &Request,
        want: &[(TopicPartition, i64)],
        session_id: i32,
    ) {
        if req.epoch == NO_SESSION {
            return;
        }
        if session_id == 0 || (req.incremental() && session_id != self.id) {
            // The broker declined a session (its cache is full): full
            // fetches until it has room.
            *self = FetchSession::default();
            return;
        }
        self.id = session_id;
        self.epoch = next_epoch(req.epoch);
        self.parts = want.iter().cloned().collect();
    }

    /// The request failed or the broker refused the session: the broker's
    /// state is unknown, so the next fetch is full. Keeping the id lets the
    /// broker close the old session (KIP-227: epoch 0 with an existing id).
    pub(super) fn reset(&mut self, unknown_id: bool) {
        let id = if unknown_id { 0 } else { self.id };
        *self = FetchSession {
            id,
            ..Default::default()
        };
    }

    /// Fault injection: an id the broker never issued, or an epoch it does
    /// not expect. False if there is no session to break yet.
    #[cfg(feature = "unstable-internals")]
    pub(crate) fn break_for_test(&mut self, unknown_id: bool) -> bool {
        if self.id == 0 || self.epoch == 0 {
            return false;
        }
        if unknown_id {
            self.id = self.id.wrapping_add(7_777_777).max(1);
        } else {
            self.epoch = next_epoch(next_epoch(self.epoch));
        }
        true
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn full_then_only_changes_then_forgets() {
        let mut s = FetchSession::default();
        let want = vec![(tp(0), 5), (tp(1), 7), (tp(2), 0)];
        let r = s.request(&want, 12);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 3));
        s.answered(&r, &want, 42);
        assert_eq!((s.id, s.epoch), (42, 1));

        // Nothing moved: an empty incremental fetch.
        let r = s.request(&want, 12);
        assert!(r.incremental() && r.send.is_empty() && r.forget.is_empty());
        s.answered(&r, &want, 42);

        // p1 moved on, p2 is paused (not wanted), p3 is new.
        let want2 = vec![(tp(0), 5), (tp(1), 9), (tp(3), 1)];
        let r = s.request(&want2, 12);
        assert_eq!((r.session_id, r.epoch), (42, 2));
        assert_eq!(r.send, vec![(tp(1), 9), (tp(3), 1)]);
        assert_eq!(r.forget, vec![tp(2)]);
        s.answered(&r, &want2, 42);
        assert_eq!(s.request(&want2, 12).send, vec![]);
    }

    #[test]
    fn errors_and_refusals_fall_back_to_a_full_fetch() {
        let mut s = FetchSession::default();
        let want = vec![(tp(0), 1)];
        let r = s.request(&want, 12);
        s.answered(&r, &want, 9);
        // INVALID_FETCH_SESSION_EPOCH or a lost response: close and renew.
        s.reset(false);
        let r = s.request(&want, 12);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (9, 0, 1));
        // FETCH_SESSION_ID_NOT_FOUND: start from nothing.
        s.reset(true);
        let r = s.request(&want, 12);
        assert_eq!((r.session_id, r.epoch), (0, 0));
        // A broker with no room answers session id 0.
        s.answered(&r, &want, 0);
        assert_eq!(s.request(&want, 12).epoch, 0);
        // Before v7 there are no sessions at all.
        let r = FetchSession::default().request(&want, 6);
        assert_eq!((r.session_id, r.epoch), (0, NO_SESSION));
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(1), 2);
    }
}
