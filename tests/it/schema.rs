//! Schema registry + Avro against the real registry (Apicurio's ccompat API
//! from `scripts/harness up`) and the real broker; the offline checker
//! against Apache Avro's reference verdicts.
//!
//! Tests that change compatibility levels use their own subjects; the global
//! level is only ever re-set to the value it already has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use kafka_ingest::schema_registry::apache_avro::schema::{
    InnerDecimalSchema, Name, ResolvedSchema, UuidSchema,
};
use kafka_ingest::schema_registry::apache_avro::types::Value;
use kafka_ingest::schema_registry::apache_avro::{Decimal, Schema, Uuid};
use kafka_ingest::schema_registry::compat::{
    can_read, check_compatibility, CompatibilityLevel, IncompatibilityKind,
};
use kafka_ingest::schema_registry::{
    check_value, decode_datum, encode_datum, parse_schema, AvroDeserializer, AvroSerializer, Error,
    RecordPart, SchemaRegistryClient, SchemaRegistryConfig, Version,
};
use kafka_ingest::{Consumer, OffsetSpec, Producer, ProducerRecord, TopicPartition};
use serde_json::{json, Value as Json};

use crate::support::{bootstrap, client, create_topic, unique};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".to_owned())
}

fn config() -> SchemaRegistryConfig {
    SchemaRegistryConfig::new(&registry_url())
}

/// A client for the harness registry, or a failure that says how to start it.
async fn registry() -> SchemaRegistryClient {
    let url = registry_url();
    let c = SchemaRegistryClient::new(&config())
        .unwrap_or_else(|e| panic!("bad SCHEMA_REGISTRY_URL {url}: {e}"));
    if let Err(e) = c.global_compatibility().await {
        panic!("schema registry is not reachable at {url}: {e}\nStart it with `scripts/harness up` (or run `scripts/test`).");
    }
    c
}

fn schema_file(name: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/schemas/{name}.avsc")).unwrap()
}

