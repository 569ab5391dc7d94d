//! An open record batch whose record bodies are encoded as records are
//! appended, so sending writes only the 61-byte header (and compresses):
//! no second pass over the records at drain time.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{self, Compression};
use super::records::{OutRecord, ProducerStamp};
use super::CodecError;

/// Bytes of a v2 batch header, up to and including the record count.
const HEADER: usize = 61;
/// Offset of the attributes field, where the CRC's coverage starts.
const CRC_START: usize = 21;

/// Record bodies in the v2 format (KIP-98), offsets counted from 0 and
/// timestamps from the first record's.
///
/// Bodies are kept in chunks of at most `chunk` bytes (a larger record gets
/// a chunk of its own), so a batch that grows large holds about what it
/// uses: no doubling `Vec` with up to half its capacity idle, and no copy
/// of everything so far on each growth.
#[derive(Debug, Default)]
pub struct BatchBody {
    /// Chunks already full, in order.
    full: Vec<Vec<u8>>,
    /// The chunk records are appended to.
    buf: Vec<u8>,
    /// Bytes in `full`.
    full_bytes: usize,
    /// Largest chunk (0: one chunk, grown as needed).
    chunk: usize,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Create timestamps as runs of (timestamp, records): a fast producer
    /// stamps hundreds of records per millisecond, and completing a batch
    /// reads them back without walking the bodies.
    stamps: Vec<(i64, u32)>,
    /// Key and value bytes (what the metrics call bytes sent).
    payload: u64,
    /// The batch as first sent, compressed: the bodies are dropped then
    /// (`full_bytes` keeps their size), and a resend reuses it.
    packed: Option<Packed>,
}

#[derive(Debug)]
struct Packed {
    stamp: ProducerStamp,
    codec: Compression,
    wire: Bytes,
}

impl BatchBody {
    /// Bytes of the batch header in front of the bodies.
    pub const HEADER_BYTES: usize = HEADER;

    /// An empty body with room for `capacity` bytes in one chunk.
    pub fn with_capacity(capacity: usize) -> Self {
        BatchBody {
            buf: Vec::with_capacity(capacity),
            ..Default::default()
        }
    }

    /// An empty body with room for `capacity` bytes now, growing in chunks
    /// of `chunk` bytes.
    pub fn chunked(capacity: usize, chunk: usize) -> Self {
        BatchBody {
            buf: Vec::with_capacity(capacity.min(chunk)),
            chunk,
            ..Default::default()
        }
    }

    /// Room for `need` more bytes: within the chunk (grown by doubling up
    /// to `chunk`), or a new chunk.
    fn make_room(&mut self, need: usize) {
        let used = self.buf.len();
        if used + need <= self.buf.capacity() {
            return;
        }
        if self.chunk == 0 {
            return self.buf.reserve(need);
        }
        if used > 0 && used + need > self.chunk {
            let next = Vec::with_capacity(self.chunk.max(need));
            self.full_bytes += used;
            self.full.push(std::mem::replace(&mut self.buf, next));
            return;
        }
        let grown = (self.buf.capacity() * 2).min(self.chunk).max(used + need);
        self.buf.reserve_exact(grown - used);
    }

