//! Record batch encode/decode throughput per codec (no broker).
//! Run: `cargo bench --features unstable-internals --bench codec`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_ingest::internals::{decode_batches, encode_batch, OutRecord, ProducerStamp};
use kafka_ingest::Compression;

/// A 16 KiB-ish batch of event-like JSON records (compressible, as real data is).
fn records(size: usize) -> Vec<OutRecord> {
    let n = (16 * 1024 / size).max(1);
    (0..n)
        .map(|i| {
            let mut v = format!(
                r#"{{"event_id":{i},"status":"ok","data":{{"sensor":"thermo-{}","value":{}.5}}}}"#,
                i % 8,
                i % 40
            )
            .into_bytes();
            v.resize(size, b' ');
            OutRecord {
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("thermo-{}", i % 8))),
                value: Some(Bytes::from(v)),
                headers: vec![],
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let stamp = ProducerStamp {
        producer_id: 1,
        epoch: 0,
        base_sequence: 0,
    };
    for size in [100usize, 1024] {
        let recs = records(size);
        let bytes: u64 = (recs.len() * size) as u64;
        let mut enc = c.benchmark_group(format!("encode_{size}B"));
        enc.throughput(Throughput::Bytes(bytes));
        for codec in Compression::ALL {
            enc.bench_with_input(BenchmarkId::from_parameter(codec), &recs, |b, r| {
                b.iter(|| encode_batch(r, stamp, codec).unwrap())
            });
        }
        enc.finish();
        let mut dec = c.benchmark_group(format!("decode_{size}B"));
        dec.throughput(Throughput::Bytes(bytes));
        for codec in Compression::ALL {
            let batch = encode_batch(&recs, stamp, codec).unwrap();
            dec.bench_with_input(BenchmarkId::from_parameter(codec), &batch, |b, batch| {
                b.iter(|| decode_batches(batch.clone(), 64 << 20).unwrap())
            });
        }
        dec.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
