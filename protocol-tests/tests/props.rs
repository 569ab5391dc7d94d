//! Property tests: record batches round-trip; every decoder returns errors,
//! never panics, on arbitrary, truncated, bit-flipped and hostile input.
//! Case counts follow PROPTEST_CASES (default 256; expensive ones use fewer).

use std::sync::OnceLock;

use bytes::Bytes;
use kafka_ingest::internals::{self, decode_batches, encode_batch, OutRecord, ProducerStamp};
use kafka_ingest::schema_registry::wire;
use kafka_ingest::Compression;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use protocol_tests::{golden_frames, Golden};

fn cases(divisor: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    // Failures are saved (and replayed first) in protocol-tests/proptest-regressions/.
    let saved = FileFailurePersistence::Direct("proptest-regressions/props.txt");
    ProptestConfig {
        cases: (base.cases / divisor).max(8),
        failure_persistence: Some(Box::new(saved)),
        ..base
    }
}

fn golden() -> &'static [Golden] {
    static G: OnceLock<Vec<Golden>> = OnceLock::new();
    G.get_or_init(|| golden_frames().into_iter().filter(|g| !g.request).collect())
}

fn payload() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(Bytes::new())),
        8 => vec(any::<u8>(), 0..200).prop_map(|v| Some(Bytes::from(v))),
        1 => (any::<u8>(), 1usize..100_000).prop_map(|(b, n)| Some(Bytes::from(vec![b; n]))),
    ]
}

fn record() -> impl Strategy<Value = OutRecord> {
    // Header keys may repeat (a short alphabet makes repeats common).
    (
        0i64..1 << 45,
        payload(),
        payload(),
        vec(("[a-c]{0,2}", payload()), 0..12),
    )
        .prop_map(|(timestamp, key, value, headers)| OutRecord {
            timestamp,
            key,
            value,
            headers: headers.into_iter().collect(),
        })
}

fn stamp() -> impl Strategy<Value = ProducerStamp> {
    prop_oneof![
        Just(ProducerStamp::NONE),
        (0i64..=i64::MAX, 0i16..=i16::MAX, 0i32..=i32::MAX).prop_map(
            |(producer_id, epoch, base_sequence)| ProducerStamp {
                producer_id,
                epoch,
                base_sequence
            }
        ),
    ]
}

