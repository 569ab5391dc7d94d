//! Burrow's consumer status, by its rules (linkedin/Burrow
//! `core/internal/evaluator/caching.go` and the window of
//! `core/internal/storage/inmemory.go`): no thresholds, only a sliding
//! window of commits per partition and the broker's recent log-end offsets.

use std::collections::VecDeque;

/// Burrow's status values, worst last (the order compares severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Status {
    NotFound,
    Ok,
    Warn,
    Err,
    Stop,
    Stall,
    Rewind,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::NotFound => "NOTFOUND",
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Err => "ERR",
            Status::Stop => "STOP",
            Status::Stall => "STALL",
            Status::Rewind => "REWIND",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One commit in the window. `lag` is `None` for commits that were not
/// appended at the head (Burrow gives backfilled commits no lag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Commit {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub lag: Option<u64>,
}

/// Evaluator settings (Burrow's defaults: `allowed-lag` 0, `minimum-complete` 0).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rules {
    pub allowed_lag: u64,
    pub minimum_complete: f32,
}

/// A partition's status and how full its window is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Evaluated {
    pub status: Status,
    pub complete: f32,
}

/// Rule 1: the lag was never within `allowed` in the window.
fn lag_always_not_zero(offsets: &[Commit], allowed: u64) -> bool {
    !offsets.iter().any(|c| c.lag.is_some_and(|l| l <= allowed))
}

/// Rule 2: the first index whose offset went backwards.
fn rewind_index(offsets: &[Commit]) -> Option<usize> {
    (1..offsets.len()).find(|&i| offsets[i].offset < offsets[i - 1].offset)
}

/// Rule 2, part 2: a later commit got back to where the rewind started.
fn rewind_recovered(offsets: &[Commit], at: usize) -> bool {
    let before = offsets[at - 1].offset;
    offsets[at..].iter().any(|c| c.offset >= before)
}

/// Rule 3: the time since the last commit exceeds the window's span.
fn stopped(offsets: &[Commit], now_s: i64) -> bool {
    let (first, last) = (
        offsets[0].timestamp_ms,
        offsets[offsets.len() - 1].timestamp_ms,
    );
    now_s * 1000 - last > last - first
}

/// Rule 4: every commit in the window has the same offset.
fn stalled(offsets: &[Commit]) -> bool {
    offsets.windows(2).all(|w| w[0].offset == w[1].offset)
}

/// Rule 5: the known lags never decrease.
fn lag_not_decreasing(offsets: &[Commit]) -> bool {
    let lags: Vec<u64> = offsets.iter().filter_map(|c| c.lag).collect();
    lags.windows(2).all(|w| w[1] >= w[0])
}

/// A recent broker log-end offset was at or below the last commit (the
/// consumer was caught up recently, so a quiet topic is not a stop).
fn recent_lag_zero(offsets: &[Commit], broker: &[i64]) -> bool {
    let last = offsets[offsets.len() - 1].offset;
    broker.iter().any(|&b| b <= last)
}

/// The status of a non-empty window of commits.
fn calculate(
    offsets: &[Commit],
    broker: &[i64],
    current_lag: u64,
    now_s: i64,
    allowed: u64,
) -> Status {
    if current_lag <= allowed {
        return Status::Ok;
    }
    if stopped(offsets, now_s) && !recent_lag_zero(offsets, broker) {
        return Status::Stop;
    }
    if let Some(i) = rewind_index(offsets) {
        if !rewind_recovered(offsets, i) {
            return Status::Rewind;
        }
    }
    if lag_always_not_zero(offsets, allowed) {
        if stalled(offsets) {
            return Status::Stall;
        }
        if lag_not_decreasing(offsets) {
            return Status::Warn;
        }
    }
    Status::Ok
}

/// Burrow's per-partition evaluation: leading empty slots are dropped and
/// make the window incomplete; an incomplete window below
/// `minimum_complete` is OK.
pub(crate) fn evaluate(
    window: &[Option<Commit>],
    broker: &[i64],
    current_lag: u64,
    now_s: i64,
    rules: Rules,
) -> Evaluated {
    let first = window
        .iter()
        .position(Option::is_some)
        .unwrap_or(window.len());
    let offsets: Vec<Commit> = window[first..].iter().flatten().copied().collect();
    let complete = if window.is_empty() {
        0.0
    } else if first > 0 {
        offsets.len() as f32 / window.len() as f32
    } else {
        1.0
    };
    if offsets.is_empty() || complete < rules.minimum_complete {
        return Evaluated {
            status: Status::Ok,
            complete,
        };
    }
    Evaluated {
        status: calculate(&offsets, broker, current_lag, now_s, rules.allowed_lag),
        complete,
    }
}