fn evolution() -> [(&'static str, String); 4] {
    [
        "ingest_event_v1",
        "ingest_event_v2",
        "ingest_event_v3",
        "ingest_event_incompatible",
    ]
    .map(|n| (n, schema_file(n)))
}

// ------------------------------------------------------------------ offline: the reference corpus

struct Pair {
    name: String,
    reader: Schema,
    writer: Schema,
    /// Java's verdicts: reader reads writer, writer reads reader.
    java: [String; 2],
}

fn corpus() -> Vec<Pair> {
    let dir = format!("{ROOT}/tests/fixtures/avro-compat");
    let pairs: Vec<Json> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/pairs.json")).unwrap())
            .unwrap();
    let verdicts: Vec<Json> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/verdicts.json")).unwrap())
            .unwrap();
    assert_eq!(
        pairs.len(),
        verdicts.len(),
        "regenerate with scripts/gen-avro-compat-verdicts"
    );
    pairs
        .iter()
        .zip(&verdicts)
        .map(|(p, v)| {
            let name = p["name"].as_str().unwrap().to_owned();
            assert_eq!(
                v["name"].as_str(),
                Some(name.as_str()),
                "verdicts out of date: run scripts/gen-avro-compat-verdicts"
            );
            let parse = |j: &Json| {
                Schema::parse_str(&j.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"))
            };
            let verdict = |k: &str| v[k]["verdict"].as_str().unwrap().to_owned();
            Pair {
                reader: parse(&p["reader"]),
                writer: parse(&p["writer"]),
                java: [
                    verdict("reader_reads_writer"),
                    verdict("writer_reads_reader"),
                ],
                name,
            }
        })
        .collect()
}

/// Avro's Java checker throws where a reader field's aliases match two
/// writer fields; it cannot read that data, so the local verdict is
/// "incompatible" (see src/schema_registry/README.md).
fn java_compatible(verdict: &str) -> bool {
    match verdict {
        "COMPATIBLE" => true,
        "INCOMPATIBLE" | "ERROR" => false,
        other => panic!("unknown verdict {other}"),
    }
}

#[test]
fn local_checker_agrees_with_avro_reference_checker() {
    let corpus = corpus();
    assert!(corpus.len() >= 60, "corpus has {} pairs", corpus.len());
    let mut disagreements = Vec::new();
    let mut kinds = HashSet::new();
    let (mut yes, mut no) = (0, 0);
    for p in &corpus {
        for (dir, (r, w)) in [(&p.reader, &p.writer), (&p.writer, &p.reader)]
            .into_iter()
            .enumerate()
        {
            let ours = can_read(r, w);
            kinds.extend(ours.iter().map(|i| i.kind));
            let java = java_compatible(&p.java[dir]);
            if java {
                yes += 1
            } else {
                no += 1
            }
            if ours.is_empty() != java {
                let which = ["reader<-writer", "writer<-reader"][dir];
                disagreements.push(format!(
                    "{} ({which}): Avro says {}, we say {:?}",
                    p.name, p.java[dir], ours
                ));
            }
            for i in &ours {
                assert!(
                    i.path.starts_with('/') && !i.message.is_empty(),
                    "{}: {i:?}",
                    p.name
                );
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Avro:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    use IncompatibilityKind::*;
    for k in [
        TypeMismatch,
        NameMismatch,
        FixedSizeMismatch,
        MissingEnumSymbols,
        ReaderFieldMissingDefault,
        MissingUnionBranch,
        AmbiguousField,
    ] {
        assert!(kinds.contains(&k), "corpus never exercises {k:?}");
    }
    assert!(
        yes > 60 && no > 60,
        "{yes} compatible, {no} incompatible directions"
    );
}

/// A random value of `schema` (depth-limited through recursion). Strings
/// are UUIDs when `uuids` (a reader `uuid` rejects other strings).
fn random_value(
    schema: &Schema,
    names: &HashMap<Name, &Schema>,
    rng: &mut fastrand::Rng,
    depth: usize,
    uuids: bool,
) -> Value {
    let go = |s: &Schema, rng: &mut fastrand::Rng| random_value(s, names, rng, depth + 1, uuids);
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.bool()),
        Schema::Int => Value::Int(rng.i32(..)),
        Schema::Long => Value::Long(rng.i64(..)),
        Schema::Float => Value::Float(rng.f32() * 1e6 - 5e5),
        Schema::Double => Value::Double(rng.f64() * 1e12 - 5e11),
        Schema::Bytes => Value::Bytes((0..rng.usize(0..8)).map(|_| rng.u8(..)).collect()),
        Schema::String if uuids => Value::String(Uuid::from_u128(rng.u128(..)).to_string()),
        Schema::String => Value::String(
            (0..rng.usize(0..8))
                .map(|_| rng.alphanumeric())
                .collect::<String>()
                + "é",
        ),
        Schema::Array(a) => Value::Array(
            (0..if depth > 4 { 0 } else { rng.usize(0..3) })
                .map(|_| go(&a.items, rng))
                .collect(),
        ),
        Schema::Map(m) => Value::Map(
            (0..if depth > 4 { 0 } else { rng.usize(0..3) })
                .map(|i| (format!("k{i}"), go(&m.types, rng)))
                .collect(),
        ),
        Schema::Union(u) => {
            let vs = u.variants();
            // Deep down, take the null branch if there is one (ends recursion).
            let null = vs.iter().position(|s| matches!(s, Schema::Null));
            let i = match null {
                Some(n) if depth > 4 => n,
                _ => rng.usize(0..vs.len()),
            };
            Value::Union(i as u32, Box::new(go(&vs[i], rng)))
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| (f.name.clone(), go(&f.schema, rng)))
                .collect(),
        ),
        Schema::Enum(e) => {
            let i = rng.usize(0..e.symbols.len());
            Value::Enum(i as u32, e.symbols[i].clone())
        }
        Schema::Fixed(f) => Value::Fixed(f.size, (0..f.size).map(|_| rng.u8(..)).collect()),
        Schema::Decimal(d) => {
            let n = match &d.inner {
                InnerDecimalSchema::Fixed(f) => f.size,
                InnerDecimalSchema::Bytes => 3,
            };
            Value::Decimal(Decimal::from(
                (0..n).map(|_| rng.u8(..)).collect::<Vec<u8>>(),
            ))
        }
        Schema::Uuid(UuidSchema::String) => Value::Uuid(Uuid::from_u128(rng.u128(..))),
        Schema::Date => Value::Date(rng.i32(..)),
        Schema::TimestampMillis => Value::TimestampMillis(rng.i64(..)),
        Schema::TimestampMicros => Value::TimestampMicros(rng.i64(..)),
        Schema::Ref { name } => go(names[name], rng),
        other => panic!("corpus uses {other:?}; teach random_value about it"),
    }
}

#[test]
fn read_time_resolution_accepts_what_the_checker_accepts() {
    let mut rng = fastrand::Rng::with_seed(20261128);
    let mut resolved = 0;
    for p in corpus() {
        for (dir, (r, w)) in [(&p.reader, &p.writer), (&p.writer, &p.reader)]
            .into_iter()
            .enumerate()
        {
            if !can_read(r, w).is_empty() {
                continue;
            }
            let resolved_w = ResolvedSchema::try_from(w).unwrap();
            for _ in 0..20 {
                let value = random_value(
                    w,
                    resolved_w.get_names(),
                    &mut rng,
                    0,
                    matches!(r, Schema::Uuid(_)),
                );
                let body = encode_datum(w, &value)
                    .unwrap_or_else(|e| panic!("{} ({dir}): encode: {e}", p.name));
                assert_eq!(
                    decode_datum(w, None, &body).unwrap(),
                    value,
                    "{}: decode is the inverse of encode",
                    p.name
                );
                let out = decode_datum(w, Some(r), &body)
                    .unwrap_or_else(|e| panic!("{} ({dir}): {e}", p.name));
                check_value(&out, r)
                    .unwrap_or_else(|e| panic!("{} ({dir}): resolved value invalid: {e}", p.name));
                resolved += 1;
            }
        }
    }
    assert!(resolved > 1000, "{resolved}");
}

#[test]
fn schemas_directory_evolution_offline() {
    let [v1, v2, v3, bad] = evolution().map(|(_, s)| parse_schema(&s, None).unwrap());
    use CompatibilityLevel as L;
    let ok = |l, new: &Schema, prev: &[&Schema]| {
        let prev: Vec<Schema> = prev.iter().map(|s| (*s).clone()).collect();
        check_compatibility(l, new, &prev).is_compatible()
    };
    for l in CompatibilityLevel::ALL {
        assert!(ok(l, &v2, &[&v1]), "v2 passes {l}");
    }
    let v3_passes: Vec<_> = CompatibilityLevel::ALL
        .into_iter()
        .filter(|l| ok(*l, &v3, &[&v1, &v2]))
        .collect();
    assert_eq!(
        v3_passes,
        vec![L::None, L::Backward],
        "v3: backward against v2 only"
    );
    let bad_passes: Vec<_> = CompatibilityLevel::ALL
        .into_iter()
        .filter(|l| ok(*l, &bad, &[&v1, &v2]))
        .collect();
    assert_eq!(bad_passes, vec![L::None]);
    let r = check_compatibility(L::Backward, &bad, std::slice::from_ref(&v2));
    let paths: Vec<String> = r
        .problems
        .iter()
        .map(|p| p.incompatibility.to_string())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/fields/data/fields/unit: ")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/fields/event_id: ")),
        "{paths:?}"
    );
}

