//! Model-based tests of the commit tracker and the offset map: random
//! deliveries, completions, failures, commits, revokes and crashes against
//! a model of what really completed. No broker.

#![allow(clippy::single_range_in_vec_init)]

use std::collections::BTreeSet;

use base64::Engine as _;
use kafka_ingest_pipeline::offset_map::{OffsetMap, PREFIX};
use kafka_ingest_pipeline::tracker::{Delivery, Tracker};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// The consumer hands out up to n more records.
    Deliver(u8),
    /// A running record completes (index into the running ones).
    Complete(u16),
    /// A running record fails and will be retried: still pending.
    Fail(u16),
    /// Commit the committable offset with its map.
    Commit,
    /// Commit, then lose the partition and get it back (state rebuilt
    /// from the broker's committed offset and metadata).
    Revoke,
    /// The process dies: state rebuilt from the last commit.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..12).prop_map(Op::Deliver),
        6 => any::<u16>().prop_map(Op::Complete),
        1 => any::<u16>().prop_map(Op::Fail),
        2 => Just(Op::Commit),
        1 => Just(Op::Revoke),
        1 => Just(Op::Crash),
    ]
}

/// The world: a partition log with holes, what truly completed, and what
/// the broker has committed.
struct World {
    log_end: i64,
    holes: BTreeSet<i64>,
    done: BTreeSet<i64>,
    committed: Option<(i64, String)>,
    tracker: Tracker,
    position: i64,
    running: Vec<i64>,
}

impl World {
    fn new(log_end: i64, holes: BTreeSet<i64>) -> World {
        World {
            log_end,
            holes,
            done: BTreeSet::new(),
            committed: None,
            tracker: Tracker::default(),
            position: 0,
            running: Vec::new(),
        }
    }

    /// What the last commit says is complete.
    fn committed_complete(&self, o: i64) -> bool {
        match &self.committed {
            None => false,
            Some((at, meta)) => {
                o < *at
                    || OffsetMap::decode(meta, *at, Some(self.log_end))
                        .expect("our own commit decodes")
                        .contains(o)
            }
        }
    }

    fn deliver(&mut self, n: u8) {
        let mut left = n;
        while left > 0 && self.position < self.log_end {
            let o = self.position;
            self.position += 1;
            if self.holes.contains(&o) {
                continue;
            }
            left -= 1;
            match self.tracker.deliver(o) {
                Delivery::Process => {
                    // Redelivered only if not recorded complete by the last commit.
                    assert!(
                        !self.committed_complete(o),
                        "offset {o} redone though committed complete"
                    );
                    self.running.push(o);
                }
                Delivery::Skip => {
                    // Skipping is only allowed for records that really completed.
                    assert!(
                        self.done.contains(&o),
                        "offset {o} skipped but never completed: lost"
                    );
                }
            }
        }
    }

    fn commit(&mut self) {
        let Some((at, map)) = self.tracker.commit_point() else {
            return;
        };
        // Never past an incomplete record.
        for o in 0..at {
            assert!(
                self.holes.contains(&o) || self.done.contains(&o),
                "commit at {at} passes incomplete offset {o}"
            );
        }
        for r in map.ranges() {
            for o in r.clone() {
                assert!(
                    self.holes.contains(&o) || self.done.contains(&o),
                    "map marks incomplete offset {o} complete"
                );
            }
        }
        if let Some((prev, _)) = &self.committed {
            assert!(at >= *prev, "commit went back from {prev} to {at}");
        }
        let meta = map.encode(at);
        assert_eq!(meta.len(), map.encoded_len(at));
        let back = OffsetMap::decode(&meta, at, Some(self.log_end)).expect("decodes");
        assert_eq!(back, map, "decode(encode(x)) == x");
        self.committed = Some((at, meta));
    }

