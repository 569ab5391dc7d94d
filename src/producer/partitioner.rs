//! Choosing a partition: explicit wins, keys hash with Kafka's murmur2,
//! null keys stick to one partition per `batch.size` bytes (KIP-480/794),
//! counted as the producer counts a batch.

use std::sync::Mutex;

use crate::types::FastMap;

/// Picks a partition for a record. `available` lists partitions that have a
/// leader right now (never empty when called with a non-empty topic).
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// Returns a partition in `0..partitions`. `size` is the record's size as
    /// the producer counts it against `batch.size`: key, value, headers and
    /// its per-record overhead.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        size: usize,
        partitions: i32,
        available: &[i32],
    ) -> i32;
}

/// Kafka's murmur2 (Java `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    ::murmur2::murmur2(data, ::murmur2::KAFKA_SEED) as i32
}

/// The Java default partitioner's choice for a key: `toPositive(murmur2(key)) % n`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Java's default: murmur2 for keys, uniform sticky for null keys.
#[derive(Debug)]
pub struct DefaultPartitioner {
    batch_size: usize,
    sticky: Mutex<FastMap<String, (i32, usize)>>,
}

impl DefaultPartitioner {
    /// Switches the sticky partition when the next record would take it past
    /// `batch_size` bytes: the point where the producer's batch is full, so a
    /// visit leaves no partly filled batch behind to wait out `linger.ms`.
    pub fn new(batch_size: usize) -> Self {
        DefaultPartitioner {
            batch_size: batch_size.max(1),
            sticky: Mutex::new(FastMap::default()),
        }
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        size: usize,
        partitions: i32,
        available: &[i32],
    ) -> i32 {
        if let Some(k) = key {
            return partition_for_key(k, partitions);
        }
        let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sticky.entry_ref(topic).or_insert((-1, 0));
        let full = entry.1 > 0 && entry.1 + size > self.batch_size;
        if entry.0 < 0 || entry.0 >= partitions || full {
            let pool: Vec<i32> = if available.is_empty() {
                (0..partitions).collect()
            } else {
                available.to_vec()
            };
            // Move off the current partition when there is a choice.
            let choices: Vec<i32> = pool
                .iter()
                .copied()
                .filter(|p| *p != entry.0 || pool.len() == 1)
                .collect();
            *entry = (choices[fastrand::usize(..choices.len())], 0);
        }
        entry.1 += size;
        entry.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (k, want) in cases {
            assert_eq!(murmur2(k), want, "{}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn sticky_switches_after_batch_size() {
        let p = DefaultPartitioner::new(100);
        let all = [0, 1, 2, 3];
        let first = p.partition("t", None, 30, 4, &all);
        for _ in 0..2 {
            let same = p.partition("t", None, 30, 4, &all);
            assert_eq!(same, first, "sticks while the batch has room");
        }
        // 90 bytes so far: the next 30 would not fit in a 100-byte batch.
        let next = p.partition("t", None, 30, 4, &all);
        assert_ne!(next, first, "moves on when the batch is full");
        // A record larger than batch.size still goes somewhere, alone.
        let big = p.partition("t", None, 500, 4, &all);
        assert_ne!(big, next);
        assert_ne!(p.partition("t", None, 1, 4, &all), big);
        assert_eq!(
            p.partition("t", Some(b"abc"), 1, 4, &all),
            partition_for_key(b"abc", 4)
        );
    }

    #[test]
    fn sticky_avoids_leaderless_partitions() {
        let p = DefaultPartitioner::new(1);
        for _ in 0..50 {
            assert_eq!(p.partition("t", None, 5, 4, &[2]), 2);
        }
    }
}