// ------------------------------------------------------------------ the real registry

#[tokio::test]
async fn registry_rest_api_and_typed_errors() {
    let _bound = crate::support::watchdog("schema::registry_rest_api_and_typed_errors", 300);
    let reg = registry().await;
    let subject = unique("sr-api");
    let [(_, v1), (_, v2), _, (_, bad)] = evolution();
    reg.set_subject_compatibility(&subject, CompatibilityLevel::Backward)
        .await
        .unwrap();

    let id1 = reg.register(&subject, &v1).await.unwrap();
    let fresh = SchemaRegistryClient::new(&config()).unwrap();
    assert_eq!(
        fresh.register(&subject, &v1).await.unwrap(),
        id1,
        "registering again returns the same id"
    );
    let id2 = reg.register(&subject, &v2).await.unwrap();
    assert_ne!(id1, id2);

    let fetched = fresh.schema_by_id(id1).await.unwrap();
    assert_eq!(
        parse_schema(&fetched, None).unwrap(),
        parse_schema(&v1, None).unwrap()
    );
    let latest = fresh.latest(&subject).await.unwrap();
    assert_eq!(
        (latest.subject.as_str(), latest.id, latest.version),
        (subject.as_str(), id2, 2)
    );
    assert_eq!(
        fresh
            .version(&subject, Version::Number(1))
            .await
            .unwrap()
            .id,
        id1
    );
    assert_eq!(fresh.versions(&subject).await.unwrap(), vec![1, 2]);
    assert!(fresh.subjects().await.unwrap().contains(&subject));
    assert_eq!(fresh.lookup(&subject, &v1).await.unwrap().version, 1);

    // Typed errors, from the registry's codes.
    let e = fresh
        .version(&subject, Version::Number(9))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::VersionNotFound { version, .. } if version == "9"),
        "{e}"
    );
    assert_eq!(e.code(), Some(40402));
    let e = fresh.versions(&unique("sr-none")).await.unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound { .. }), "{e}");
    let e = fresh.schema_by_id(i32::MAX as u32).await.unwrap_err();
    assert!(
        matches!(e, Error::SchemaNotFound { .. }) && e.code() == Some(40403),
        "{e}"
    );
    let e = fresh.lookup(&subject, &bad).await.unwrap_err();
    assert!(matches!(e, Error::SchemaNotFound { .. }), "{e}");
    let e = fresh
        .register(&subject, r#"{"type":"recxord"}"#)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidSchema { .. }) && e.code() == Some(42201),
        "{e}"
    );
    let e = fresh.register(&subject, &bad).await.unwrap_err();
    assert!(
        matches!(&e, Error::IncompatibleSchema { subject: s, .. } if *s == subject),
        "{e}"
    );
    assert_eq!(e.code(), Some(409));

    assert_eq!(
        reg.delete_subject(&subject, true).await.unwrap(),
        vec![1, 2]
    );
    let e = fresh.versions(&subject).await.unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound { .. }), "{e}");
    let _ = reg.delete_subject_compatibility(&subject).await;
}