    fn restart(&mut self) {
        self.running.clear();
        match &self.committed {
            None => {
                self.tracker = Tracker::default();
                self.position = 0;
            }
            Some((at, meta)) => {
                let map = OffsetMap::decode(meta, *at, Some(self.log_end)).expect("decodes");
                self.tracker = Tracker::new(Some(*at), map);
                self.position = *at;
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Deliver(n) => self.deliver(*n),
            Op::Complete(i) if !self.running.is_empty() => {
                let o = self.running.remove(*i as usize % self.running.len());
                assert!(self.tracker.complete(o));
                self.done.insert(o);
            }
            Op::Fail(i) if !self.running.is_empty() => {
                // Still pending; it completes (or fails again) later.
                let len = self.running.len();
                self.running.swap(*i as usize % len, len - 1);
            }
            Op::Complete(_) | Op::Fail(_) => {}
            Op::Commit => self.commit(),
            Op::Revoke => {
                self.commit();
                self.restart();
            }
            Op::Crash => self.restart(),
        }
    }

    /// Runs to the end: every existing record ends up complete, and the
    /// final commit covers the whole log.
    fn finish(&mut self) {
        self.restart();
        while self.position < self.log_end {
            self.deliver(u8::MAX);
            for o in std::mem::take(&mut self.running) {
                self.tracker.complete(o);
                self.done.insert(o);
            }
        }
        self.commit();
        for o in 0..self.log_end {
            assert!(
                self.holes.contains(&o) || self.done.contains(&o),
                "offset {o} lost"
            );
        }
        let last = (0..self.log_end).rev().find(|o| !self.holes.contains(o));
        if let Some(last) = last {
            let (at, meta) = self.committed.as_ref().expect("committed");
            assert_eq!(*at, last + 1, "everything complete: commit at the end");
            assert!(meta.is_empty(), "nothing above the end: no map");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn tracker_and_offset_map_model(
        log_end in 1i64..300,
        holes in proptest::collection::btree_set(0i64..300, 0..20),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(log_end, holes);
        for op in &ops {
            w.apply(op);
        }
        w.finish();
    }

    #[test]
    fn encode_decode_round_trips(
        start in 0i64..1_000_000,
        runs in proptest::collection::vec((1u64..5_000, 1u64..5_000), 1..60),
    ) {
        let mut ranges = Vec::new();
        let mut at = start;
        for (gap, len) in runs {
            let s = at + gap as i64;
            ranges.push(s..s + len as i64);
            at = s + len as i64;
        }
        let map = OffsetMap::from_ranges(start, ranges).unwrap();
        let text = map.encode(start);
        prop_assert_eq!(text.len(), map.encoded_len(start));
        prop_assert_eq!(OffsetMap::decode(&text, start, Some(at)).unwrap(), map.clone());
        prop_assert!(OffsetMap::decode(&text, start, Some(at - 1)).is_err(), "past the log end");
        prop_assert!(OffsetMap::decode(&text, start + 1, None).is_err(), "other offset");
    }

    #[test]
    fn decoder_never_panics_on_strings(s in ".{0,64}", committed in any::<i64>()) {
        let _ = OffsetMap::decode(&s, committed, None);
        let _ = OffsetMap::decode(&format!("{PREFIX}{s}"), committed, Some(0));
    }

    #[test]
    fn decoder_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80), committed in any::<i64>()) {
        let text = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
        if let Ok(map) = OffsetMap::decode(&text, committed, None) {
            // Whatever decodes is a canonical map that re-encodes to itself.
            let again = map.encode(committed);
            prop_assert_eq!(OffsetMap::decode(&again, committed, None).unwrap(), map);
        }
    }
}

/// One poison record followed by a million successes: the map stays tiny.
#[test]
fn one_failure_then_a_million_successes_in_32_bytes() {
    let mut t = Tracker::new(Some(0), OffsetMap::default());
    for o in 0..=1_000_000 {
        assert_eq!(t.deliver(o), Delivery::Process);
        if o > 0 {
            t.complete(o);
        }
    }
    let (at, map) = t.commit_point().unwrap();
    assert_eq!(at, 0);
    let text = map.encode(at);
    assert!(text.len() <= 32, "{text}: {} bytes", text.len());
    assert_eq!(OffsetMap::decode(&text, at, Some(1_000_001)).unwrap(), map);
}

/// A million mutated valid encodings (flipped, cut, extended bytes, with a
/// valid checksum recomputed sometimes): the decoder never panics, and
/// whatever it accepts is canonical.
#[test]
fn a_million_fuzzed_payloads() {
    let mut rng = fastrand::Rng::with_seed(11);
    let base = OffsetMap::from_ranges(100, vec![101..150, 152..153, 160..4000]).unwrap();
    let valid = base.encode(100);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&valid[PREFIX.len()..])
        .unwrap();
    let mut accepted = 0;
    for _ in 0..1_000_000 {
        let mut b = raw.clone();
        match rng.u8(0..4) {
            0 => {
                let i = rng.usize(0..b.len());
                b[i] ^= 1 << rng.u8(0..8);
            }
            1 => b.truncate(rng.usize(0..b.len())),
            2 => b.push(rng.u8(..)),
            _ => {
                let i = rng.usize(0..b.len());
                b[i] = rng.u8(..);
            }
        }
        let committed = if rng.bool() { 100 } else { rng.i64(..) };
        let forged = b != raw || committed != 100;
        let text = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
        );
        if let Ok(m) = OffsetMap::decode(&text, committed, Some(rng.i64(0..10_000))) {
            accepted += usize::from(forged);
            assert_eq!(
                OffsetMap::decode(&m.encode(committed), committed, None).unwrap(),
                m
            );
        }
    }
    // A CRC-32 lets about one in 2^32 random mutations through.
    assert!(accepted < 10, "{accepted} forged payloads accepted");
}
