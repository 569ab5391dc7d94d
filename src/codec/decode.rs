//! Record batches (magic 2) read in one pass. Every length and count is
//! checked against the bytes present before it is used, so hostile sizes
//! cannot make us allocate; keys, values and header values are slices of the
//! (decompressed) batch, so nothing is copied per record.

use bytes::Bytes;

use super::compression::{self, Compression};
use super::records::{InBatch, InRecord};
use super::CodecError;

/// Bytes of a v2 batch header, from the base offset to the record count.
pub(super) const HEADER: usize = 61;
const CRC_START: usize = 21;

type R<T> = Result<T, String>;

/// A batch whose header, CRC and compression were checked and whose records
/// were decompressed, but not yet decoded: a fetch holds these until `poll`
/// reaches them, so a record is built once, into the caller's hands, instead
/// of being decoded into a large buffer and moved out of it later.
#[derive(Debug, Clone)]
pub struct LazyBatch {
    pub compression: Compression,
    pub base_offset: i64,
    /// Offset of the batch's last record (from the header: compaction may
    /// have removed the records themselves).
    pub last_offset: i64,
    /// Whether this batch holds transaction markers.
    pub control: bool,
    pub producer_id: i64,
    /// Records the header announces (checked against the bytes present).
    pub count: usize,
    data: Bytes,
    ctx: Ctx,
}

impl LazyBatch {
    /// Decodes the records; an error names the batch's offset and the record.
    pub fn records(&self) -> Result<Vec<InRecord>, CodecError> {
        let count = self.count;
        let mut records = Vec::with_capacity(count);
        let mut at = 0usize;
        let failed =
            |e: String| CodecError::Records(format!("batch at offset {}: {e}", self.base_offset));
        for i in 0..count {
            let r = self
                .ctx
                .record(&self.data, &mut at)
                .map_err(|e| failed(format!("record {i} of {count}: {e}")))?;
            records.push(r);
        }
        if at != self.data.len() {
            return Err(failed(format!(
                "{} bytes left after the batch's {count} records",
                self.data.len() - at
            )));
        }
        Ok(records)
    }

    /// Decodes it whole.
    pub fn decode(self) -> Result<InBatch, CodecError> {
        Ok(InBatch {
            records: self.records()?,
            compression: self.compression,
            last_offset: self.last_offset,
            control: self.control,
            producer_id: self.producer_id,
        })
    }
}

/// Decodes one complete batch (`batch` is exactly base offset .. end).
/// Returns the batch and the size of its records once decompressed.
#[cfg(test)]
pub(super) fn batch(batch: Bytes, max_decompressed: usize) -> R<(InBatch, usize)> {
    let (lazy, size) = open(batch, max_decompressed)?;
    Ok((lazy.decode().map_err(|e| e.to_string())?, size))
}

