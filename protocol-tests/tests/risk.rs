//! The known risk: kafka-protocol pre-allocates arrays from the count it
//! reads, so a 4-byte count in a 16-byte frame asks for hundreds of GB and the
//! failed allocation aborts the process (not a catchable panic). Shown in a
//! child process under `ulimit -v`; the client's guarded decode must refuse
//! the same bytes with a typed error.

use std::process::Command;

use bytes::Bytes;
use kafka_ingest::internals::{self, kp};
use kp::protocol::Decodable;

/// A Metadata v12 response body: throttle 0, brokers = compact array of 2^32-2.
fn hostile_metadata() -> Bytes {
    Bytes::from_static(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0])
}

/// Correlation id 1 and empty tagged fields (response header v1), then the body.
fn hostile_metadata_frame() -> Bytes {
    let mut f = vec![0, 0, 0, 1, 0];
    f.extend_from_slice(&hostile_metadata());
    Bytes::from(f)
}

const CHILD: &str = "PROTOCOL_TESTS_RISK_CHILD";

fn run_child(test: &str, mode: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    // 4 GB of address space: far below what the hostile count asks for.
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304; exec \"$0\" --exact \"$1\" --nocapture --test-threads=1")
        .arg(exe)
        .arg(test)
        .env(CHILD, mode)
        .output()
        .expect("spawn child")
}

#[test]
fn child_entry() {
    match std::env::var(CHILD).as_deref() {
        Ok("unguarded") => {
            let r =
                <kp::messages::MetadataResponse as Decodable>::decode(&mut hostile_metadata(), 12);
            println!("UNGUARDED-RETURNED {}", r.is_ok());
        }
        Ok("guarded") => {
            let e = internals::decode_response(3, 12, hostile_metadata_frame()).unwrap_err();
            println!("GUARDED-ERROR {e}");
        }
        _ => {}
    }
}

#[test]
fn unguarded_kafka_protocol_aborts_on_a_hostile_array_count() {
    let out = run_child("child_entry", "unguarded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // If this fails, kafka-protocol bounds its allocations now: the guard in
    // src/codec/guard.rs is still correct, only no longer needed.
    assert!(
        !out.status.success() && !stdout.contains("UNGUARDED-RETURNED"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("memory allocation"),
        "aborted for another reason: {stderr}"
    );
}

#[test]
fn guarded_decode_refuses_the_same_bytes() {
    let out = run_child("child_entry", "guarded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("GUARDED-ERROR") && stdout.contains("exceeds"),
        "{stdout}"
    );
}

#[test]
fn hostile_record_count_and_header_count_are_refused() {
    // Count i32::MAX over one real record; then one record claiming 2^30 headers.
    let one = [14u8, 0, 0, 0, 2, b'k', 2, b'v', 0];
    let batch = protocol_tests::wrap_batch(0, i32::MAX, &one);
    assert!(internals::decode_batches(batch, 1 << 20).is_err());
    let rec = [0u8, 0, 0, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x08];
    let mut records = vec![(rec.len() as u8) << 1];
    records.extend_from_slice(&rec);
    let e =
        internals::decode_batches(protocol_tests::wrap_batch(0, 1, &records), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("header"), "{e}");
}
