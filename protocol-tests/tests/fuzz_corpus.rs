//! The fuzz targets' seed corpora (built from the golden fixtures) and every
//! crash they ever found (fuzz/regressions/<target>/) run through the same
//! bodies as `cargo fuzz`; a crash fixed once stays fixed.

use std::path::{Path, PathBuf};

use protocol_tests::{fixtures, frame_input, golden_frames, unwrap_batch};

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("frame_decode", protocol_tests::fuzz_frame),
    ("record_batch", protocol_tests::fuzz_batches),
    ("batch_payload", protocol_tests::fuzz_batch_payload),
    ("decompress", protocol_tests::fuzz_decompress),
    ("wire_format", protocol_tests::fuzz_wire_format),
    ("group_metadata", protocol_tests::fuzz_group),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn seeds_and_regressions_never_panic() {
    let mut ran = 0;
    for (name, body) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for f in files(&fuzz_dir().join(kind).join(name)) {
                body(&std::fs::read(&f).unwrap());
                ran += 1;
            }
        }
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "no seeds for {name}"
        );
    }
    assert!(ran > 50, "{ran} inputs");
}

/// Rebuilds fuzz/corpus/* from the fixtures:
/// `cargo test -p protocol-tests --test fuzz_corpus -- --ignored`.
#[test]
#[ignore = "writes files; run after scripts/capture-golden"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    for g in golden_frames().into_iter().filter(|g| !g.request) {
        write(
            "frame_decode",
            &g.name,
            &frame_input(g.api_key, g.version, &g.body()),
        );
    }
    for e in std::fs::read_dir(fixtures().join("batches")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&p).unwrap();
        write("record_batch", &name, &data);
        let (codec, count, records) = unwrap_batch(&data).unwrap();
        let mut payload = vec![codec];
        payload.extend_from_slice(&count.to_be_bytes());
        payload.extend_from_slice(records);
        write("batch_payload", &name, &payload);
        let mut z = vec![codec];
        z.extend_from_slice(records);
        write("decompress", &name, &z);
    }
    for g in golden_frames()
        .into_iter()
        .filter(|g| g.api == "join_group" || g.api == "sync_group")
    {
        // The member metadata / assignment bytes inside are found by the round trip tests;
        // seed with the whole frames and a few hand-made messages.
        write("group_metadata", &g.name, &g.body());
    }
    for (i, w) in [
        &b"\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff"[..],
        b"\x01\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff",
    ]
    .iter()
    .enumerate()
    {
        write("group_metadata", &format!("seed-{i}"), w);
    }
    for (i, w) in [
        &b"\x00\x00\x00\x00\x01\x02abc"[..],
        b"\x00\x00\x00\x01\x00",
        b"\x01junk",
    ]
    .iter()
    .enumerate()
    {
        write("wire_format", &format!("seed-{i}"), w);
    }
    for depth in [1, 2, 5] {
        write(
            "wire_format",
            &format!("avro-depth-{depth}"),
            &protocol_tests::avro_sample(depth),
        );
    }
}