fn codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #![proptest_config(cases(4))]

    #[test]
    fn record_batches_round_trip(records in vec(record(), 1..24), stamp in stamp(), codec in codec()) {
        let batch = encode_batch(&records, stamp, codec).unwrap();
        let got = decode_batches(batch.clone(), 64 << 20).unwrap();
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(got[0].compression, codec);
        prop_assert_eq!(got[0].records.len(), records.len());
        for (i, (g, w)) in got[0].records.iter().zip(&records).enumerate() {
            prop_assert_eq!(g.offset, i as i64);
            prop_assert_eq!(g.timestamp, w.timestamp);
            prop_assert_eq!(&g.key, &w.key);
            prop_assert_eq!(&g.value, &w.value);
            prop_assert_eq!(&g.headers, &w.headers);
            prop_assert_eq!(g.producer_id, stamp.producer_id);
            // As Java: no base sequence, no record sequence.
            let seq = if stamp.base_sequence < 0 { -1 } else { stamp.base_sequence.wrapping_add(i as i32) };
            prop_assert_eq!(g.sequence, seq);
        }
        // Any truncation is a partial batch (skipped) or an error, never a panic.
        let cut = batch.len() / 2;
        prop_assert!(decode_batches(batch.slice(..cut), 64 << 20).map(|b| b.is_empty()).unwrap_or(true));
    }
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn record_batch_decoder_survives_arbitrary_bytes(data in vec(any::<u8>(), 0..2048)) {
        protocol_tests::fuzz_batches(&data);
    }

    #[test]
    fn record_batch_decoder_survives_arbitrary_records_past_the_crc(
        codec in 0u8..5, count in prop_oneof![0i32..64, any::<i32>()], records in vec(any::<u8>(), 0..1024),
    ) {
        let mut data = vec![codec];
        data.extend_from_slice(&count.to_be_bytes());
        data.extend_from_slice(&records);
        protocol_tests::fuzz_batch_payload(&data);
    }

    #[test]
    fn record_batch_decoder_survives_bit_flips(
        records in vec(record(), 1..4), codec in codec(), flips in vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut batch = encode_batch(&records, ProducerStamp::NONE, codec).unwrap().to_vec();
        for (at, bit) in flips {
            let i = at.index(batch.len());
            batch[i] ^= 1 << bit;
        }
        let _ = decode_batches(Bytes::from(batch), 1 << 20);
    }

    #[test]
    fn decompressors_survive_arbitrary_bytes(codec in codec(), data in vec(any::<u8>(), 0..2048)) {
        if let Ok(out) = internals::decompress(codec, &data, 1 << 16) {
            prop_assert!(out.len() <= 1 << 16);
        }
    }

    #[test]
    fn compression_round_trips(codec in codec(), data in vec(any::<u8>(), 0..10_000)) {
        let z = internals::compress(codec, &data).unwrap();
        prop_assert_eq!(internals::decompress(codec, &z, data.len()).unwrap(), data);
    }

    #[test]
    fn frame_decoder_survives_arbitrary_bytes(data in vec(any::<u8>(), 0..512)) {
        protocol_tests::fuzz_frame(&data);
    }

    #[test]
    fn frame_decoder_survives_mutated_golden_frames(
        pick in any::<prop::sample::Index>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let g = pick.get(golden());
        let mut body = g.body().to_vec();
        for (at, b) in edits {
            let i = at.index(body.len());
            body[i] = b;
        }
        body.truncate(cut.index(body.len() + 1).max(1));
        let _ = internals::decode_response(g.api_key, g.version, Bytes::from(body));
    }

    /// The known risk: a huge count written anywhere in a real frame must be
    /// refused (without the guard this aborts the process).
    #[test]
    fn frame_decoder_refuses_hostile_counts_anywhere(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        count in prop_oneof![
            Just(vec![0x7f, 0xff, 0xff, 0xff]),
            Just(vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
            Just(vec![0x00, 0xff, 0xff, 0xff]),
            Just(vec![0xfe, 0xff, 0xff, 0x7f]),
        ],
    ) {
        let g = pick.get(golden());
        let mut body = g.body().to_vec();
        let i = at.index(body.len());
        for (k, b) in count.into_iter().enumerate() {
            if let Some(x) = body.get_mut(i + k) {
                *x = b;
            }
        }
        let _ = internals::decode_response(g.api_key, g.version, Bytes::from(body));
    }

    #[test]
    fn group_metadata_decoders_survive_arbitrary_bytes(data in vec(any::<u8>(), 0..256)) {
        protocol_tests::fuzz_group(&data);
    }

    #[test]
    fn group_metadata_decoders_refuse_hostile_counts(which in 0u8..2, version in 0i16..4, at in 0usize..7) {
        // Version, then a count of i32::MAX at a few offsets.
        let mut data = vec![which, 0, version as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        data[3 + at..7 + at].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        protocol_tests::fuzz_group(&data);
    }

    #[test]
    fn wire_format_header_round_trips(id in any::<u32>(), body in vec(any::<u8>(), 0..64)) {
        let mut framed = Vec::new();
        wire::write_header(id, &mut framed);
        framed.extend_from_slice(&body);
        let (got, rest) = wire::split(&framed).unwrap();
        prop_assert_eq!(got, id);
        prop_assert_eq!(rest, &body[..]);
    }

    #[test]
    fn avro_body_decoder_survives_mutations(
        depth in 1usize..4, edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), cut in any::<prop::sample::Index>(),
    ) {
        let mut data = protocol_tests::avro_sample(depth);
        let full = edits.is_empty();
        for (at, b) in edits {
            let i = 5 + at.index(data.len() - 5);
            data[i] = b;
        }
        let cut = cut.index(data.len() + 1);
        if full && cut == data.len() {
            prop_assert_eq!(protocol_tests::decode_avro(&data), Ok(()));
        }
        data.truncate(cut);
        protocol_tests::fuzz_wire_format(&data);
    }

    #[test]
    fn wire_format_decoder_survives_arbitrary_bytes(data in vec(any::<u8>(), 0..16)) {
        protocol_tests::fuzz_wire_format(&data);
    }
}
