//! Frames captured from Kafka 4.1.1 and two peer clients (librdkafka, the Java
//! producer) by scripts/capture-golden: decode → encode gives the same bytes.

use bytes::Bytes;
use kafka_ingest::internals;
use protocol_tests::{golden_frames, APIS};

#[test]
fn every_api_has_request_and_response_fixtures() {
    let frames = golden_frames();
    for (api, _) in APIS {
        for request in [true, false] {
            assert!(
                frames.iter().any(|g| g.api == *api && g.request == request),
                "no {api} {} fixture (run scripts/capture-golden)",
                if request { "request" } else { "response" }
            );
        }
    }
}

#[test]
fn size_prefixes_match() {
    for g in golden_frames() {
        let size = i32::from_be_bytes([g.frame[0], g.frame[1], g.frame[2], g.frame[3]]);
        assert_eq!(size as usize, g.frame.len() - 4, "{}", g.name);
    }
}

#[test]
fn responses_decode_and_reencode_identically() {
    for g in golden_frames().into_iter().filter(|g| !g.request) {
        let again = internals::response_round_trip(g.api_key, g.version, g.body())
            .unwrap_or_else(|e| panic!("{}: {e}", g.name));
        assert_eq!(hex(&again), hex(&g.body()), "{}", g.name);
    }
}

#[test]
fn requests_decode_and_reencode_identically() {
    for g in golden_frames().into_iter().filter(|g| g.request) {
        let (key, version, again) =
            internals::request_round_trip(g.body()).unwrap_or_else(|e| panic!("{}: {e}", g.name));
        assert_eq!((key, version), (g.api_key, g.version), "{}", g.name);
        assert_eq!(hex(&again), hex(&g.body()), "{}", g.name);
    }
}

#[test]
fn correlation_ids_are_read_from_responses() {
    for g in golden_frames().into_iter().filter(|g| !g.request) {
        let want = i32::from_be_bytes([g.frame[4], g.frame[5], g.frame[6], g.frame[7]]);
        assert_eq!(
            internals::correlation_id(&g.body()).unwrap(),
            want,
            "{}",
            g.name
        );
    }
}

#[test]
fn truncated_responses_are_errors() {
    for g in golden_frames().into_iter().filter(|g| !g.request) {
        let body = g.body();
        // Up to ~64 cut points per frame keeps this fast in debug builds.
        let step = (body.len() / 64).max(1);
        for cut in (0..body.len()).step_by(step) {
            let r = internals::decode_response(g.api_key, g.version, body.slice(..cut));
            // A cut inside trailing tagged fields can still parse; most cannot.
            if cut + 8 < body.len() {
                assert!(r.is_err(), "{} cut at {cut} of {}", g.name, body.len());
            }
        }
    }
}

#[test]
fn responses_at_another_version_do_not_panic() {
    for g in golden_frames().into_iter().filter(|g| !g.request) {
        for v in 0..=18 {
            let _ = internals::decode_response(g.api_key, v, g.body());
        }
    }
}

fn hex(b: &Bytes) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn default_responses_pass_the_guard_at_every_supported_version() {
    for (key, lo, hi) in internals::supported_versions() {
        for v in lo..=hi {
            let body = internals::default_response_body(key, v, 7).unwrap();
            internals::decode_response(key, v, body)
                .unwrap_or_else(|e| panic!("key {key} v{v}: {e}"));
        }
    }
}

#[test]
fn avro_samples_decode() {
    for depth in [1, 2, 5] {
        assert_eq!(
            protocol_tests::decode_avro(&protocol_tests::avro_sample(depth)),
            Ok(()),
            "depth {depth}"
        );
        let s = protocol_tests::avro_sample(depth);
        assert!(
            protocol_tests::decode_avro(&s[..s.len() - 1]).is_err(),
            "truncated, depth {depth}"
        );
    }
}
