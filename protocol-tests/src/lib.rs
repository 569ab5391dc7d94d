//! Shared helpers for the protocol tests: fixture loading and sample data.
//! The tests live in `tests/`; the fuzz targets in `fuzz/` reuse [`frame_input`].

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_ingest::internals;

/// `protocol-tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One captured frame, named `{api}_{request|response}_v{version}_{n}.bin`.
#[derive(Debug, Clone)]
pub struct Golden {
    pub name: String,
    pub api: String,
    pub api_key: i16,
    pub request: bool,
    pub version: i16,
    /// The whole frame, size prefix included.
    pub frame: Bytes,
}

impl Golden {
    /// The frame after its 4-byte size prefix.
    pub fn body(&self) -> Bytes {
        self.frame.slice(4..)
    }
}

/// API names as used in fixture names, with their keys.
pub const APIS: &[(&str, i16)] = &[
    ("produce", 0),
    ("fetch", 1),
    ("list_offsets", 2),
    ("metadata", 3),
    ("offset_commit", 8),
    ("offset_fetch", 9),
    ("find_coordinator", 10),
    ("join_group", 11),
    ("heartbeat", 12),
    ("leave_group", 13),
    ("sync_group", 14),
    ("describe_groups", 15),
    ("api_versions", 18),
    ("create_topics", 19),
    ("delete_topics", 20),
    ("init_producer_id", 22),
    ("describe_configs", 32),
];

/// Every golden frame, sorted by name.
pub fn golden_frames() -> Vec<Golden> {
    let mut out: Vec<Golden> = std::fs::read_dir(fixtures().join("frames"))
        .expect("fixtures/frames (run scripts/capture-golden)")
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_name(&e.file_name().to_string_lossy()).map(|g| (g, e.path())))
        .map(|(mut g, path)| {
            g.frame = Bytes::from(std::fs::read(path).expect("read fixture"));
            g
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn parse_name(name: &str) -> Option<Golden> {
    let stem = name.strip_suffix(".bin")?;
    let (rest, _n) = stem.rsplit_once('_')?;
    let (rest, v) = rest.rsplit_once("_v")?;
    let (api, kind) = rest.rsplit_once('_')?;
    let api_key = APIS.iter().find(|(n, _)| *n == api)?.1;
    Some(Golden {
        name: name.to_owned(),
        api: api.to_owned(),
        api_key,
        request: kind == "request",
        version: v.parse().ok()?,
        frame: Bytes::new(),
    })
}

/// Fuzz input layout for response decoding: byte 0 picks the API (index into
/// [`APIS`]), byte 1 the version (mod 19), the rest is the frame after its size prefix.
pub fn frame_input(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let idx = APIS.iter().position(|(_, k)| *k == api_key).expect("known API") as u8;
    let mut v = Vec::with_capacity(2 + body.len());
    v.extend_from_slice(&[idx, version as u8]);
    v.extend_from_slice(body);
    v
}

/// Fuzz body: decodes a [`frame_input`] as the client decodes responses.
pub fn fuzz_frame(data: &[u8]) {
    let [idx, version, body @ ..] = data else { return };
    let key = APIS[*idx as usize % APIS.len()].1;
    let _ = internals::decode_response(key, (*version % 19) as i16, Bytes::copy_from_slice(body));
}

/// Largest decompressed batch the fuzz bodies allow.
pub const FUZZ_LIMIT: usize = 1 << 20;

/// Fuzz body: a Fetch response's record set, as raw bytes.
pub fn fuzz_batches(data: &[u8]) {
    let _ = internals::decode_batches(Bytes::copy_from_slice(data), FUZZ_LIMIT);
}

/// Fuzz body past the CRC: byte 0 picks the codec, bytes 1..5 are the record
/// count, the rest is the (compressed) records section of a batch whose
/// header and CRC are made valid here.
pub fn fuzz_batch_payload(data: &[u8]) {
    let [codec, a, b, c, d, records @ ..] = data else { return };
    let batch = wrap_batch(*codec % 5, i32::from_be_bytes([*a, *b, *c, *d]), records);
    if let Ok(batches) = internals::decode_batches(batch, FUZZ_LIMIT) {
        assert!(batches.len() <= 1);
    }
}

/// Builds a v2 batch (valid CRC) around a records section.
pub fn wrap_batch(codec: u8, count: i32, records: &[u8]) -> Bytes {
    let mut after_crc = Vec::with_capacity(40 + records.len());
    after_crc.extend_from_slice(&(codec as i16).to_be_bytes()); // attributes
    after_crc.extend_from_slice(&count.saturating_sub(1).max(0).to_be_bytes()); // last offset delta
    after_crc.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // first timestamp
    after_crc.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // max timestamp
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_crc.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    after_crc.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    after_crc.extend_from_slice(&count.to_be_bytes());
    after_crc.extend_from_slice(records);
    let mut out = Vec::with_capacity(21 + after_crc.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&((9 + after_crc.len()) as i32).to_be_bytes()); // batch length
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&crc32c::crc32c(&after_crc).to_be_bytes());
    out.extend_from_slice(&after_crc);
    Bytes::from(out)
}

/// The `(codec, count, records section)` of the first batch in `batch`.
pub fn unwrap_batch(batch: &[u8]) -> Option<(u8, i32, &[u8])> {
    let len = i32::from_be_bytes(batch.get(8..12)?.try_into().ok()?) as usize;
    let codec = (i16::from_be_bytes(batch.get(21..23)?.try_into().ok()?) & 7) as u8;
    let count = i32::from_be_bytes(batch.get(57..61)?.try_into().ok()?);
    Some((codec, count, batch.get(61..12 + len)?))
}

/// Fuzz body: byte 0 picks the codec, the rest is decompressed.
pub fn fuzz_decompress(data: &[u8]) {
    let [codec, rest @ ..] = data else { return };
    let codec = kafka_ingest::Compression::ALL[*codec as usize % 5];
    if let Ok(out) = internals::decompress(codec, rest, FUZZ_LIMIT) {
        assert!(out.len() <= FUZZ_LIMIT);
    }
}

/// Fuzz body: the Confluent wire-format header (magic byte, schema id).
pub fn fuzz_wire_format(data: &[u8]) {
    match kafka_ingest::schema_registry::wire::split(data) {
        Ok((id, body)) => {
            assert_eq!(data[0], 0);
            assert_eq!(u32::from_be_bytes([data[1], data[2], data[3], data[4]]), id);
            assert_eq!(body.len(), data.len() - 5);
        }
        Err(_) => assert!(data.len() < 5 || data[0] != 0),
    }
}
