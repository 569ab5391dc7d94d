//! Per-partition commit tracking: which delivered offsets are still
//! incomplete, the highest offset safe to commit, and the offset map of
//! what completed above it. Pure data; the pipeline owns one per partition.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;

use crate::offset_map::OffsetMap;

/// Commit state of one partition.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// One past the highest offset delivered (or the committed offset
    /// before anything arrived); `None` while unknown.
    next: Option<i64>,
    /// Delivered, not yet complete.
    pending: BTreeSet<i64>,
    /// Complete ranges from the committed offset map that lie at or above
    /// `next` (not redelivered yet).
    restored: VecDeque<Range<i64>>,
}

/// What to do with a delivered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Process it; it is now pending.
    Process,
    /// Already complete (before a restart, per the offset map): skip it.
    Skip,
}

impl Tracker {
    /// Starts from a committed offset (if any) and its decoded map.
    pub fn new(committed: Option<i64>, map: OffsetMap) -> Tracker {
        Tracker {
            next: committed,
            pending: BTreeSet::new(),
            restored: map.ranges().iter().cloned().collect(),
        }
    }

    /// A record at `offset` arrived from the consumer.
    pub fn deliver(&mut self, offset: i64) -> Delivery {
        if self.pending.contains(&offset) {
            return Delivery::Skip; // redelivered while still being processed
        }
        if self.next.is_some_and(|n| offset < n) {
            return Delivery::Skip; // below next and not pending: complete
        }
        self.next = Some(offset + 1);
        while self.restored.front().is_some_and(|r| r.end <= offset) {
            self.restored.pop_front();
        }
        if self.restored.front().is_some_and(|r| r.start <= offset) {
            return Delivery::Skip;
        }
        self.pending.insert(offset);
        Delivery::Process
    }

    /// Marks a pending offset complete; false if it was not pending.
    pub fn complete(&mut self, offset: i64) -> bool {
        self.pending.remove(&offset)
    }

    /// Forgets delivered offsets from `offset` on (none may be pending):
    /// the consumer was sought back there.
    pub fn rewind(&mut self, offset: i64) {
        debug_assert!(self.pending.range(offset..).next().is_none());
        if self.next.is_none_or(|n| n > offset) {
            self.next = Some(offset);
        }
    }

    /// Offsets delivered and not complete.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// One past the highest offset delivered.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// The offset to commit: the lowest incomplete one.
    pub fn committable(&self) -> Option<i64> {
        if let Some(&p) = self.pending.first() {
            return Some(p);
        }
        let next = self.next?;
        Some(match self.restored.front() {
            Some(r) if r.start <= next && next < r.end => r.end,
            _ => next,
        })
    }

    /// The committable offset and the map of what completed above it.
    pub fn commit_point(&self) -> Option<(i64, OffsetMap)> {
        let at = self.committable()?;
        let next = self.next.unwrap_or(at);
        let mut ranges: Vec<Range<i64>> = Vec::new();
        let mut push = |r: Range<i64>| {
            let r = r.start.max(at + 1)..r.end;
            if r.start >= r.end {
                return;
            }
            match ranges.last_mut() {
                // Restored ranges may overlap what was redelivered since.
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => ranges.push(r),
            }
        };
        // Between pending offsets everything delivered is complete.
        let mut prev = at;
        for &p in self.pending.range(at + 1..) {
            push(prev + 1..p);
            prev = p;
        }
        if !self.pending.is_empty() {
            push(prev + 1..next);
        }
        for r in &self.restored {
            push(r.clone());
        }
        // Sorted, merged and above `at` by construction; were it not, no
        // commit (rather than one that forgets completed offsets).
        let map = OffsetMap::from_ranges(at, ranges);
        debug_assert!(map.is_some(), "tracker built a non-canonical offset map");
        Some((at, map?))
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn commits_the_contiguous_prefix_and_maps_the_rest() {
        let mut t = Tracker::new(Some(10), OffsetMap::default());
        assert_eq!(t.committable(), Some(10));
        for o in 10..20 {
            assert_eq!(t.deliver(o), Delivery::Process);
        }
        for o in [11, 12, 15, 16, 17, 18, 19] {
            assert!(t.complete(o));
        }
        let (at, map) = t.commit_point().unwrap();
        assert_eq!(at, 10);
        assert_eq!(map.ranges(), &[11..13, 15..20]);
        t.complete(10);
        let (at, map) = t.commit_point().unwrap();
        assert_eq!(at, 13);
        assert_eq!(map.ranges(), &[15..20]);
    }

    #[test]
    fn restored_map_skips_and_keeps_what_is_not_redelivered_yet() {
        let map = OffsetMap::from_ranges(5, vec![6..8, 10..12]).unwrap();
        let mut t = Tracker::new(Some(5), map);
        assert_eq!(t.deliver(5), Delivery::Process);
        assert_eq!(t.deliver(6), Delivery::Skip);
        let (at, map) = t.commit_point().unwrap();
        assert_eq!((at, map.ranges()), (5, &[6..8, 10..12][..]));
        t.complete(5);
        assert_eq!(
            t.committable(),
            Some(8),
            "6 redelivered, 7 not yet, both complete"
        );
        assert_eq!(t.deliver(7), Delivery::Skip);
        assert_eq!(t.deliver(8), Delivery::Process);
        assert_eq!(t.deliver(9), Delivery::Process);
        assert_eq!(t.deliver(10), Delivery::Skip);
        t.complete(9);
        let (at, map) = t.commit_point().unwrap();
        assert_eq!((at, map.ranges()), (8, &[9..12][..]));
    }

    #[test]
    fn gaps_in_offsets_count_as_complete() {
        let mut t = Tracker::new(None, OffsetMap::default());
        assert_eq!(t.committable(), None);
        t.deliver(100);
        t.deliver(105); // 101..105 compacted away
        t.complete(100);
        assert_eq!(t.committable(), Some(105));
        t.complete(105);
        assert_eq!(t.committable(), Some(106));
    }
}
