//! Ordering lanes of one partition: records of a lane run one at a time
//! in offset order, lanes run in parallel. A lane is the whole partition
//! (`Ordering::Partition`), one key (`Ordering::Key`) or one record
//! (`Ordering::Unordered`, and records without a key).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Which lane a record joins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LaneKey {
    /// Everything in the partition.
    Partition,
    /// One key.
    Key(Bytes),
    /// Just this offset.
    Offset(i64),
}

#[derive(Debug)]
struct Lane<T> {
    queue: VecDeque<T>,
    busy: bool,
}

/// Queued work by lane, and the lanes ready to start their next record.
#[derive(Debug)]
pub struct Lanes<T> {
    lanes: HashMap<LaneKey, Lane<T>>,
    ready: VecDeque<LaneKey>,
    queued: usize,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Lanes {
            lanes: HashMap::new(),
            ready: VecDeque::new(),
            queued: 0,
        }
    }
}

impl<T> Lanes<T> {
    /// Appends work to its lane.
    pub fn push(&mut self, key: LaneKey, work: T) {
        let lane = self.lanes.entry(key.clone()).or_insert_with(|| Lane {
            queue: VecDeque::new(),
            busy: false,
        });
        lane.queue.push_back(work);
        self.queued += 1;
        if !lane.busy && lane.queue.len() == 1 {
            self.ready.push_back(key);
        }
    }

    /// The record [`start`](Self::start) would return.
    pub fn peek(&self) -> Option<&T> {
        let key = self.ready.front()?;
        self.lanes.get(key)?.queue.front()
    }

    /// Starts the next record of the first ready lane; the lane is busy
    /// until [`finish`](Self::finish).
    pub fn start(&mut self) -> Option<(LaneKey, T)> {
        let key = self.ready.pop_front()?;
        let lane = self.lanes.get_mut(&key)?;
        let work = lane.queue.pop_front()?;
        lane.busy = true;
        self.queued -= 1;
        Some((key, work))
    }

    /// The lane's running record is done: its next one becomes ready.
    pub fn finish(&mut self, key: &LaneKey) {
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        lane.busy = false;
        if lane.queue.is_empty() {
            self.lanes.remove(key);
        } else {
            self.ready.push_back(key.clone());
        }
    }

    /// Removes every queued record (started ones stay busy).
    pub fn drain(&mut self) -> Vec<T> {
        self.ready.clear();
        self.queued = 0;
        let mut out = Vec::new();
        self.lanes.retain(|_, lane| {
            out.extend(lane.queue.drain(..));
            lane.busy
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_lane_in_order_lanes_in_parallel() {
        let mut l = Lanes::default();
        let a = LaneKey::Key(Bytes::from_static(b"a"));
        let b = LaneKey::Key(Bytes::from_static(b"b"));
        l.push(a.clone(), 1);
        l.push(a.clone(), 2);
        l.push(b.clone(), 3);
        assert_eq!(l.start(), Some((a.clone(), 1)));
        assert_eq!(l.start(), Some((b.clone(), 3)));
        assert_eq!(l.start(), None, "a is busy");
        l.finish(&a);
        assert_eq!(l.start(), Some((a.clone(), 2)));
        l.finish(&a);
        l.finish(&b);
        assert_eq!(l.queued, 0);
        assert!(l.lanes.is_empty());
    }
}