    /// The chunks, in order.
    fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.full
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(self.buf.as_slice()))
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether a record created at `timestamp` can join: its delta from
    /// the first record's timestamp must fit an i64.
    pub fn accepts(&self, timestamp: i64) -> bool {
        self.count == 0 || timestamp.checked_sub(self.base_timestamp).is_some()
    }

    /// Appends one record (the caller checked [`accepts`](Self::accepts)).
    pub fn push(&mut self, r: &OutRecord) {
        // Only batches never sent take records; sent ones may be packed.
        debug_assert!(self.packed.is_none(), "a record pushed onto a packed batch");
        if self.count == 0 {
            self.base_timestamp = r.timestamp;
            self.max_timestamp = r.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(r.timestamp);
        match self.stamps.last_mut() {
            Some((ts, n)) if *ts == r.timestamp => *n += 1,
            _ => self.stamps.push((r.timestamp, 1)),
        }
        let delta = r.timestamp.wrapping_sub(self.base_timestamp);
        let field = |b: Option<&[u8]>| b.map_or(1, |b| varint_len(b.len() as i64) + b.len());
        let mut len = 1 // attributes
            + varint_len(delta)
            + varint_len(i64::from(self.count))
            + field(r.key.as_deref())
            + field(r.value.as_deref())
            + varint_len(r.headers.len() as i64);
        for (k, v) in &r.headers {
            len += field(Some(k.as_bytes())) + field(v.as_deref());
        }
        self.make_room(len + varint_len(len as i64));
        let out = &mut self.buf;
        put_varint(out, len as i64);
        out.push(0);
        put_varint(out, delta);
        put_varint(out, i64::from(self.count));
        put_field(out, r.key.as_deref());
        put_field(out, r.value.as_deref());
        put_varint(out, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_field(out, Some(k.as_bytes()));
            put_field(out, v.as_deref());
        }
        self.count += 1;
        self.payload += r.key.as_ref().map_or(0, |k| k.len()) as u64
            + r.value.as_ref().map_or(0, |v| v.len()) as u64;
    }

    /// Key and value bytes of the records.
    pub fn payload(&self) -> u64 {
        self.payload
    }

    /// Every record's create timestamp, in order.
    pub fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.stamps
            .iter()
            .flat_map(|&(ts, n)| std::iter::repeat_n(ts, n as usize))
    }

    /// Moves the timestamps of records `at..` into a new list.
    fn split_stamps(&mut self, at: usize) -> Vec<(i64, u32)> {
        let mut seen = 0;
        for i in 0..self.stamps.len() {
            let (ts, n) = self.stamps[i];
            let n = n as usize;
            if seen + n > at {
                let keep = at - seen;
                let mut rest = self.stamps.split_off(i + usize::from(keep > 0));
                if keep > 0 {
                    self.stamps[i].1 = keep as u32;
                    rest.insert(0, (ts, (n - keep) as u32));
                }
                return rest;
            }
            seen += n;
        }
        Vec::new()
    }

    /// Moves records `at..` into a new body (offsets renumbered from 0,
    /// same base timestamp). Bytes moved are the returned body's `bytes()`.
    pub fn split_off(&mut self, at: usize) -> Result<BatchBody, CodecError> {
        self.unpack()?;
        // Rare (MESSAGE_TOO_LARGE): work on one contiguous copy.
        if !self.full.is_empty() {
            let mut all = Vec::with_capacity(self.bytes());
            self.parts().for_each(|p| all.extend_from_slice(p));
            self.full.clear();
            self.full_bytes = 0;
            self.buf = all;
        }
        let mut second = BatchBody {
            base_timestamp: self.base_timestamp,
            max_timestamp: i64::MIN,
            chunk: self.chunk,
            stamps: self.split_stamps(at),
            ..Default::default()
        };
        let mut cut = self.buf.len();
        let mut first_max = i64::MIN;
        let mut pos = 0;
        for (i, r) in Scan(&self.buf).enumerate() {
            let ts = self.base_timestamp.wrapping_add(r.delta);
            if i < at {
                first_max = first_max.max(ts);
                pos += r.len;
                continue;
            }
            if i == at {
                cut = pos;
            }
            let offset = i64::from(second.count);
            let len = 1 + varint_len(r.delta) + varint_len(offset) + r.rest.len();
            put_varint(&mut second.buf, len as i64);
            second.buf.push(0);
            put_varint(&mut second.buf, r.delta);
            put_varint(&mut second.buf, offset);
            second.buf.extend_from_slice(r.rest);
            second.max_timestamp = second.max_timestamp.max(ts);
            second.count += 1;
            second.payload += payload_of(r.rest);
        }
        self.buf.truncate(cut);
        self.count -= second.count;
        self.payload -= second.payload;
        self.max_timestamp = first_max;
        Ok(second)
    }

    /// Heap bytes the body holds: its chunks' capacity, the timestamp runs
    /// and a packed batch.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.full.iter().map(Vec::capacity).sum::<usize>()
            + self.buf.capacity()
            + self.stamps.capacity() * std::mem::size_of::<(i64, u32)>()
            + self.packed.as_ref().map_or(0, |p| p.wire.len())
    }

    /// Encoded size of the record bodies.
    pub fn bytes(&self) -> usize {
        self.full_bytes + self.buf.len()
    }

    /// Bytes [`write_uncompressed`](Self::write_uncompressed) writes.
    pub fn uncompressed_len(&self) -> usize {
        match self.is_empty() {
            true => 0,
            false => HEADER + self.bytes(),
        }
    }

    /// The whole batch, uncompressed, appended to `out`: the bodies are
    /// copied once, straight into the request frame (no batch buffer first).
    pub fn write_uncompressed(
        &self,
        stamp: ProducerStamp,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        if self.is_empty() {
            return Ok(());
        }
        if self.packed.is_some() {
            return Err(CodecError::Records(
                "a packed batch cannot be written uncompressed".into(),
            ));
        }
        let header = self.header(stamp, Compression::None, self.bytes())?;
        let crc = self
            .parts()
            .fold(crc32c::crc32c(&header[CRC_START..]), |c, p| {
                crc32c::crc32c_append(c, p)
            });
        out.reserve(self.uncompressed_len());
        out.put_slice(&header[..17]);
        out.put_u32(crc);
        out.put_slice(&header[21..]);
        self.parts().for_each(|p| out.put_slice(p));
        Ok(())
    }

    /// The batch header for `body_len` bytes of (compressed) bodies, CRC zero.
    fn header(
        &self,
        stamp: ProducerStamp,
        codec: Compression,
        body_len: usize,
    ) -> Result<[u8; HEADER], CodecError> {
        let total = HEADER + body_len;
        let batch_len = i32::try_from(total - 12)
            .map_err(|_| CodecError::Records(format!("a batch of {total} bytes is too large")))?;
        let mut h = [0u8; HEADER];
        let mut w = &mut h[..];
        w.put_i64(0); // base offset
        w.put_i32(batch_len);
        w.put_i32(-1); // partition leader epoch
        w.put_i8(2); // magic
        w.put_u32(0); // CRC, by the caller
        w.put_i16(codec.to_wire() as i16); // create time, not transactional
        w.put_i32(self.count - 1); // last offset delta
        w.put_i64(self.base_timestamp);
        w.put_i64(self.max_timestamp);
        w.put_i64(stamp.producer_id);
        w.put_i16(stamp.epoch);
        w.put_i32(stamp.base_sequence);
        w.put_i32(self.count);
        Ok(h)
    }

    /// The whole batch: header (producer stamp, CRC32C) and the bodies,
    /// compressed with `codec`. Empty for an empty body.
    pub fn encode(&self, stamp: ProducerStamp, codec: Compression) -> Result<Bytes, CodecError> {
        if self.is_empty() {
            return Ok(Bytes::new());
        }
        if let Some(p) = &self.packed {
            if p.codec != codec {
                return Err(CodecError::Records(format!(
                    "the batch is packed with {}, not {}",
                    p.codec.name(),
                    codec.name()
                )));
            }
            return Ok(match p.stamp == stamp {
                true => p.wire.clone(),
                false => restamp(&p.wire, stamp),
            });
        }
        let parts: Vec<&[u8]> = self.parts().collect();
        // Uncompressed the size is known; compressed, grow from a small
        // guess (a large idle capacity would stay allocated while in flight).
        let guess = match codec {
            Compression::None => self.bytes(),
            _ => self.bytes().min(16 * 1024),
        };
        let mut out = BytesMut::with_capacity(HEADER + guess);
        out.put_slice(&self.header(stamp, codec, 0)?); // length and CRC below
        compression::compress_into(codec, &parts, (&mut out).writer())?;
        let total = out.len();
        let batch_len = i32::try_from(total - 12)
            .map_err(|_| CodecError::Records(format!("a batch of {total} bytes is too large")))?;
        out[8..12].copy_from_slice(&batch_len.to_be_bytes());
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }

    /// The batch as [`encode`](Self::encode) gives it, kept in place of the
    /// bodies, whose memory is freed (Java holds a closed batch compressed
    /// too). Sending again reuses it, restamped if the producer stamp
    /// changed. Also returns the body bytes freed now (0 when already packed).
    pub fn pack(
        &mut self,
        stamp: ProducerStamp,
        codec: Compression,
    ) -> Result<(Bytes, usize), CodecError> {
        if self.packed.as_ref().is_some_and(|p| p.codec != codec) {
            self.unpack()?;
        }
        if let Some(p) = &mut self.packed {
            if p.stamp != stamp {
                p.wire = restamp(&p.wire, stamp);
                p.stamp = stamp;
            }
            return Ok((p.wire.clone(), 0));
        }
        let wire = self.encode(stamp, codec)?;
        let freed = self.bytes();
        self.full_bytes = freed;
        self.full = Vec::new();
        self.buf = Vec::new();
        self.packed = Some(Packed {
            stamp,
            codec,
            wire: wire.clone(),
        });
        Ok((wire, freed))
    }

    /// Back to bodies from the packed batch (to split it).
    fn unpack(&mut self) -> Result<(), CodecError> {
        let Some(p) = self.packed.take() else {
            return Ok(());
        };
        let bodies = match p.wire.get(HEADER..) {
            Some(b) => compression::decompress(p.codec, b, self.full_bytes)?,
            None => Vec::new(),
        };
        if bodies.len() != self.full_bytes {
            return Err(CodecError::Records(format!(
                "a packed batch unpacked to {} bytes, not {}",
                bodies.len(),
                self.full_bytes
            )));
        }
        self.full_bytes = 0;
        self.buf = bodies;
        Ok(())
    }
}