/// Checks one complete batch (`batch` is exactly base offset .. end) and
/// decompresses its records. Returns it and the records' decompressed size.
pub(super) fn open(batch: Bytes, max_decompressed: usize) -> R<(LazyBatch, usize)> {
    if batch.len() < HEADER {
        return Err(format!(
            "batch of {} bytes is shorter than its header",
            batch.len()
        ));
    }
    let b = &batch[..];
    let magic = b[16] as i8;
    if magic != 2 {
        return Err(format!(
            "record batch magic {magic} is not supported (only 2)"
        ));
    }
    let crc = u32::from_be_bytes(arr(b, 17));
    let actual = crc32c::crc32c(&b[CRC_START..]);
    if crc != actual {
        return Err(format!(
            "CRC mismatch (batch says {crc:#010x}, bytes give {actual:#010x})"
        ));
    }
    let base_offset = i64::from_be_bytes(arr(b, 0));
    let attributes = i16::from_be_bytes(arr(b, 21));
    let last_delta = i32::from_be_bytes(arr(b, 23));
    let base_timestamp = i64::from_be_bytes(arr(b, 27));
    let max_timestamp = i64::from_be_bytes(arr(b, 35));
    let producer_id = i64::from_be_bytes(arr(b, 43));
    let base_sequence = i32::from_be_bytes(arr(b, 53));
    let count = i32::from_be_bytes(arr(b, 57));
    let count = usize::try_from(count).map_err(|_| format!("negative record count {count}"))?;
    let codec = match attributes & 0x7 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        other => return Err(format!("unknown compression codec {other}")),
    };
    let log_append_time = attributes & 0x8 != 0;
    let transactional = attributes & 0x10 != 0;
    let control = attributes & 0x20 != 0;
    let data = match codec {
        Compression::None => batch.slice(HEADER..),
        c => Bytes::from(
            compression::decompress(c, &batch[HEADER..], max_decompressed)
                .map_err(|e| e.to_string())?,
        ),
    };
    let size = data.len();
    // Each record takes at least 7 bytes: a count past that is a lie.
    if count > data.len() / 7 + 1 {
        return Err(format!(
            "record count {count} exceeds what {} bytes can hold",
            data.len()
        ));
    }
    let ctx = Ctx {
        base_offset,
        // Java reports a log-append batch's time for each of its records.
        timestamp: if log_append_time {
            Some(max_timestamp)
        } else {
            None
        },
        base_timestamp,
        base_sequence,
        producer_id,
        transactional,
        control,
        log_append_time,
    };
    Ok((
        LazyBatch {
            compression: codec,
            base_offset,
            last_offset: base_offset.saturating_add(i64::from(last_delta)),
            control,
            producer_id,
            count,
            data,
            ctx,
        },
        size,
    ))
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

#[derive(Debug, Clone)]
struct Ctx {
    base_offset: i64,
    timestamp: Option<i64>,
    base_timestamp: i64,
    base_sequence: i32,
    producer_id: i64,
    transactional: bool,
    control: bool,
    log_append_time: bool,
}

impl Ctx {
    fn record(&self, data: &Bytes, at: &mut usize) -> R<InRecord> {
        let d = &data[..];
        let len = usize::try_from(varint(d, at)?).map_err(|_| "negative record length")?;
        let end = at
            .checked_add(len)
            .filter(|e| *e <= d.len())
            .ok_or_else(|| format!("record of {len} bytes overruns the {} left", d.len() - *at))?;
        let body = &d[..end];
        *at += 1; // attributes (unused in v2)
        let ts_delta = varlong(body, at)?;
        let offset_delta = varint(body, at)?;
        let key = Self::field(data, body, at, "key")?;
        let value = Self::field(data, body, at, "value")?;
        let n = usize::try_from(varint(body, at)?).map_err(|_| "negative header count")?;
        // Each header takes at least 2 bytes.
        if n > (end - *at) / 2 {
            return Err(format!(
                "header count {n} exceeds the {} bytes left",
                end - *at
            ));
        }
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            let k = Self::field(data, body, at, "header key")?.ok_or("null header key")?;
            let v = Self::field(data, body, at, "header value")?;
            headers.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        if *at != end {
            return Err(format!("{} bytes left inside the record", end - *at));
        }
        Ok(InRecord {
            offset: self
                .base_offset
                .checked_add(i64::from(offset_delta))
                .ok_or("offset delta overflows")?,
            timestamp: match self.timestamp {
                Some(t) => t,
                None => self
                    .base_timestamp
                    .checked_add(ts_delta)
                    .ok_or("timestamp delta overflows")?,
            },
            log_append_time: self.log_append_time,
            key,
            value,
            headers,
            producer_id: self.producer_id,
            sequence: if self.base_sequence < 0 {
                -1
            } else {
                self.base_sequence.wrapping_add(offset_delta)
            },
            transactional: self.transactional,
            control: self.control,
        })
    }