/// The group's status from its partitions': any worse than OK raises it to
/// WARN; STOP, STALL and REWIND raise it to ERR.
pub(crate) fn group_status(partitions: impl IntoIterator<Item = Status>) -> Status {
    partitions.into_iter().fold(Status::Ok, |g, p| {
        if p <= g {
            g
        } else if p > Status::Err {
            Status::Err
        } else {
            p
        }
    })
}

/// One partition's sliding window (Burrow's in-memory storage): the last
/// `intervals` commits and broker log-end offsets.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    intervals: usize,
    /// Commits closer than this to the previous one replace it (keeping its timestamp).
    min_distance_ms: i64,
    commits: VecDeque<Commit>,
    broker: VecDeque<i64>,
}

impl Window {
    pub fn new(intervals: usize, min_distance_ms: i64) -> Window {
        Window {
            intervals: intervals.max(1),
            min_distance_ms,
            commits: VecDeque::new(),
            broker: VecDeque::new(),
        }
    }

    /// A new broker log-end offset.
    pub fn broker_offset(&mut self, leo: i64) {
        if self.broker.len() == self.intervals {
            self.broker.pop_front();
        }
        self.broker.push_back(leo);
    }

    /// A commit appended at the head, its lag taken from the latest LEO.
    pub fn commit(&mut self, offset: i64, timestamp_ms: i64) {
        let lag = self.broker.back().map(|&leo| (leo - offset).max(0) as u64);
        if let Some(last) = self.commits.back_mut() {
            if timestamp_ms - last.timestamp_ms < self.min_distance_ms {
                *last = Commit {
                    offset,
                    timestamp_ms: last.timestamp_ms,
                    lag,
                };
                return;
            }
        }
        if self.commits.len() == self.intervals {
            self.commits.pop_front();
        }
        self.commits.push_back(Commit {
            offset,
            timestamp_ms,
            lag,
        });
    }

    /// `max(0, last LEO - last commit)`.
    pub fn current_lag(&self) -> u64 {
        match (self.broker.back(), self.commits.back()) {
            (Some(&leo), Some(c)) => (leo - c.offset).max(0) as u64,
            _ => 0,
        }
    }

    #[cfg(test)]
    pub fn last_commit(&self) -> Option<Commit> {
        self.commits.back().copied()
    }

