//! Why a partition is paused. A partition is fetched again only when its
//! set of reasons is empty.

use std::fmt;

/// One reason to pause a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its buffered records passed the high watermark (until the low one).
    Buffer,
    /// The next record is not due yet (retry tier or in-place backoff).
    RetryDelay,
    /// A rate limit has no tokens left.
    RateLimit,
    /// The DLQ breaker tripped; until [`reset_breaker`](crate::PipelineHandle::reset_breaker).
    Breaker,
    /// Paused by the application.
    Manual,
    /// The offset map would outgrow `offset.metadata.max.bytes`.
    OffsetMap,
}

impl Reason {
    /// Every reason, in order.
    pub const ALL: [Reason; 6] = [
        Reason::Buffer,
        Reason::RetryDelay,
        Reason::RateLimit,
        Reason::Breaker,
        Reason::Manual,
        Reason::OffsetMap,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether this reason also stops handing out records already
    /// buffered (the buffer reason only stops fetching).
    pub fn holds_buffered(self) -> bool {
        !matches!(self, Reason::Buffer | Reason::RetryDelay)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Buffer => "buffer",
            Reason::RetryDelay => "retry-delay",
            Reason::RateLimit => "rate-limit",
            Reason::Breaker => "breaker",
            Reason::Manual => "manual",
            Reason::OffsetMap => "offset-map",
        })
    }
}

/// A set of [`Reason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reasons(u8);

impl Reasons {
    /// Adds a reason; true if it was not there.
    pub fn insert(&mut self, r: Reason) -> bool {
        let new = self.0 & r.bit() == 0;
        self.0 |= r.bit();
        new
    }

    /// Removes a reason; true if it was there.
    pub fn remove(&mut self, r: Reason) -> bool {
        let had = self.contains(r);
        self.0 &= !r.bit();
        had
    }

    /// Sets or clears a reason.
    pub fn set(&mut self, r: Reason, on: bool) {
        if on {
            self.insert(r);
        } else {
            self.remove(r);
        }
    }

    /// Whether the reason is in the set.
    pub fn contains(self, r: Reason) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether nothing holds the partition.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub fn union(self, other: Reasons) -> Reasons {
        Reasons(self.0 | other.0)
    }

    /// Whether buffered records may be handed out.
    pub fn blocks_dispatch(self) -> bool {
        self.iter().any(Reason::holds_buffered)
    }

    /// The reasons in the set.
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_only_when_every_reason_is_gone() {
        let mut r = Reasons::default();
        assert!(r.insert(Reason::Buffer));
        assert!(!r.insert(Reason::Buffer));
        r.insert(Reason::Manual);
        assert!(r.blocks_dispatch());
        r.remove(Reason::Buffer);
        assert!(!r.is_empty());
        r.remove(Reason::Manual);
        assert!(r.is_empty());
        assert_eq!(
            Reason::ALL.len(),
            Reason::ALL
                .iter()
                .map(|r| r.bit())
                .fold(0, |a, b| a | b)
                .count_ones() as usize
        );
    }
}