#[tokio::test]
async fn compatibility_levels_global_and_per_subject() {
    let _bound =
        crate::support::watchdog("schema::compatibility_levels_global_and_per_subject", 300);
    let reg = registry().await;
    let subject = unique("sr-config");
    reg.register(&subject, &schema_file("ingest_event_v1"))
        .await
        .unwrap();
    for level in CompatibilityLevel::ALL {
        assert_eq!(
            reg.set_subject_compatibility(&subject, level)
                .await
                .unwrap(),
            level
        );
        assert_eq!(
            reg.subject_compatibility(&subject).await.unwrap(),
            Some(level)
        );
    }
    reg.delete_subject_compatibility(&subject).await.unwrap();
    // Tests run concurrently: set the global level only to what it already is.
    let global = reg.global_compatibility().await.unwrap();
    assert_eq!(reg.set_global_compatibility(global).await.unwrap(), global);
    assert_eq!(reg.global_compatibility().await.unwrap(), global);
    reg.delete_subject(&subject, true).await.unwrap();
}

/// Every level: walk v1 -> v2 -> v3 -> incompatible, registering what the
/// registry accepts; the local checker must give the same verdict each step.
#[tokio::test]
async fn schemas_evolution_local_checker_agrees_with_registry() {
    let _bound = crate::support::watchdog(
        "schema::schemas_evolution_local_checker_agrees_with_registry",
        300,
    );
    let reg = registry().await;
    let files = evolution();
    let mut table = Vec::new();
    for level in CompatibilityLevel::ALL {
        let subject = unique(&format!("sr-evo-{}", level.as_str().to_lowercase()));
        reg.set_subject_compatibility(&subject, level)
            .await
            .unwrap();
        let mut registered: Vec<Schema> = Vec::new();
        for (name, text) in &files {
            let schema = parse_schema(text, Some(name)).unwrap();
            let local = check_compatibility(level, &schema, &registered);
            let asked = if registered.is_empty() {
                None
            } else {
                let latest = reg
                    .test_compatibility(&subject, text, Version::Latest)
                    .await
                    .unwrap()
                    .is_compatible;
                let all = reg
                    .test_compatibility_all(&subject, text)
                    .await
                    .unwrap()
                    .is_compatible;
                Some((latest, all))
            };
            // Apicurio's endpoints: `/versions/latest` checks the latest only, `/versions`
            // checks every version (Confluent's follows the level); registering follows the level.
            let one =
                check_compatibility(non_transitive(level), &schema, &registered).is_compatible();
            let every =
                check_compatibility(transitive(level), &schema, &registered).is_compatible();
            if let Some(asked) = asked {
                assert_eq!(
                    asked,
                    (one, every),
                    "{level} {name}: endpoints (latest, all) vs local"
                );
            }
            let outcome = reg.register(&subject, text).await;
            let accepted = match &outcome {
                Ok(_) => true,
                Err(Error::IncompatibleSchema { .. }) => false,
                Err(e) => panic!("{level} {name}: {e}"),
            };
            table.push(format!(
                "{level:>20} {name:<26} local={} registry={accepted} endpoints(latest,all)={asked:?}",
                local.is_compatible()
            ));
            assert_eq!(
                local.is_compatible(),
                accepted,
                "{level} {name}: local {:?}",
                local.problems
            );
            if accepted {
                registered.push(schema);
            }
        }
        reg.delete_subject(&subject, true).await.unwrap();
        let _ = reg.delete_subject_compatibility(&subject).await;
    }
    eprintln!("{}", table.join("\n"));
}

