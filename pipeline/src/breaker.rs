//! The DLQ breaker (as Sentry's Arroyo `DlqLimit`): when too many of a
//! partition's records go to the DLQ, the partition is paused with reason
//! `breaker` until the application resets it, so a bad deploy cannot
//! empty a topic into the DLQ.

use std::collections::VecDeque;

/// When the breaker trips.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DlqLimit {
    /// Trip when more than this many records in a row would be dead-lettered.
    pub max_consecutive: Option<u32>,
    /// Trip when more than this share of the last `window` records would be.
    pub max_ratio: Option<f64>,
    /// Records the ratio is measured over.
    pub window: usize,
}

impl DlqLimit {
    /// Trips when more than `n` records in a row would be dead-lettered.
    pub fn consecutive(n: u32) -> DlqLimit {
        DlqLimit {
            max_consecutive: Some(n),
            max_ratio: None,
            window: 0,
        }
    }

    /// Also trips when more than `ratio` of the last `window` records would be.
    pub fn ratio(mut self, ratio: f64, window: usize) -> DlqLimit {
        self.max_ratio = Some(ratio);
        self.window = window.max(1);
        self
    }
}

/// One partition's breaker state.
#[derive(Debug, Clone, Default)]
pub struct Breaker {
    consecutive: u32,
    recent: VecDeque<bool>,
    dead_in_window: usize,
    open: bool,
}

impl Breaker {
    /// Whether the breaker is open (tripped, not reset).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// A record finished without the DLQ.
    pub fn ok(&mut self, limit: &DlqLimit) {
        self.consecutive = 0;
        self.push(false, limit);
    }

    /// A record is about to be dead-lettered. Returns false (and opens)
    /// if that would pass the limit: the record must be held instead.
    pub fn admit_dead(&mut self, limit: &DlqLimit) -> bool {
        if self.open {
            return false;
        }
        let over_run = limit.max_consecutive.is_some_and(|n| self.consecutive >= n);
        let over_ratio = limit.max_ratio.is_some_and(|ratio| {
            let (dead, n) = self.projected(limit);
            n >= limit.window && dead as f64 > ratio * n as f64
        });
        if over_run || over_ratio {
            self.open = true;
            return false;
        }
        self.consecutive += 1;
        self.push(true, limit);
        true
    }

    /// Dead records and records in the window if one more dead one came.
    fn projected(&self, limit: &DlqLimit) -> (usize, usize) {
        let mut dead = self.dead_in_window + 1;
        let mut n = self.recent.len() + 1;
        if n > limit.window {
            if self.recent.front() == Some(&true) {
                dead -= 1;
            }
            n -= 1;
        }
        (dead, n)
    }

    fn push(&mut self, dead: bool, limit: &DlqLimit) {
        if limit.max_ratio.is_none() {
            return;
        }
        self.recent.push_back(dead);
        self.dead_in_window += usize::from(dead);
        while self.recent.len() > limit.window {
            if self.recent.pop_front() == Some(true) {
                self.dead_in_window -= 1;
            }
        }
    }

    /// Closes the breaker and forgets the history.
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_on_a_run_and_holds_until_reset() {
        let limit = DlqLimit::consecutive(3);
        let mut b = Breaker::default();
        assert!(b.admit_dead(&limit) && b.admit_dead(&limit));
        b.ok(&limit);
        for _ in 0..3 {
            assert!(b.admit_dead(&limit));
        }
        assert!(!b.admit_dead(&limit), "the fourth in a row trips");
        assert!(b.is_open() && !b.admit_dead(&limit));
        b.reset();
        assert!(b.admit_dead(&limit));
    }

    #[test]
    fn trips_on_a_ratio_once_the_window_is_full() {
        let limit = DlqLimit {
            max_consecutive: None,
            max_ratio: Some(0.5),
            window: 10,
        };
        let mut b = Breaker::default();
        for _ in 0..5 {
            assert!(b.admit_dead(&limit), "window not full yet");
        }
        for _ in 0..4 {
            b.ok(&limit);
        }
        // 10 records, 6 dead > 50%.
        assert!(!b.admit_dead(&limit));
    }
}
