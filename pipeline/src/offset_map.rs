//! The offset map: offsets completed above the committed one, stored in the
//! commit's metadata string so a restart does not redo them.
//!
//! Text form: `ki1:` then URL-safe base64 (no padding) of
//! `kind, payload, crc32` where the CRC covers the committed offset
//! (8 bytes, big-endian), the kind and the payload, so a map is only valid
//! beside the offset it was written with.
//!
//! - kind `R`: LEB128 run lengths, alternately incomplete and complete,
//!   starting at the committed offset (which is always incomplete) and
//!   ending with a complete run;
//! - kind `B`: LEB128 span, then a bitset over `committed .. committed+span`
//!   (bit set = complete, least significant bit first); bit 0 is clear and
//!   the last bit is set.
//!
//! The encoder writes whichever is shorter. An empty map is the empty string.

use std::ops::Range;

use base64::Engine as _;

/// Marks our metadata; anything else in the commit metadata is foreign.
pub const PREFIX: &str = "ki1:";

const RUNS: u8 = b'R';
const BITS: u8 = b'B';

/// Completed offsets above a committed offset, as sorted disjoint ranges
/// separated by at least one incomplete offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetMap {
    complete: Vec<Range<i64>>,
}

/// Why commit metadata is not a valid offset map for its committed offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// Metadata written by something else (another client, Kafka Streams...).
    #[error("the commit metadata is not a kafka-ingest offset map (it starts with {found:?}, not {PREFIX:?})")]
    Foreign {
        /// The first characters found.
        found: String,
    },
    /// Not valid base64 after the prefix.
    #[error("the offset map is not valid base64: {0}")]
    Base64(String),
    /// The checksum does not match the bytes and the committed offset.
    #[error("the offset map's checksum does not match (corrupted, forged, or written for another committed offset)")]
    Checksum,
    /// The bytes pass the checksum but break the format.
    #[error("malformed offset map: {0}")]
    Malformed(&'static str),
    /// Claims completed offsets at or past the partition's log end.
    #[error("the offset map claims offsets up to {claimed} but the log ends at {log_end}")]
    PastLogEnd {
        /// One past the highest offset the map claims complete.
        claimed: i64,
        /// The partition's log-end offset.
        log_end: i64,
    },
}

impl OffsetMap {
    /// A map from complete ranges; they must lie above `committed`, be
    /// sorted, non-empty and separated by gaps (else `None`).
    pub fn from_ranges(committed: i64, complete: Vec<Range<i64>>) -> Option<OffsetMap> {
        let mut floor = committed; // the next range must start after this
        for r in &complete {
            if r.start <= floor || r.end <= r.start {
                return None;
            }
            floor = r.end;
        }
        Some(OffsetMap { complete })
    }

    /// The complete ranges, ascending.
    pub fn ranges(&self) -> &[Range<i64>] {
        &self.complete
    }

    /// Whether no offset above the committed one is complete.
    pub fn is_empty(&self) -> bool {
        self.complete.is_empty()
    }

    /// Whether `offset` is marked complete.
    pub fn contains(&self, offset: i64) -> bool {
        let i = self.complete.partition_point(|r| r.end <= offset);
        self.complete.get(i).is_some_and(|r| r.start <= offset)
    }

    /// One past the highest complete offset (or `committed` when empty).
    pub fn end(&self, committed: i64) -> i64 {
        self.complete.last().map_or(committed, |r| r.end)
    }