fn non_transitive(l: CompatibilityLevel) -> CompatibilityLevel {
    use CompatibilityLevel as L;
    match l {
        L::BackwardTransitive => L::Backward,
        L::ForwardTransitive => L::Forward,
        L::FullTransitive => L::Full,
        other => other,
    }
}

fn transitive(l: CompatibilityLevel) -> CompatibilityLevel {
    use CompatibilityLevel as L;
    match l {
        L::Backward => L::BackwardTransitive,
        L::Forward => L::ForwardTransitive,
        L::Full => L::FullTransitive,
        other => other,
    }
}

#[tokio::test]
async fn steady_state_serde_makes_zero_http_calls() {
    let _bound = crate::support::watchdog("schema::steady_state_serde_makes_zero_http_calls", 300);
    let reg = registry().await;
    let topic = unique("sr-warm");
    let v2 = schema_file("ingest_event_v2");
    let ser = AvroSerializer::new(reg.clone(), &config(), RecordPart::Value, &v2).unwrap();
    let keys = AvroSerializer::new(reg.clone(), &config(), RecordPart::Key, r#""string""#).unwrap();
    let de = AvroDeserializer::with_reader_schema(reg.clone(), &v2).unwrap();
    let record = |i: i64| {
        json!({"event_id": i, "timestamp": 1.7e9, "status": "ok", "data": {"sensor": "t1", "value": 20.5}, "source": {"string": "lab"}})
            .to_string()
    };
    // Warm up: register value and key schemas, fetch the writer schema once.
    let b = ser.serialize_json(&topic, &record(0)).await.unwrap();
    de.deserialize(&b).await.unwrap();
    keys.serialize(&topic, &Value::String("k".into()))
        .await
        .unwrap();
    let warm = reg.request_count();
    assert!(warm >= 3, "{warm}");
    let key_de = AvroDeserializer::new(reg.clone());
    for i in 0..1_000 {
        let b = ser.serialize_json(&topic, &record(i)).await.unwrap();
        let k = keys
            .serialize(&topic, &Value::String(format!("k{i}")))
            .await
            .unwrap();
        let json: Json = serde_json::from_str(&de.deserialize_json(&b).await.unwrap()).unwrap();
        assert_eq!(json["event_id"], json!(i));
        // key_de was made after warm-up: its first miss is served from the client's cache.
        assert_eq!(
            key_de.deserialize(&k).await.unwrap(),
            Value::String(format!("k{i}"))
        );
    }
    assert_eq!(
        reg.request_count(),
        warm,
        "the warm path made HTTP requests"
    );
    for s in [format!("{topic}-value"), format!("{topic}-key")] {
        reg.delete_subject(&s, true).await.unwrap();
    }
}

#[tokio::test]
async fn bad_bytes_and_bad_values_are_typed_errors() {
    let _bound = crate::support::watchdog("schema::bad_bytes_and_bad_values_are_typed_errors", 300);
    let reg = registry().await;
    let topic = unique("sr-bad");
    let v1 = schema_file("ingest_event_v1");
    let ser = AvroSerializer::new(reg.clone(), &config(), RecordPart::Value, &v1).unwrap();
    let de = AvroDeserializer::new(reg.clone());
    let good = ser
        .serialize_json(
            &topic,
            r#"{"event_id":1,"timestamp":2.5,"status":"ok","data":{"sensor":"s","value":1}}"#,
        )
        .await
        .unwrap();
    de.deserialize(&good).await.unwrap();

    let e = de.deserialize(br#"{"event_id":1}"#).await.unwrap_err();
    assert!(
        matches!(e, Error::WireFormat(_)) && e.to_string().contains("magic byte"),
        "{e}"
    );
    let mut unknown = good.to_vec();
    unknown[1..5].copy_from_slice(&(i32::MAX as u32).to_be_bytes());
    let e = de.deserialize(&unknown).await.unwrap_err();
    assert!(matches!(e, Error::SchemaNotFound { .. }), "{e}");
    for cut in [5, 6, 10, good.len() - 1] {
        let e = de.deserialize(&good[..cut]).await.unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "cut {cut}: {e}");
    }
    let mut garbage = good[..5].to_vec();
    garbage.extend([0xff; 12]);
    assert!(matches!(
        de.deserialize(&garbage).await.unwrap_err(),
        Error::Decode { .. }
    ));
    // A body written with another schema under v1's id.
    let other = parse_schema(
        r#"{"type":"record","name":"O","fields":[{"name":"s","type":"string"}]}"#,
        None,
    )
    .unwrap();
    let mut mismatched = good[..5].to_vec();
    mismatched.extend(
        encode_datum(
            &other,
            &Value::Record(vec![("s".into(), Value::String("x".repeat(40)))]),
        )
        .unwrap(),
    );
    assert!(matches!(
        de.deserialize(&mismatched).await.unwrap_err(),
        Error::Decode { .. }
    ));

    // Values that do not conform are refused before anything is encoded.
    let before = reg.request_count();
    let e = ser
        .serialize_json(
            &topic,
            r#"{"event_id":"x","timestamp":2.5,"status":"ok","data":{"sensor":"s","value":1}}"#,
        )
        .await;
    assert!(matches!(e, Err(Error::Json(_))), "{e:?}");
    let bad_value = Value::Record(vec![("event_id".into(), Value::Long(1))]);
    let e = ser.serialize(&topic, &bad_value).await.unwrap_err();
    assert!(matches!(e, Error::NotConforming { .. }), "{e}");
    assert_eq!(reg.request_count(), before);
    reg.delete_subject(&format!("{topic}-value"), true)
        .await
        .unwrap();
}

#[tokio::test]
async fn subject_strategies_and_serializer_modes() {
    let _bound = crate::support::watchdog("schema::subject_strategies_and_serializer_modes", 300);
    let reg = registry().await;
    let topic = unique("sr-strat");
    // A unique record name: RecordNameStrategy subjects are shared across topics.
    let ns = topic.replace('-', "_");
    let schema = format!(
        r#"{{"type":"record","name":"Reading","namespace":"{ns}","fields":[{{"name":"v","type":"double"}}]}}"#
    );
    let value = Value::Record(vec![("v".into(), Value::Double(1.5))]);

    let mut cfg = config();
    cfg.set("value.subject.name.strategy", "RecordNameStrategy")
        .unwrap();
    let ser = AvroSerializer::new(reg.clone(), &cfg, RecordPart::Value, &schema).unwrap();
    assert_eq!(ser.subject(&topic).unwrap(), format!("{ns}.Reading"));
    let id = ser.schema_id(&topic).await.unwrap();
    assert_eq!(reg.latest(&format!("{ns}.Reading")).await.unwrap().id, id);

    cfg.set(
        "value.subject.name.strategy",
        "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
    )
    .unwrap();
    let ser = AvroSerializer::new(reg.clone(), &cfg, RecordPart::Value, &schema).unwrap();
    assert_eq!(
        ser.subject(&topic).unwrap(),
        format!("{topic}-{ns}.Reading")
    );
    ser.serialize(&topic, &value).await.unwrap();

    // auto.register.schemas=false: an unregistered schema is an error, a registered one is looked up.
    let mut cfg = config();
    cfg.set("auto.register.schemas", "false").unwrap();
    let ser = AvroSerializer::new(reg.clone(), &cfg, RecordPart::Value, &schema).unwrap();
    let e = ser.serialize(&topic, &value).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::SubjectNotFound { .. } | Error::SchemaNotFound { .. }
        ),
        "{e}"
    );
    let registered = reg
        .register(&format!("{topic}-value"), &schema)
        .await
        .unwrap();
    let bytes = ser.serialize(&topic, &value).await.unwrap();
    assert_eq!(&bytes[1..5], &registered.to_be_bytes());

    // use.latest.version: written with the subject's latest schema and id.
    let schema2 = schema.replace(
        r#"}]}"#,
        r#"},{"name":"unit","type":"string","default":"C"}]}"#,
    );
    let latest = reg
        .register(&format!("{topic}-value"), &schema2)
        .await
        .unwrap();
    let mut cfg = config();
    cfg.set("use.latest.version", "true").unwrap();
    cfg.set("auto.register.schemas", "false").unwrap();
    let ser = AvroSerializer::new(reg.clone(), &cfg, RecordPart::Value, &schema).unwrap();
    let bytes = ser.serialize_json(&topic, r#"{"v": 2.5}"#).await.unwrap();
    assert_eq!(&bytes[1..5], &latest.to_be_bytes());
    let back = AvroDeserializer::new(reg.clone())
        .deserialize_json(&bytes)
        .await
        .unwrap();
    assert_eq!(back, r#"{"unit":"C","v":2.5}"#);

    for s in [
        format!("{ns}.Reading"),
        format!("{topic}-{ns}.Reading"),
        format!("{topic}-value"),
    ] {
        reg.delete_subject(&s, true).await.unwrap();
    }
}

// ------------------------------------------------------------------ end to end through Kafka

#[derive(Debug, PartialEq, serde::Deserialize)]
struct SensorData {
    sensor: String,
    value: f64,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct IngestEventV2 {
    event_id: i64,
    timestamp: f64,
    status: String,
    data: SensorData,
    source: Option<String>,
}

async fn read_all(topic: &str, n: usize) -> Vec<kafka_ingest::ConsumerRecord> {
    let consumer = Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", &unique("sr-e2e-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .build()
        .await
        .unwrap_or_else(|e| panic!("consumer: {e}; is `scripts/harness up` running?"));
    consumer.subscribe(&[topic]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    consumer.close().await;
    assert_eq!(out.len(), n, "records read from {topic}");
    out.sort_by_key(|r| r.offset);
    out
}

#[tokio::test]
async fn end_to_end_evolution_through_kafka() {
    let _bound = crate::support::watchdog("schema::end_to_end_evolution_through_kafka", 300);
    let reg = registry().await;
    let topic = unique("sr-e2e");
    create_topic(&topic, 1).await;
    let subject = format!("{topic}-value");
    reg.set_subject_compatibility(&subject, CompatibilityLevel::Backward)
        .await
        .unwrap();
    let [(_, v1), (_, v2), _, (_, bad)] = evolution();
    let producer = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    let keys = AvroSerializer::new(reg.clone(), &config(), RecordPart::Key, r#""long""#).unwrap();

    let send = |ser: AvroSerializer, from: i64, source: bool| {
        let (producer, keys, topic) = (producer.clone(), &keys, topic.clone());
        async move {
            for i in from..from + 5 {
                let mut event = json!({"event_id": i, "timestamp": 1.7e9 + i as f64, "status": "ok",
                    "data": {"sensor": format!("s{i}"), "value": i as f64 / 2.0}});
                if source {
                    event["source"] = json!({"string": format!("gw{i}")});
                }
                let value = ser
                    .serialize_json(&topic, &event.to_string())
                    .await
                    .unwrap();
                let key = keys.serialize(&topic, &Value::Long(i)).await.unwrap();
                producer
                    .send(ProducerRecord::new(&topic).key(key).value(value))
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    };
    // Generation 1, then evolve to v2 under BACKWARD.
    send(
        AvroSerializer::new(reg.clone(), &config(), RecordPart::Value, &v1).unwrap(),
        0,
        false,
    )
    .await;
    send(
        AvroSerializer::new(reg.clone(), &config(), RecordPart::Value, &v2).unwrap(),
        5,
        true,
    )
    .await;
    assert_eq!(reg.versions(&subject).await.unwrap(), vec![1, 2]);

    // The incompatible variant: refused by the registry, surfaced before anything is sent.
    let tp = TopicPartition::new(&topic, 0);
    let admin = client().await.admin();
    let end = |m: BTreeMap<TopicPartition, kafka_ingest::ListedOffset>| m[&tp].offset;
    let before = end(admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap());
    let bad_ser = AvroSerializer::new(reg.clone(), &config(), RecordPart::Value, &bad).unwrap();
    let event = json!({"event_id": "x", "timestamp": 1.0, "status": "ok", "data": {"sensor": "s", "value": 1.0, "unit": "C"}});
    let e = bad_ser
        .serialize_json(&topic, &event.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::IncompatibleSchema { subject: s, .. } if *s == subject),
        "{e}"
    );
    assert!(
        e.to_string().contains("incompatible") && e.to_string().contains(&subject),
        "{e}"
    );
    let after = end(admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Latest)])
        .await
        .unwrap());
    assert_eq!((before, after), (10, 10), "nothing was sent");

    let records = read_all(&topic, 10).await;
    let key_de = AvroDeserializer::new(reg.clone());
    // A v2 reader reads both generations; v1 data gets the default source.
    let de2 = AvroDeserializer::with_reader_schema(reg.clone(), &v2).unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            key_de.deserialize(r.key.as_deref().unwrap()).await.unwrap(),
            Value::Long(i as i64)
        );
        let e: IngestEventV2 = de2
            .deserialize_into(r.value.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(e.event_id, i as i64);
        assert_eq!(
            e.data,
            SensorData {
                sensor: format!("s{i}"),
                value: i as f64 / 2.0
            }
        );
        assert_eq!(e.source, (i >= 5).then(|| format!("gw{i}")));
    }
    // A v1 reader reads v2 data (forward compatibility): `source` is dropped.
    let de1 = AvroDeserializer::with_reader_schema(reg.clone(), &v1).unwrap();
    for (i, r) in records.iter().enumerate() {
        let json: Json = serde_json::from_str(
            &de1.deserialize_json(r.value.as_deref().unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["event_id"], json!(i));
        assert!(json.get("source").is_none(), "{json}");
    }
    producer.close(Duration::from_secs(5)).await;
    for s in [subject.clone(), format!("{topic}-key")] {
        reg.delete_subject(&s, true).await.unwrap();
    }
    let _ = reg.delete_subject_compatibility(&subject).await;
}
