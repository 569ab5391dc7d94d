//! Record batches written by peers (librdkafka, the Java producer) with every
//! codec, as stored in the broker's segment files, decode to what they sent.

use bytes::Bytes;
use kafka_ingest::internals::{
    self, compress, decode_batches, encode_batch, OutRecord, ProducerStamp,
};
use kafka_ingest::Compression;
use protocol_tests::fixtures;
use serde_json::Value;

const LIMIT: usize = 16 << 20;

fn expected() -> Value {
    let text =
        std::fs::read_to_string(fixtures().join("batches/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn opt(v: &Value) -> Option<Bytes> {
    v.as_str().map(|s| Bytes::copy_from_slice(s.as_bytes()))
}

/// Headers exactly as sent, repeated keys included (Kafka allows repeats).
fn exact(headers: &[Value]) -> Vec<(String, Option<Bytes>)> {
    headers
        .iter()
        .map(|h| (h[0].as_str().unwrap_or_default().to_owned(), opt(&h[1])))
        .collect()
}

#[test]
fn peer_batches_decode_to_the_records_sent() {
    let want = expected();
    for peer in ["librdkafka", "java"] {
        for codec in Compression::ALL {
            let name = format!("{peer}_{codec}.log");
            let data = std::fs::read(fixtures().join("batches").join(&name)).expect(&name);
            let batches =
                decode_batches(Bytes::from(data), LIMIT).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!batches.is_empty(), "{name}");
            let records: Vec<_> = batches.iter().flat_map(|b| b.records.iter()).collect();
            for b in &batches {
                assert_eq!(b.compression, codec, "{name}: batch codec");
            }
            let exp = want[peer][codec.name()]
                .as_array()
                .expect("expected records");
            assert_eq!(records.len(), exp.len(), "{name}: record count");
            for (i, (r, e)) in records.iter().zip(exp).enumerate() {
                assert_eq!(r.offset, i as i64, "{name} #{i}");
                assert_eq!(r.key, opt(&e["key"]), "{name} #{i} key");
                assert_eq!(r.value, opt(&e["value"]), "{name} #{i} value");
                assert_eq!(
                    r.headers,
                    exact(e["headers"].as_array().unwrap()),
                    "{name} #{i} headers"
                );
                if let Some(ts) = e["timestamp"].as_i64() {
                    assert_eq!(r.timestamp, ts, "{name} #{i} timestamp");
                }
            }
        }
    }
}

#[test]
fn peer_batches_refuse_a_small_decompression_limit() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let name = format!("librdkafka_{codec}.log");
        let data = std::fs::read(fixtures().join("batches").join(&name)).expect(&name);
        let e = decode_batches(Bytes::from(data), 512).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{name}: {e}");
    }
}

#[test]
fn truncated_and_flipped_peer_batches_never_panic() {
    for entry in std::fs::read_dir(fixtures().join("batches")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let step = (data.len() / 97).max(1);
        for i in (0..data.len()).step_by(step) {
            let _ = decode_batches(Bytes::copy_from_slice(&data[..i]), LIMIT);
            let mut flipped = data.clone();
            flipped[i] ^= 1 << (i % 8);
            // The CRC covers everything after it; a flip before it must still not panic.
            let _ = decode_batches(Bytes::from(flipped), LIMIT);
        }
    }
}

/// A decompression bomb: small input that expands to 8 MB, in every codec.
#[test]
fn decompression_bombs_are_refused_at_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let bomb = compress(codec, &zeros).unwrap();
        assert!(bomb.len() < 2 << 20, "{codec}: {} bytes", bomb.len());
        let e = internals::decompress(codec, &bomb, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{codec}: {e}");
        // The same bomb inside a record batch is refused by decode_batches.
        let rec = OutRecord {
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(zeros.clone())),
            headers: vec![],
        };
        let batch = encode_batch(&[rec], ProducerStamp::NONE, codec).unwrap();
        assert!(
            batch.len() < 2 << 20,
            "{codec}: batch of {} bytes",
            batch.len()
        );
        let e = decode_batches(batch, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit"), "{codec}: {e}");
    }
}

/// kafka-protocol adds record deltas to the batch header unchecked, and
/// subtracts timestamps unchecked when encoding (panics in debug builds).
#[test]
fn overflowing_timestamps_and_offsets_are_errors() {
    let rec = |t| OutRecord {
        timestamp: t,
        key: None,
        value: None,
        headers: vec![],
    };
    let e = encode_batch(
        &[rec(i64::MAX), rec(-5)],
        ProducerStamp::NONE,
        Compression::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("too far apart"), "{e}");
    assert!(encode_batch(
        &[rec(i64::MIN), rec(i64::MIN + 1)],
        ProducerStamp::NONE,
        Compression::None
    )
    .is_ok());
    // attributes, timestamp delta = i64::MAX (zigzag varlong), offset delta 0, null key/value, no headers.
    let mut body = vec![
        0u8, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 1, 1, 0,
    ];
    body.insert(0, (body.len() as u8) << 1);
    let e = decode_batches(protocol_tests::wrap_batch(0, 1, &body), LIMIT).unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}