    /// The metadata string for a commit at `committed`.
    pub fn encode(&self, committed: i64) -> String {
        if self.complete.is_empty() {
            return String::new();
        }
        let runs = self.runs_payload(committed);
        let bits = self.bits_payload(committed);
        let (kind, payload) = match bits {
            Some(b) if b.len() < runs.len() => (BITS, b),
            _ => (RUNS, runs),
        };
        let mut raw = Vec::with_capacity(payload.len() + 5);
        raw.push(kind);
        raw.extend_from_slice(&payload);
        let crc = checksum(committed, &raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        let mut s = String::with_capacity(PREFIX.len() + raw.len() * 4 / 3 + 3);
        s.push_str(PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&raw, &mut s);
        s
    }

    /// Length in bytes of [`encode`](Self::encode) without building it.
    pub fn encoded_len(&self, committed: i64) -> usize {
        if self.complete.is_empty() {
            return 0;
        }
        let runs: usize = self.run_lengths(committed).map(varint_len).sum();
        let span = self.end(committed) - committed;
        let bits = usize::try_from(span)
            .ok()
            .map(|s| varint_len(s as u64) + s.div_ceil(8));
        let payload = bits.map_or(runs, |b| b.min(runs));
        PREFIX.len() + (1 + payload + 4).div_ceil(3) * 4 - pad(1 + payload + 4)
    }

    /// Parses metadata committed at `committed`. With `log_end`, a map that
    /// claims offsets at or past it is rejected.
    pub fn decode(
        metadata: &str,
        committed: i64,
        log_end: Option<i64>,
    ) -> Result<OffsetMap, MapError> {
        if metadata.is_empty() {
            return Ok(OffsetMap::default());
        }
        let Some(body) = metadata.strip_prefix(PREFIX) else {
            return Err(MapError::Foreign {
                found: metadata.chars().take(8).collect(),
            });
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| MapError::Base64(e.to_string()))?;
        if raw.len() < 6 {
            return Err(MapError::Malformed(
                "shorter than kind, payload and checksum",
            ));
        }
        let (data, crc) = raw.split_at(raw.len() - 4);
        if checksum(committed, data).to_le_bytes() != crc {
            return Err(MapError::Checksum);
        }
        let (kind, payload) = (data[0], &data[1..]);
        let map = match kind {
            RUNS => decode_runs(payload, committed)?,
            BITS => decode_bits(payload, committed)?,
            _ => return Err(MapError::Malformed("unknown kind")),
        };
        if let Some(log_end) = log_end {
            let claimed = map.end(committed);
            if claimed > log_end {
                return Err(MapError::PastLogEnd { claimed, log_end });
            }
        }
        Ok(map)
    }

    /// Alternating run lengths from `committed`: incomplete, complete, ...
    fn run_lengths(&self, committed: i64) -> impl Iterator<Item = u64> + '_ {
        let mut at = committed;
        self.complete.iter().flat_map(move |r| {
            let gap = (r.start - at) as u64;
            at = r.end;
            [gap, (r.end - r.start) as u64]
        })
    }

    fn runs_payload(&self, committed: i64) -> Vec<u8> {
        let mut out = Vec::new();
        for n in self.run_lengths(committed) {
            put_varint(&mut out, n);
        }
        out
    }

    /// `None` when the span is too long to be worth a bitset at all.
    fn bits_payload(&self, committed: i64) -> Option<Vec<u8>> {
        let span = usize::try_from(self.end(committed) - committed).ok()?;
        // A bitset beats runs only when runs are short; skip hopeless sizes.
        if span / 8 > self.complete.len().saturating_mul(20) {
            return None;
        }
        let mut out = Vec::with_capacity(10 + span.div_ceil(8));
        put_varint(&mut out, span as u64);
        let start = out.len();
        out.resize(start + span.div_ceil(8), 0);
        for r in &self.complete {
            for o in r.clone() {
                let i = (o - committed) as usize;
                out[start + i / 8] |= 1 << (i % 8);
            }
        }
        Some(out)
    }
}

fn pad(n: usize) -> usize {
    match n % 3 {
        0 => 0,
        1 => 2,
        _ => 1,
    }
}

fn checksum(committed: i64, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&committed.to_be_bytes());
    h.update(data);
    h.finalize()
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, MapError> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf
            .split_first()
            .ok_or(MapError::Malformed("truncated varint"))?;
        *buf = rest;
        if i == 9 && b > 1 {
            return Err(MapError::Malformed("varint overflows 64 bits"));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i > 0 && b == 0 {
                return Err(MapError::Malformed("non-minimal varint"));
            }
            return Ok(v);
        }
    }
    Err(MapError::Malformed("varint longer than 10 bytes"))
}

