//! Time lag from sampled log-end offsets, as kafka-lag-exporter computes
//! it (a per-partition table of (LEO, time) points; the time the LEO
//! passed the group's offset is interpolated between the two points that
//! bracket it), with two fixes: 0 when the group is caught up (also when
//! idle), and "at least the window" when the offset is older than the
//! oldest point, instead of extrapolating.

use std::collections::VecDeque;

/// A partition's time lag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TimeLag {
    /// Seconds since the next record to read was written.
    Seconds(f64),
    /// Older than the sampled window: at least this many seconds.
    AtLeast(f64),
    /// Fewer than one sample.
    Unknown,
}

impl TimeLag {
    /// Seconds, as a lower bound for `AtLeast` (0 when unknown).
    pub fn seconds(self) -> f64 {
        match self {
            TimeLag::Seconds(s) | TimeLag::AtLeast(s) => s,
            TimeLag::Unknown => 0.0,
        }
    }

    pub fn text(self) -> String {
        match self {
            TimeLag::Seconds(s) => format!("{s:.1}s"),
            TimeLag::AtLeast(s) => format!("≥ {s:.0}s"),
            TimeLag::Unknown => "-".to_owned(),
        }
    }
}

/// The (LEO, time) points of one partition, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    points: VecDeque<(i64, f64)>,
    limit: usize,
}

impl Table {
    pub fn new(limit: usize) -> Table {
        Table {
            points: VecDeque::new(),
            limit: limit.max(2),
        }
    }

    /// Adds a sample; out-of-order or backwards points are dropped, and a
    /// flat run keeps only its first and last point.
    pub fn add(&mut self, leo: i64, at_s: f64) {
        if let Some(&(o, t)) = self.points.back() {
            if at_s <= t || leo < o {
                return;
            }
            let n = self.points.len();
            if n >= 2 && o == leo && self.points[n - 2].0 == leo {
                self.points[n - 1].1 = at_s;
                return;
            }
        }
        if self.points.len() == self.limit {
            self.points.pop_front();
        }
        self.points.push_back((leo, at_s));
    }

    /// The time lag of a group at `offset` (the next record it will read), at `now_s`.
    pub fn lag(&self, offset: i64, now_s: f64) -> TimeLag {
        let Some(&(last, _)) = self.points.back() else {
            return TimeLag::Unknown;
        };
        if offset >= last {
            return TimeLag::Seconds(0.0);
        }
        let (first, first_t) = self.points[0];
        if offset < first {
            return TimeLag::AtLeast((now_s - first_t).max(0.0));
        }
        // The record at `offset` was written between the last point with
        // LEO <= offset and the next one (whose LEO is > offset).
        for w in 0..self.points.len() - 1 {
            let (lo, lt) = self.points[w];
            let (ro, rt) = self.points[w + 1];
            if lo <= offset && offset < ro {
                let t = rt - (ro - offset) as f64 * (rt - lt) / (ro - lo) as f64;
                return TimeLag::Seconds((now_s - t).max(0.0));
            }
        }
        TimeLag::AtLeast((now_s - first_t).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_bracketing_points() {
        let mut t = Table::new(60);
        t.add(0, 0.0);
        t.add(100, 10.0);
        t.add(300, 20.0);
        // Offset 200 was reached halfway between 10 s and 20 s.
        assert_eq!(t.lag(200, 30.0), TimeLag::Seconds(15.0));
        assert_eq!(t.lag(50, 30.0), TimeLag::Seconds(25.0));
        assert_eq!(t.lag(300, 30.0), TimeLag::Seconds(0.0));
    }

    #[test]
    fn idle_and_caught_up_is_zero_not_nan() {
        let mut t = Table::new(60);
        for s in 0..5 {
            t.add(42, s as f64);
        }
        assert_eq!(t.lag(42, 100.0), TimeLag::Seconds(0.0));
        // A flat run keeps two points.
        assert_eq!(t.points.len(), 2);
        assert_eq!(t.points[1], (42, 4.0));
    }

    #[test]
    fn older_than_the_window_is_a_lower_bound() {
        let mut t = Table::new(3);
        t.add(1000, 0.0);
        t.add(2000, 1.0);
        t.add(3000, 2.0);
        t.add(4000, 3.0); // the first point falls out
        assert_eq!(t.lag(0, 5.0), TimeLag::AtLeast(4.0));
        assert_eq!(t.lag(2500, 5.0), TimeLag::Seconds(3.5));
    }

    #[test]
    fn out_of_order_and_backwards_points_are_dropped() {
        let mut t = Table::new(10);
        t.add(100, 5.0);
        t.add(200, 4.0);
        t.add(50, 6.0);
        assert_eq!(t.points.len(), 1);
        assert_eq!(t.lag(10, 6.0), TimeLag::AtLeast(1.0));
        assert_eq!(Table::new(5).lag(0, 1.0), TimeLag::Unknown);
    }
}