/// `wire` (a whole batch) with another producer stamp, its CRC recomputed.
fn restamp(wire: &[u8], stamp: ProducerStamp) -> Bytes {
    let mut w = BytesMut::from(wire);
    if w.len() >= HEADER {
        w[43..51].copy_from_slice(&stamp.producer_id.to_be_bytes());
        w[51..53].copy_from_slice(&stamp.epoch.to_be_bytes());
        w[53..57].copy_from_slice(&stamp.base_sequence.to_be_bytes());
        let crc = crc32c::crc32c(&w[CRC_START..]);
        w[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    w.freeze()
}

/// One record of a body: its total length (prefix included), timestamp
/// delta and the bytes after the offset delta.
struct Scanned<'a> {
    len: usize,
    delta: i64,
    rest: &'a [u8],
}

/// Walks bodies this module wrote (so well-formed: stops at anything else).
struct Scan<'a>(&'a [u8]);

impl<'a> Iterator for Scan<'a> {
    type Item = Scanned<'a>;
    fn next(&mut self) -> Option<Scanned<'a>> {
        let d = self.0;
        let (len, n) = get_varint(d)?;
        let end = n.checked_add(usize::try_from(len).ok()?)?;
        let rec = d.get(n..end)?;
        let (delta, a) = get_varint(rec.get(1..)?)?;
        let (_, b) = get_varint(rec.get(1 + a..)?)?;
        self.0 = &d[end..];
        Some(Scanned {
            len: end,
            delta,
            rest: &rec[1 + a + b..],
        })
    }
}