fn advance(at: i64, n: u64) -> Result<i64, MapError> {
    i64::try_from(n)
        .ok()
        .and_then(|n| at.checked_add(n))
        .ok_or(MapError::Malformed("offsets overflow"))
}

fn decode_runs(mut buf: &[u8], committed: i64) -> Result<OffsetMap, MapError> {
    let mut complete = Vec::new();
    let mut at = committed;
    while !buf.is_empty() {
        let gap = get_varint(&mut buf)?;
        let len = get_varint(&mut buf)?;
        if gap == 0 || len == 0 {
            return Err(MapError::Malformed("empty run"));
        }
        let start = advance(at, gap)?;
        let end = advance(start, len)?;
        complete.push(start..end);
        at = end;
        // Each run costs at least one input byte, so `complete` stays
        // proportional to the input.
    }
    if complete.is_empty() {
        return Err(MapError::Malformed("no runs"));
    }
    Ok(OffsetMap { complete })
}

fn decode_bits(mut buf: &[u8], committed: i64) -> Result<OffsetMap, MapError> {
    let span = get_varint(&mut buf)?;
    let span = usize::try_from(span).map_err(|_| MapError::Malformed("span too long"))?;
    if span == 0 || buf.len() != span.div_ceil(8) {
        return Err(MapError::Malformed("bitset length does not match its span"));
    }
    advance(committed, span as u64)?;
    let bit = |i: usize| buf[i / 8] & (1 << (i % 8)) != 0;
    if bit(0) || !bit(span - 1) {
        return Err(MapError::Malformed(
            "bitset must start incomplete and end complete",
        ));
    }
    if span % 8 != 0 && buf[buf.len() - 1] >> (span % 8) != 0 {
        return Err(MapError::Malformed("bits set past the span"));
    }
    let mut complete: Vec<Range<i64>> = Vec::new();
    let mut i = 0;
    while i < span {
        if !bit(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < span && bit(i) {
            i += 1;
        }
        complete.push(committed + start as i64..committed + i as i64);
    }
    Ok(OffsetMap { complete })
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_then_a_million_successes_is_tiny() {
        let m = OffsetMap::from_ranges(41, vec![42..1_000_042]).unwrap();
        let s = m.encode(41);
        assert!(s.len() <= 32, "{s} is {} bytes", s.len());
        assert_eq!(m.encoded_len(41), s.len());
        assert_eq!(OffsetMap::decode(&s, 41, Some(1_000_042)).unwrap(), m);
    }

    #[test]
    fn bitset_wins_for_alternating_patterns() {
        let ranges: Vec<_> = (0..200).map(|i| 1 + 2 * i..2 + 2 * i).collect();
        let m = OffsetMap::from_ranges(0, ranges).unwrap();
        let s = m.encode(0);
        assert_eq!(m.encoded_len(0), s.len());
        assert!(s.len() < 100, "{} bytes", s.len());
        assert_eq!(OffsetMap::decode(&s, 0, None).unwrap(), m);
    }

    #[test]
    fn rejects_foreign_forged_and_past_the_end() {
        let m = OffsetMap::from_ranges(10, vec![12..20]).unwrap();
        let s = m.encode(10);
        assert!(matches!(
            OffsetMap::decode("PC:whatever", 10, None),
            Err(MapError::Foreign { .. })
        ));
        assert_eq!(OffsetMap::decode(&s, 11, None), Err(MapError::Checksum));
        assert_eq!(
            OffsetMap::decode(&s, 10, Some(15)),
            Err(MapError::PastLogEnd {
                claimed: 20,
                log_end: 15
            })
        );
        let e = OffsetMap::decode("ki1:!!", 0, None).unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
    }

    #[test]
    fn from_ranges_requires_canonical_ranges() {
        assert!(
            OffsetMap::from_ranges(5, vec![5..7]).is_none(),
            "at committed"
        );
        assert!(
            OffsetMap::from_ranges(5, vec![6..7, 7..9]).is_none(),
            "adjacent"
        );
        assert!(OffsetMap::from_ranges(5, vec![6..6]).is_none(), "empty");
        assert!(OffsetMap::from_ranges(5, vec![6..7, 8..9]).is_some());
    }
}
