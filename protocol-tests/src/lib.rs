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
    let idx = APIS
        .iter()
        .position(|(_, k)| *k == api_key)
        .expect("known API") as u8;
    let mut v = Vec::with_capacity(2 + body.len());
    v.extend_from_slice(&[idx, version as u8]);
    v.extend_from_slice(body);
    v
}

/// Fuzz body: decodes a [`frame_input`] as the client decodes responses.
pub fn fuzz_frame(data: &[u8]) {
    let [idx, version, body @ ..] = data else {
        return;
    };
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
    let [codec, a, b, c, d, records @ ..] = data else {
        return;
    };
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

/// Fuzz body: group members' embedded metadata; byte 0 picks subscription
/// (even) or assignment (odd), the rest is the versioned message.
pub fn fuzz_group(data: &[u8]) {
    let [which, rest @ ..] = data else { return };
    let b = Bytes::copy_from_slice(rest);
    if which % 2 == 0 {
        let _ = internals::decode_subscription(b);
    } else {
        let _ = internals::decode_assignment(b);
    }
}

/// A writer schema using every Avro type (recursive too), for the wire-format body.
pub const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Event", "namespace": "pt", "fields": [
  {"name": "id", "type": "long"}, {"name": "ok", "type": "boolean"}, {"name": "n", "type": "int"},
  {"name": "f", "type": "float"}, {"name": "d", "type": "double"}, {"name": "raw", "type": "bytes"},
  {"name": "name", "type": "string"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "attrs", "type": {"type": "map", "values": ["null", "long", "string"]}},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
  {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
  {"name": "next", "type": ["null", "Event"]},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
]}"#;

fn avro_schema() -> &'static kafka_ingest::schema_registry::apache_avro::Schema {
    static S: std::sync::OnceLock<kafka_ingest::schema_registry::apache_avro::Schema> =
        std::sync::OnceLock::new();
    S.get_or_init(|| {
        kafka_ingest::schema_registry::parse_schema(AVRO_SCHEMA, None).expect("schema")
    })
}

/// A framed datum of [`AVRO_SCHEMA`] (wire header included), `depth` events deep.
pub fn avro_sample(depth: usize) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, 7];
    for i in 0..depth {
        out.extend_from_slice(&[0x02, 0x01, 0x04]); // id 1, ok, n 2
        out.extend_from_slice(&1.0f32.to_le_bytes());
        out.extend_from_slice(&1.0f64.to_le_bytes());
        out.extend_from_slice(b"\x04ab\x06abc"); // raw, name
        out.extend_from_slice(b"\x02\x02x\x00"); // tags ["x"]
        out.extend_from_slice(b"\x02\x02k\x02\x04\x00"); // attrs {k: 2}
        out.extend_from_slice(b"\x02abcd"); // kind B, hash
        out.push(if i + 1 < depth { 0x02 } else { 0x00 }); // next
        if i + 1 == depth {
            out.extend_from_slice(b"\x02\x02\x64\x48123e4567-e89b-12d3-a456-426614174000");
        }
    }
    // Tails of the enclosing events (at, amount, uid), innermost first.
    for _ in 1..depth {
        out.extend_from_slice(b"\x02\x02\x64\x48123e4567-e89b-12d3-a456-426614174000");
    }
    out
}

/// Decodes a framed [`AVRO_SCHEMA`] datum; for tests.
pub fn decode_avro(data: &[u8]) -> Result<(), String> {
    let (_, body) = kafka_ingest::schema_registry::wire::split(data).map_err(|e| e.to_string())?;
    kafka_ingest::schema_registry::decode_datum(avro_schema(), None, body)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Fuzz body: the Confluent wire format (magic byte, schema id) and the Avro
/// body behind it, decoded with [`AVRO_SCHEMA`].
pub fn fuzz_wire_format(data: &[u8]) {
    use kafka_ingest::schema_registry::{decode_datum, wire};
    match wire::split(data) {
        Ok((id, body)) => {
            assert_eq!(data[0], 0);
            assert_eq!(u32::from_be_bytes([data[1], data[2], data[3], data[4]]), id);
            assert_eq!(body.len(), data.len() - 5);
            let _ = decode_datum(avro_schema(), None, body);
        }
        Err(_) => assert!(data.len() < 5 || data[0] != 0),
    }
}