    pub fn evaluate(&self, now_s: i64, rules: Rules) -> Evaluated {
        // The ring's empty slots come first, as in Burrow's.
        let mut slots: Vec<Option<Commit>> = vec![None; self.intervals - self.commits.len()];
        slots.extend(self.commits.iter().copied().map(Some));
        let broker: Vec<i64> = self.broker.iter().copied().collect();
        evaluate(&slots, &broker, self.current_lag(), now_s, rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One vector of Burrow's `TestCachingEvaluator_CheckRules`
    /// (caching_test.go #0-#15): commits as (offset, ts ms, lag), then the
    /// expected result of each rule and the status.
    struct Vector {
        offsets: Vec<(i64, i64, Option<u64>)>,
        broker: Vec<i64>,
        current_lag: u64,
        now_s: i64,
        allowed: u64,
        always_not_zero: bool,
        rewind: Option<usize>,
        stopped: bool,
        stalled: bool,
        not_decreasing: bool,
        recent_zero: bool,
        status: Status,
    }

    fn steps(base: i64, lags: [u64; 5]) -> Vec<(i64, i64, Option<u64>)> {
        (0..5)
            .map(|i| (base * (i + 1), 100_000 * (i + 1), Some(lags[i as usize])))
            .collect()
    }

    fn flat(lags: [u64; 5]) -> Vec<(i64, i64, Option<u64>)> {
        (0..5)
            .map(|i| (1000, 100_000 * (i + 1), Some(lags[i as usize])))
            .collect()
    }

    fn rewound(last: i64) -> Vec<(i64, i64, Option<u64>)> {
        vec![
            (1000, 100_000, Some(100)),
            (2000, 200_000, Some(150)),
            (3000, 300_000, Some(200)),
            (2000, 400_000, Some(1250)),
            (last, 500_000, Some(300)),
        ]
    }

    /// #9 and #10: fifteen commits one second apart, all with zero lag.
    fn busy() -> Vec<(i64, i64, Option<u64>)> {
        let ts = [
            1512224618356,
            1512224619362,
            1512224620366,
            1512224621367,
            1512224622370,
            1512224623373,
            1512224624378,
            1512224625379,
            1512224626383,
            1512224627383,
            1512224628383,
            1512224629388,
            1512224630391,
            1512224631394,
            1512224632397,
        ];
        ts.iter()
            .enumerate()
            .map(|(i, &t)| (792748079 + i as i64, t, Some(0)))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn v(
        offsets: Vec<(i64, i64, Option<u64>)>,
        broker: &[i64],
        current_lag: u64,
        now_s: i64,
        allowed: u64,
        rules: (bool, Option<usize>, bool, bool, bool, bool),
        status: Status,
    ) -> Vector {
        let (always_not_zero, rewind, stopped, stalled, not_decreasing, recent_zero) = rules;
        Vector {
            offsets,
            broker: broker.to_vec(),
            current_lag,
            now_s,
            allowed,
            always_not_zero,
            rewind,
            stopped,
            stalled,
            not_decreasing,
            recent_zero,
            status,
        }
    }

    fn vectors() -> Vec<Vector> {
        use Status::*;
        let f = false;
        let t = true;
        let mut nil_lags: Vec<(i64, i64, Option<u64>)> = Vec::new();
        for i in 0..10i64 {
            let lag = (i % 2 == 0).then_some(50 * (i as u64 / 2));
            nil_lags.push((1000 + 500 * i, 100_000 + 50_000 * i, lag));
        }
        vec![
            // 0: zero lag somewhere in the window.
            v(
                steps(1000, [0, 50, 100, 150, 200]),
                &[5200],
                200,
                600,
                0,
                (f, None, f, f, t, f),
                Ok,
            ),
            // 1: age (400 s) equal to the span is not a stop.
            v(
                steps(1000, [0, 50, 100, 150, 200]),
                &[5200],
                200,
                900,
                0,
                (f, None, f, f, t, f),
                Ok,
            ),
            // 2: STOP even with zero lag early in the window (#290).
            v(
                steps(1000, [0, 50, 100, 150, 200]),
                &[5200],
                200,
                1000,
                0,
                (f, None, t, f, t, f),
                Stop,
            ),
            // 3: STOP with lag always non-zero too.
            v(
                steps(1000, [50, 100, 150, 200, 250]),
                &[5250],
                250,
                1000,
                0,
                (t, None, t, f, t, f),
                Stop,
            ),
            // 4: same offset and lag, but zero lag once: OK.
            v(
                flat([0, 50, 100, 150, 200]),
                &[1200],
                200,
                600,
                0,
                (f, None, f, t, t, f),
                Ok,
            ),
            // 5: same offset, lag always non-zero: STALL.
            v(
                flat([100, 150, 200, 250, 300]),
                &[1300],
                300,
                600,
                0,
                (t, None, f, t, t, f),
                Stall,
            ),
            // 6: STALL with constant lag.
            v(
                flat([100; 5]),
                &[1100],
                100,
                600,
                0,
                (t, None, f, t, t, f),
                Stall,
            ),
            // 7: a rewind caught up within the window: OK.
            v(
                rewound(4000),
                &[4300],
                300,
                600,
                0,
                (t, Some(3), f, f, f, f),
                Ok,
            ),
            // 8: current lag 0: OK although the timestamps say stopped.
            v(
                steps(1000, [50, 100, 150, 200, 250]),
                &[5250],
                0,
                1000,
                0,
                (t, None, t, f, t, f),
                Ok,
            ),
            // 9: STOP by timestamps with current lag although the window had none (#290).
            v(
                busy(),
                &[792749024, 792749000, 792748800, 792748600, 792748500],
                931,
                1512224650,
                0,
                (f, None, t, f, t, f),
                Stop,
            ),
            // 10: not a stop: a recent LEO was at the last commit (#303).
            v(
                busy(),
                &[792748094, 792748093, 792748093, 792748093],
                1,
                1512224650,
                0,
                (f, None, t, f, t, t),
                Ok,
            ),
            // 11: #0 with nil lags between.
            v(nil_lags, &[5700], 200, 600, 0, (f, None, f, f, t, f), Ok),
            // 12: allowed lag 1 makes it OK.
            v(
                vec![
                    (1000, 100_000, Some(2)),
                    (2000, 200_000, Some(1)),
                    (2000, 300_000, Some(1)),
                ],
                &[2001],
                1,
                550,
                1,
                (f, None, t, f, f, f),
                Ok,
            ),
            // 13: #5 with allowed lag 99: still STALL.
            v(
                flat([100, 150, 200, 250, 300]),
                &[1300],
                300,
                600,
                99,
                (t, None, f, t, t, f),
                Stall,
            ),
            // 14: #7 with allowed lag 99: OK.
            v(
                rewound(4000),
                &[4300],
                300,
                600,
                99,
                (t, Some(3), f, f, f, f),
                Ok,
            ),
            // 15: a rewind not caught up: REWIND.
            v(
                rewound(2500),
                &[4300],
                300,
                600,
                0,
                (t, Some(3), f, f, f, f),
                Rewind,
            ),
        ]
    }

    #[test]
    fn burrow_caching_test_vectors() {
        let all = vectors();
        assert_eq!(all.len(), 16);
        for (i, t) in all.iter().enumerate() {
            let o: Vec<Commit> = t
                .offsets
                .iter()
                .map(|&(offset, timestamp_ms, lag)| Commit {
                    offset,
                    timestamp_ms,
                    lag,
                })
                .collect();
            assert_eq!(
                lag_always_not_zero(&o, t.allowed),
                t.always_not_zero,
                "#{i} isLagAlwaysNotZero"
            );
            assert_eq!(rewind_index(&o), t.rewind, "#{i} checkIfOffsetsRewind");
            assert_eq!(
                stopped(&o, t.now_s),
                t.stopped,
                "#{i} checkIfOffsetsStopped"
            );
            assert_eq!(stalled(&o), t.stalled, "#{i} checkIfOffsetsStalled");
            assert_eq!(
                lag_not_decreasing(&o),
                t.not_decreasing,
                "#{i} checkIfLagNotDecreasing"
            );
            assert_eq!(
                recent_lag_zero(&o, &t.broker),
                t.recent_zero,
                "#{i} checkIfRecentLagZero"
            );
            let status = calculate(&o, &t.broker, t.current_lag, t.now_s, t.allowed);
            assert_eq!(status, t.status, "#{i} calculatePartitionStatus");
        }
    }

    #[test]
    fn incomplete_windows_and_group_status() {
        let c = |offset| {
            Some(Commit {
                offset,
                timestamp_ms: 1000,
                lag: Some(5),
            })
        };
        // Half-empty window: complete 0.5; under minimum-complete 0.6 it is OK.
        let w = [None, None, c(10), c(10)];
        let strict = Rules {
            allowed_lag: 0,
            minimum_complete: 0.6,
        };
        assert_eq!(
            evaluate(&w, &[15], 5, 100, strict),
            Evaluated {
                status: Status::Ok,
                complete: 0.5
            }
        );
        assert_eq!(
            evaluate(&w, &[15], 5, 100, Rules::default()).status,
            Status::Stop
        );
        assert_eq!(
            evaluate(&[None, None], &[], 0, 1, Rules::default()).status,
            Status::Ok
        );
        use Status::*;
        assert_eq!(group_status([Ok, Ok]), Ok);
        assert_eq!(group_status([Ok, Warn]), Warn);
        assert_eq!(group_status([Warn, Stall, Ok]), Err);
        assert_eq!(group_status([Rewind]), Err);
        assert_eq!(group_status([]), Ok);
    }

    #[test]
    fn window_min_distance_and_lag() {
        let mut w = Window::new(3, 1000);
        w.broker_offset(100);
        w.commit(10, 0);
        w.commit(20, 500); // within min-distance: replaces, keeps ts 0
        assert_eq!(
            w.last_commit(),
            Some(Commit {
                offset: 20,
                timestamp_ms: 0,
                lag: Some(80)
            })
        );
        w.commit(30, 1500);
        w.commit(40, 2500);
        w.commit(50, 3500); // ring of 3: the first falls out
        assert_eq!(w.commits.len(), 3);
        assert_eq!(w.commits[0].offset, 30);
        assert_eq!(w.current_lag(), 50);
        // Lag shrinking as it goes: OK; a long silence after: STOP.
        assert_eq!(w.evaluate(4, Rules::default()).status, Status::Ok);
        assert_eq!(w.evaluate(10, Rules::default()).status, Status::Stop);
    }
}