    /// A length-prefixed field (-1: null) as a slice of the batch.
    fn field(data: &Bytes, body: &[u8], at: &mut usize, what: &str) -> R<Option<Bytes>> {
        let len = varint(body, at)?;
        if len < -1 {
            return Err(format!("{what} length {len}"));
        }
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let start = *at;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| {
                format!(
                    "{what} of {len} bytes overruns the {} left",
                    body.len() - start
                )
            })?;
        *at = end;
        Ok(Some(data.slice(start..end)))
    }
}

/// Zigzag varint of at most 5 bytes.
fn varint(d: &[u8], at: &mut usize) -> R<i32> {
    let z = uvarint(d, at, 5)?;
    let z = u32::try_from(z).map_err(|_| "varint overflows 32 bits")?;
    Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
}

/// Zigzag varlong of at most 10 bytes.
fn varlong(d: &[u8], at: &mut usize) -> R<i64> {
    let z = uvarint(d, at, 10)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn uvarint(d: &[u8], at: &mut usize, max: usize) -> R<u64> {
    let mut v = 0u64;
    for i in 0..max {
        let b = *d.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(format!("varint longer than {max} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::records::{encode_batch, OutRecord, ProducerStamp};

    fn one(value: &[u8], headers: Vec<(String, Option<Bytes>)>) -> Vec<u8> {
        let r = OutRecord {
            timestamp: 1_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::copy_from_slice(value)),
            headers,
        };
        encode_batch(&[r], ProducerStamp::NONE, Compression::None)
            .unwrap()
            .to_vec()
    }

    /// Rewrites the CRC after an edit, so the edit itself is what gets judged.
    fn recrc(b: &mut [u8]) {
        let c = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn hostile_counts_are_refused_without_allocating() {
        let mut b = one(b"v", vec![]);
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        recrc(&mut b);
        let e = batch(Bytes::from(b), 1 << 20).unwrap_err();
        assert!(e.contains("record count"), "{e}");

        // One record whose header count is 2^30.
        let mut b = one(b"v", vec![("h".into(), None)]);
        let n = b.len();
        // The record's last bytes: header count 1 (2), key len 1 (2), b'h', null (1).
        assert_eq!(&b[n - 4..], &[2, 2, b'h', 1]);
        b.truncate(n - 4);
        b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]);
        let rec_len_at = HEADER;
        b[rec_len_at] += 2; // the record grew by one byte (zigzag: +2)
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        recrc(&mut b);
        let e = batch(Bytes::from(b), 1 << 20).unwrap_err();
        assert!(e.contains("header count"), "{e}");
    }

    #[test]
    fn bad_bytes_are_errors_naming_the_part() {
        let good = one(b"value", vec![]);
        let mut flipped = good.clone();
        flipped[HEADER + 5] ^= 1;
        assert!(batch(Bytes::from(flipped), 1 << 20)
            .unwrap_err()
            .contains("CRC"));
        let mut magic = good.clone();
        magic[16] = 1;
        assert!(batch(Bytes::from(magic), 1 << 20)
            .unwrap_err()
            .contains("magic"));
        let mut long = good.clone();
        long[HEADER] = 0x7e; // record length 63, far past the batch
        recrc(&mut long);
        assert!(batch(Bytes::from(long), 1 << 20)
            .unwrap_err()
            .contains("overruns"));
        assert!(batch(Bytes::from(good[..40].to_vec()), 1 << 20).is_err());
    }

    #[test]
    fn log_append_time_is_the_batch_max_timestamp() {
        let mut b = one(b"v", vec![]);
        b[22] |= 0x8;
        b[35..43].copy_from_slice(&5_000i64.to_be_bytes());
        recrc(&mut b);
        let (got, _) = batch(Bytes::from(b), 1 << 20).unwrap();
        assert!(got.records[0].log_append_time);
        assert_eq!(got.records[0].timestamp, 5_000);
    }
}
