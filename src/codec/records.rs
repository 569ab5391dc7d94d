//! Record batch v2 types and whole-response decoding (one batch at a time in
//! `codec::decode`); encoding is `codec::batch`.

use bytes::Bytes;

use super::batch::BatchBody;
use super::compression::Compression;
use super::decode;
pub use super::decode::LazyBatch;
use super::CodecError;

/// One record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    /// Create time, ms since the epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Producer identity stamped on a batch; `NONE` when not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl ProducerStamp {
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        epoch: -1,
        base_sequence: -1,
    };
}

/// A record read from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub producer_id: i64,
    pub sequence: i32,
    pub transactional: bool,
    pub control: bool,
}

/// One decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InBatch {
    pub compression: Compression,
    /// Offset of the batch's last record (from the header: compaction may
    /// have removed the records themselves).
    pub last_offset: i64,
    /// Whether this batch holds transaction markers.
    pub control: bool,
    pub producer_id: i64,
    pub records: Vec<InRecord>,
}

/// Encodes `records` as one record batch (magic 2, CRC32C).
#[cfg_attr(not(any(test, feature = "unstable-internals")), allow(dead_code))] // protocol-tests and benches use it
pub fn encode_batch(
    records: &[OutRecord],
    stamp: ProducerStamp,
    codec: Compression,
) -> Result<Bytes, CodecError> {
    // Timestamps are written as deltas from one base: they must fit an i64.
    let (lo, hi) = records.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.timestamp), hi.max(r.timestamp))
    });
    if !records.is_empty() && hi.checked_sub(lo).is_none() {
        return Err(CodecError::Records(format!(
            "timestamps {lo} and {hi} are too far apart for one batch"
        )));
    }
    let mut body = BatchBody::with_capacity(records.len() * 16);
    for r in records {
        body.push(r);
    }
    body.encode(stamp, codec)
}

/// Decodes every complete batch in `data` (a Fetch response's record set).
/// A trailing partial batch, which brokers send when a fetch hits its byte
/// limit, is left out. Each batch may expand to at most `max_decompressed` bytes.
#[cfg_attr(not(any(test, feature = "unstable-internals")), allow(dead_code))] // protocol-tests and fuzz use it
pub fn decode_batches(data: Bytes, max_decompressed: usize) -> Result<Vec<InBatch>, CodecError> {
    decode_batches_within(data, max_decompressed, usize::MAX)
}

/// Like [`decode_batches`], also stopping (with the batches decoded so far)
/// once the decompressed total passes `budget`: many small bombs in one
/// response cannot add up without bound. The first batch is always decoded,
/// so a reader still makes progress.
pub fn decode_batches_within(
    data: Bytes,
    max_decompressed: usize,
    budget: usize,
) -> Result<Vec<InBatch>, CodecError> {
    open_batches_within(data, max_decompressed, budget)?
        .into_iter()
        .map(LazyBatch::decode)
        .collect()
}

/// Like [`decode_batches_within`], with each batch checked and decompressed
/// but its records left to decode when they are read ([`LazyBatch::records`]).
pub fn open_batches_within(
    data: Bytes,
    max_decompressed: usize,
    budget: usize,
) -> Result<Vec<LazyBatch>, CodecError> {
    let mut buf = data;
    let mut out = Vec::new();
    let mut used = 0usize;
    while buf.len() >= decode::HEADER {
        // baseOffset (8) then batchLength (4) counting the bytes after it.
        let len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let len = usize::try_from(len)
            .map_err(|_| CodecError::Records(format!("negative batch length {len}")))?;
        if len < decode::HEADER - 12 {
            return Err(CodecError::Records(format!(
                "batch length {len} is shorter than a batch header"
            )));
        }
        if buf.len() - 12 < len {
            break;
        }
        if !out.is_empty() && used >= budget {
            break;
        }
        let one = buf.split_to(12 + len);
        let base = i64::from_be_bytes(one[..8].try_into().unwrap_or_default());
        let (batch, size) = decode::open(one, max_decompressed)
            .map_err(|e| CodecError::Records(format!("batch at offset {base}: {e}")))?;
        used = used.saturating_add(size);
        out.push(batch);
    }
    Ok(out)
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn total_budget_stops_after_the_batch_that_spends_it() {
        let rec = OutRecord {
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(vec![0u8; 10_000])),
            headers: vec![],
        };
        let one = encode_batch(
            std::slice::from_ref(&rec),
            ProducerStamp::NONE,
            Compression::Gzip,
        )
        .unwrap();
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend_from_slice(&one);
        }
        let many = Bytes::from(many);
        assert_eq!(decode_batches(many.clone(), 1 << 20).unwrap().len(), 10);
        // Each batch expands to ~10 KB: a 25 KB budget admits three.
        assert_eq!(
            decode_batches_within(many.clone(), 1 << 20, 25_000)
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            decode_batches_within(many, 1 << 20, 1).unwrap().len(),
            1,
            "always progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: i64) -> OutRecord {
        OutRecord {
            timestamp: 1_700_000_000_000 + i,
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; i as usize * 10])),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"x"))),
                ("n".into(), None),
            ],
        }
    }

    #[test]
    fn round_trip_every_codec() {
        let records: Vec<_> = (0..50).map(rec).collect();
        let stamp = ProducerStamp {
            producer_id: 7,
            epoch: 1,
            base_sequence: 100,
        };
        for c in Compression::ALL {
            let b = encode_batch(&records, stamp, c).unwrap();
            let batches = decode_batches(b, 1 << 20).unwrap();
            assert_eq!(batches.len(), 1, "{c}: one batch");
            let got = &batches[0].records;
            assert_eq!(got.len(), 50);
            for (i, (g, w)) in got.iter().zip(&records).enumerate() {
                assert_eq!(g.offset, i as i64);
                assert_eq!(g.sequence, 100 + i as i32);
                assert_eq!(
                    (&g.key, &g.value, &g.headers, g.timestamp),
                    (&w.key, &w.value, &w.headers, w.timestamp)
                );
            }
            assert_eq!(batches[0].compression, c);
        }
    }

    #[test]
    fn repeated_header_keys_survive() {
        let mut r = rec(2);
        r.headers = vec![
            ("k".into(), Some(Bytes::from_static(b"1"))),
            ("k".into(), Some(Bytes::from_static(b"2"))),
            ("k".into(), None),
        ];
        for c in Compression::ALL {
            let b = encode_batch(std::slice::from_ref(&r), ProducerStamp::NONE, c).unwrap();
            let got = decode_batches(b, 1 << 20).unwrap();
            assert_eq!(got[0].records[0].headers, r.headers, "{c}");
        }
    }

    #[test]
    fn non_idempotent_batch_stays_one_batch() {
        let records: Vec<_> = (0..10).map(rec).collect();
        let b = encode_batch(&records, ProducerStamp::NONE, Compression::None).unwrap();
        assert_eq!(decode_batches(b, 1 << 20).unwrap().len(), 1);
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let b = encode_batch(&[rec(3)], ProducerStamp::NONE, Compression::Lz4).unwrap();
        // A truncated tail is a partial batch: skipped, not an error.
        for cut in [1, 10, 30, b.len() - 1] {
            assert!(
                decode_batches(b.slice(..cut), 1 << 20).unwrap().is_empty(),
                "cut {cut}"
            );
        }
        let mut flipped = b.to_vec();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        assert!(
            decode_batches(Bytes::from(flipped), 1 << 20).is_err(),
            "bit flip caught (CRC or codec)"
        );
    }
}
