//! Avro serialize/deserialize throughput with a warm schema cache (no HTTP
//! in the measured loop; checked at the end). Needs the harness registry:
//! `scripts/harness up`, then `cargo bench --bench avro`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kafka_ingest::schema_registry::apache_avro::types::Value;
use kafka_ingest::schema_registry::{
    AvroDeserializer, AvroSerializer, RecordPart, SchemaRegistryClient, SchemaRegistryConfig,
};

#[derive(serde::Serialize, serde::Deserialize)]
struct SensorData {
    sensor: String,
    value: f64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct IngestEvent {
    event_id: i64,
    timestamp: f64,
    status: String,
    data: SensorData,
    source: Option<String>,
}

fn schema(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/schemas/{name}.avsc",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn event(i: i64) -> IngestEvent {
    IngestEvent {
        event_id: i,
        timestamp: 1.7e9,
        status: "ok".into(),
        data: SensorData {
            sensor: "sensor-17".into(),
            value: 21.5,
        },
        source: Some("gateway-3".into()),
    }
}

fn value(i: i64) -> Value {
    Value::Record(vec![
        ("event_id".into(), Value::Long(i)),
        ("timestamp".into(), Value::Double(1.7e9)),
        ("status".into(), Value::String("ok".into())),
        (
            "data".into(),
            Value::Record(vec![
                ("sensor".into(), Value::String("sensor-17".into())),
                ("value".into(), Value::Double(21.5)),
            ]),
        ),
        (
            "source".into(),
            Value::Union(1, Box::new(Value::String("gateway-3".into()))),
        ),
    ])
}

/// Times `iters` awaits of `f` inside one `block_on`.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            f().await;
        }
        start.elapsed()
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".into());
    let config = SchemaRegistryConfig::new(&url);
    let client = SchemaRegistryClient::new(&config).unwrap();
    if let Err(e) = rt.block_on(client.global_compatibility()) {
        panic!(
            "schema registry is not reachable at {url}: {e}\nStart it with `scripts/harness up`."
        );
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("bench-avro-{nanos}");
    let (v1, v2) = (schema("ingest_event_v1"), schema("ingest_event_v2"));
    let ser = AvroSerializer::new(client.clone(), &config, RecordPart::Value, &v2).unwrap();
    let ser_v1 = AvroSerializer::new(client.clone(), &config, RecordPart::Value, &v1).unwrap();
    let de = AvroDeserializer::new(client.clone());
    let de_v2 = AvroDeserializer::with_reader_schema(client.clone(), &v2).unwrap();

    // Warm every cache once.
    let bytes = rt.block_on(ser.serialize(&topic, &value(1))).unwrap();
    let v1_json = r#"{"event_id":1,"timestamp":1.7e9,"status":"ok","data":{"sensor":"sensor-17","value":21.5}}"#;
    let bytes_v1 = rt.block_on(ser_v1.serialize_json(&topic, v1_json)).unwrap();
    rt.block_on(de.deserialize(&bytes)).unwrap();
    rt.block_on(de_v2.deserialize(&bytes_v1)).unwrap();
    let warm = client.request_count();

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("avro");
    g.throughput(Throughput::Elements(1));
    let v = value(7);
    g.bench_function("serialize_value", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(ser.serialize(&topic, black_box(&v)).await.unwrap());
            })
        })
    });
    let e = event(7);
    g.bench_function("serialize_serde", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(ser.serialize_serde(&topic, black_box(&e)).await.unwrap());
            })
        })
    });
    g.bench_function("deserialize_value", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(de.deserialize(black_box(&bytes)).await.unwrap());
            })
        })
    });
    g.bench_function("deserialize_serde", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(
                    de.deserialize_into::<IngestEvent>(black_box(&bytes))
                        .await
                        .unwrap(),
                );
            })
        })
    });
    g.bench_function("deserialize_resolve_v1_to_v2", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(de_v2.deserialize(black_box(&bytes_v1)).await.unwrap());
            })
        })
    });
    g.finish();
    c.final_summary();

    assert_eq!(
        client.request_count(),
        warm,
        "the measured loops made HTTP requests"
    );
    eprintln!(
        "record size: {} bytes (v2), {} bytes (v1); HTTP requests after warm-up: 0",
        bytes.len(),
        bytes_v1.len()
    );
    rt.block_on(client.delete_subject(&format!("{topic}-value"), true))
        .unwrap();
}