/// Key and value lengths of a record's `rest` (key field, value field, ...).
fn payload_of(rest: &[u8]) -> u64 {
    let field = |d: &[u8]| -> Option<(u64, usize)> {
        let (len, n) = get_varint(d)?;
        let len = usize::try_from(len).unwrap_or(0); // -1: null
        Some((len as u64, n + len))
    };
    let Some((k, used)) = field(rest) else {
        return 0;
    };
    k + rest.get(used..).and_then(field).map_or(0, |(v, _)| v)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn varint_len(v: i64) -> usize {
    let bits = 64 - (zigzag(v) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = zigzag(v);
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_field(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

fn get_varint(d: &[u8]) -> Option<(i64, usize)> {
    let mut z = 0u64;
    for (i, &b) in d.iter().enumerate().take(10) {
        z |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((((z >> 1) as i64) ^ -((z & 1) as i64), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::records::decode_batches;

    fn rec(i: i64) -> OutRecord {
        OutRecord {
            timestamp: 1_700_000_000_000 + (i % 3) * 1000 - 500,
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; (i as usize * 37) % 300])),
            headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
        }
    }

    #[test]
    fn varints_match_the_reference_encoding() {
        use integer_encoding::VarInt;
        for v in [0i64, 1, -1, 63, 64, -65, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, v.encode_var_vec(), "{v}");
            assert_eq!(varint_len(v), out.len(), "{v}");
            assert_eq!(get_varint(&out), Some((v, out.len())));
        }
    }

    #[test]
    fn split_halves_decode_with_their_own_offsets() {
        let records: Vec<_> = (0..40).map(rec).collect();
        let mut body = BatchBody::default();
        for r in &records {
            body.push(r);
        }
        let before = body.bytes();
        let second = body.split_off(15).unwrap();
        assert_eq!((body.len(), second.len()), (15, 25));
        assert_eq!(
            body.bytes() + second.bytes(),
            before,
            "offsets stay one byte"
        );
        let payload = |rs: &[OutRecord]| -> u64 {
            rs.iter()
                .map(|r| {
                    (r.key.as_ref().map_or(0, |k| k.len())
                        + r.value.as_ref().map_or(0, |v| v.len())) as u64
                })
                .sum()
        };
        assert_eq!(
            (body.payload(), second.payload()),
            (payload(&records[..15]), payload(&records[15..]))
        );
        let stamps: Vec<i64> = body.timestamps().chain(second.timestamps()).collect();
        let want: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
        assert_eq!(stamps, want);
        for (half, from) in [(&body, 0usize), (&second, 15)] {
            for c in Compression::ALL {
                let b = half.encode(ProducerStamp::NONE, c).unwrap();
                let got = decode_batches(b, 1 << 20).unwrap();
                assert_eq!(got.len(), 1, "{c}");
                for (i, g) in got[0].records.iter().enumerate() {
                    let w = &records[from + i];
                    assert_eq!(g.offset, i as i64);
                    assert_eq!(
                        (&g.key, &g.value, &g.headers, g.timestamp),
                        (&w.key, &w.value, &w.headers, w.timestamp)
                    );
                }
            }
        }
    }

    #[test]
    fn timestamps_in_runs_split_at_every_record() {
        // Runs of 1, 2, 3, 4 and 5 records, as a fast producer stamps them.
        let stamps: Vec<i64> = (1..=5)
            .flat_map(|n| std::iter::repeat_n(100 * n, n as usize))
            .collect();
        for at in 0..=stamps.len() {
            let mut body = BatchBody::default();
            for &t in &stamps {
                body.push(&OutRecord {
                    timestamp: t,
                    key: None,
                    value: None,
                    headers: vec![],
                });
            }
            assert!(body.timestamps().eq(stamps.iter().copied()));
            let second = body.split_off(at).unwrap();
            assert!(
                body.timestamps().eq(stamps[..at].iter().copied()),
                "at {at}"
            );
            assert!(
                second.timestamps().eq(stamps[at..].iter().copied()),
                "at {at}"
            );
        }
    }

    #[test]
    fn a_chunked_body_encodes_as_one_and_splits_across_chunks() {
        let records: Vec<_> = (0..60).map(rec).collect();
        let mut one = BatchBody::default();
        // 700-byte chunks: most hold a few records; none is split.
        let mut chunked = BatchBody::chunked(16, 700);
        for r in &records {
            one.push(r);
            chunked.push(r);
        }
        assert!(chunked.full.len() > 5, "{} chunks", chunked.full.len());
        assert!(chunked.full.iter().all(|c| c.capacity() <= 700));
        assert_eq!(chunked.bytes(), one.bytes());
        for c in Compression::ALL {
            let a = one.encode(ProducerStamp::NONE, c).unwrap();
            let b = chunked.encode(ProducerStamp::NONE, c).unwrap();
            let (a, b) = (
                decode_batches(a, 1 << 20).unwrap(),
                decode_batches(b, 1 << 20).unwrap(),
            );
            assert_eq!(a[0].records, b[0].records, "{c}");
        }
        assert!(chunked.timestamps().eq(records.iter().map(|r| r.timestamp)));
        let second = chunked.split_off(33).unwrap();
        assert_eq!((chunked.len(), second.len()), (33, 27));
        let got = decode_batches(
            second
                .encode(ProducerStamp::NONE, Compression::Lz4)
                .unwrap(),
            1 << 20,
        )
        .unwrap();
        assert_eq!(got[0].records[0].value, records[33].value);
        assert_eq!(got[0].records[26].offset, 26);
    }

    #[test]
    fn a_packed_batch_frees_its_bodies_resends_restamped_and_splits() {
        let records: Vec<_> = (0..60).map(rec).collect();
        let stamp = |seq| ProducerStamp {
            producer_id: 7,
            epoch: 3,
            base_sequence: seq,
        };
        for c in Compression::ALL
            .into_iter()
            .filter(|c| *c != Compression::None)
        {
            // Chunked alike, so both compress to the same bytes.
            let mut body = BatchBody::chunked(16, 700);
            let mut twin = BatchBody::chunked(16, 700);
            for r in &records {
                body.push(r);
                twin.push(r);
            }
            let (wire, freed) = body.pack(stamp(10), c).unwrap();
            assert_eq!(freed, twin.bytes(), "{c}");
            assert_eq!(wire, twin.encode(stamp(10), c).unwrap(), "{c}");
            assert!(body.full.is_empty() && body.buf.capacity() == 0, "{c}");
            assert_eq!((body.len(), body.bytes()), (60, twin.bytes()), "{c}");
            // A resend reuses the packed batch; a new stamp rewrites it.
            let (again, freed) = body.pack(stamp(10), c).unwrap();
            assert_eq!((again.as_ptr(), freed), (wire.as_ptr(), 0), "{c}");
            let (restamped, _) = body.pack(stamp(99), c).unwrap();
            assert_eq!(restamped, twin.encode(stamp(99), c).unwrap(), "{c}");
            assert_eq!(body.encode(stamp(10), c).unwrap(), wire, "{c}");
            let got = decode_batches(restamped, 1 << 20).unwrap();
            assert_eq!(got[0].records.len(), 60, "{c}");
            let other = Compression::ALL
                .into_iter()
                .find(|o| *o != c && *o != Compression::None);
            assert!(body.encode(stamp(10), other.unwrap()).is_err(), "{c}");
            // Split (MESSAGE_TOO_LARGE) unpacks: the halves are as if never packed.
            let second = body.split_off(33).unwrap();
            let twin_second = twin.split_off(33).unwrap();
            for (a, b) in [(&body, &twin), (&second, &twin_second)] {
                assert_eq!(
                    a.encode(stamp(1), c).unwrap(),
                    b.encode(stamp(1), c).unwrap(),
                    "{c}"
                );
            }
        }
    }

    #[test]
    fn far_apart_timestamps_are_refused_not_wrapped() {
        let mut body = BatchBody::default();
        let r = |t| OutRecord {
            timestamp: t,
            key: None,
            value: None,
            headers: vec![],
        };
        body.push(&r(i64::MAX));
        assert!(!body.accepts(-5));
        assert!(body.accepts(0));
    }
}
