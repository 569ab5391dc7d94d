//! Avro serializer and deserializer in the Confluent wire format.

use std::fmt;
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cache::FlightCache;
use super::client::SchemaRegistryClient;
use super::config::{RecordPart, SchemaRegistryConfig, SubjectNameStrategy};
use super::decode::decode;
use super::error::{Error, Result};
use super::json::{json_text_to_value, value_to_json};
use super::resolve::resolve;
use super::wire;

/// Parses an Avro schema, naming `context` (a file, a subject...) on failure.
pub fn parse_schema(text: &str, context: Option<&str>) -> Result<Schema> {
    Schema::parse_str(text).map_err(|e| Error::parse(context.map(str::to_owned), e))
}

fn schema_label(schema: &Schema) -> String {
    schema.name().map(|n| n.fullname(None)).unwrap_or_else(|| {
        serde_json::to_string(schema)
            .unwrap_or_else(|_| "?".into())
            .chars()
            .take(60)
            .collect()
    })
}

#[derive(Clone)]
struct WriterSchema {
    id: u32,
    schema: Arc<Schema>,
}

/// Serializes Avro values or serde types for one schema, registering (or
/// looking up) the schema on first use per topic and caching the id.
///
/// ```no_run
/// # async fn demo() -> kafka_ingest::schema_registry::Result<()> {
/// use kafka_ingest::schema_registry::{AvroSerializer, RecordPart, SchemaRegistryClient, SchemaRegistryConfig};
/// let config = SchemaRegistryConfig::new("http://127.0.0.1:8081/apis/ccompat/v7");
/// let client = SchemaRegistryClient::new(&config)?;
/// let schema = r#"{"type":"record","name":"Reading","fields":[{"name":"value","type":"double"}]}"#;
/// let ser = AvroSerializer::new(client, &config, RecordPart::Value, schema)?;
/// #[derive(serde::Serialize)]
/// struct Reading { value: f64 }
/// let bytes = ser.serialize_serde("readings", &Reading { value: 1.5 }).await?; // 0x00, id, Avro body
/// # Ok(()) }
/// ```
pub struct AvroSerializer {
    client: SchemaRegistryClient,
    part: RecordPart,
    strategy: SubjectNameStrategy,
    auto_register: bool,
    use_latest: bool,
    schema: Arc<Schema>,
    text: String,
    full_name: Option<String>,
    topics: FlightCache<String, WriterSchema>,
}

impl fmt::Debug for AvroSerializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvroSerializer")
            .field("part", &self.part)
            .field("strategy", &self.strategy)
            .field("schema", &schema_label(&self.schema))
            .finish_non_exhaustive()
    }
}

impl AvroSerializer {
    /// A serializer for `schema` (Avro JSON text), for keys or values.
    /// `config` supplies `auto.register.schemas`, `use.latest.version` and the
    /// subject name strategy.
    pub fn new(
        client: SchemaRegistryClient,
        config: &SchemaRegistryConfig,
        part: RecordPart,
        schema: &str,
    ) -> Result<Self> {
        let parsed = parse_schema(schema, Some("serializer schema"))?;
        // Registered text: compact JSON of what the application gave (defaults, docs and aliases kept).
        let text = serde_json::from_str::<serde_json::Value>(schema)
            .map(|j| j.to_string())
            .map_err(|e| Error::parse(Some("serializer schema".into()), e))?;
        Ok(AvroSerializer {
            full_name: parsed.name().map(|n| n.fullname(None)),
            client,
            part,
            strategy: config.strategy(part),
            auto_register: config.auto_register_schemas,
            use_latest: config.use_latest_version,
            schema: Arc::new(parsed),
            text,
            topics: FlightCache::new(config.cache_capacity),
        })
    }

    /// The application's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The subject this serializer uses for `topic`.
    pub fn subject(&self, topic: &str) -> Result<String> {
        self.strategy
            .subject(topic, self.part, self.full_name.as_deref())
    }

    /// The schema id written for `topic` (registering or looking up on first use).
    pub async fn schema_id(&self, topic: &str) -> Result<u32> {
        Ok(self.writer(topic).await?.id)
    }

    async fn writer(&self, topic: &str) -> Result<WriterSchema> {
        self.topics
            .get_or_load(topic, || async {
                let subject = self.subject(topic)?;
                if self.use_latest {
                    let latest = self.client.latest_cached(&subject).await?;
                    let ctx = format!("latest version of subject `{subject}`");
                    let schema = parse_schema(&latest.schema, Some(&ctx))?;
                    return Ok(WriterSchema {
                        id: latest.id,
                        schema: Arc::new(schema),
                    });
                }
                let id = self
                    .client
                    .id_for(&subject, &self.text, self.auto_register)
                    .await?;
                Ok(WriterSchema {
                    id,
                    schema: self.schema.clone(),
                })
            })
            .await
    }

    /// Encodes an Avro value. A value that does not conform to the schema is
    /// an [`Error::NotConforming`] and nothing is registered.
    pub async fn serialize(&self, topic: &str, value: &Value) -> Result<Bytes> {
        let w = match self.topics.get(topic) {
            Some(w) => w,
            None => {
                // First use: reject a bad value before any registry traffic.
                if !self.use_latest {
                    check_value(value, &self.schema)?;
                }
                self.writer(topic).await?
            }
        };
        let mut buf = Vec::with_capacity(64);
        wire::write_header(w.id, &mut buf);
        let writer = GenericDatumWriter::builder(&w.schema)
            .build()
            .map_err(|e| Error::parse(None, e))?;
        writer
            .write_value_ref(&mut buf, value)
            .map_err(|e| not_conforming(value, &w.schema, e))?;
        Ok(Bytes::from(buf))
    }

    /// Encodes a serde value (a `#[derive(Serialize)]` struct whose fields
    /// match the schema's).
    pub async fn serialize_serde<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Bytes> {
        let mut buf = Vec::with_capacity(64);
        wire::write_header(0, &mut buf);
        if !self.use_latest {
            encode_serde(&self.schema, value, &mut buf)?;
        }
        let w = self.writer(topic).await?;
        if self.use_latest {
            encode_serde(&w.schema, value, &mut buf)?;
        }
        buf[1..wire::HEADER_LEN].copy_from_slice(&w.id.to_be_bytes());
        Ok(Bytes::from(buf))
    }

    /// Encodes a JSON text record (see [`super::json`] for the conventions).
    pub async fn serialize_json(&self, topic: &str, json: &str) -> Result<Bytes> {
        let schema = if self.use_latest {
            self.writer(topic).await?.schema
        } else {
            self.schema.clone()
        };
        let value = json_text_to_value(json, &schema)?;
        self.serialize(topic, &value).await
    }
}

/// Decodes one Avro binary datum (no wire header) written with `writer`,
/// resolved into `reader` when given. All bytes must be used.
pub fn decode_datum(writer: &Schema, reader: Option<&Schema>, body: &[u8]) -> Result<Value> {
    let mut rest = body;
    let value = decode(writer, &mut rest).map_err(|message| Error::Decode { id: None, message })?;
    if !rest.is_empty() {
        return Err(Error::Decode {
            id: None,
            message: format!(
                "{} bytes left after the Avro body (written with another schema?)",
                rest.len()
            ),
        });
    }
    match reader {
        Some(r) => {
            resolve(value, writer, r).map_err(|message| Error::Resolution { id: None, message })
        }
        None => Ok(value),
    }
}

/// Encodes one Avro binary datum (no wire header); the value must conform.
pub fn encode_datum(schema: &Schema, value: &Value) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let writer = GenericDatumWriter::builder(schema)
        .build()
        .map_err(|e| Error::parse(None, e))?;
    writer
        .write_value_ref(&mut buf, value)
        .map_err(|e| not_conforming(value, schema, e))?;
    Ok(buf)
}

fn encode_serde<T: Serialize + ?Sized>(
    schema: &Schema,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let writer = GenericDatumWriter::builder(schema)
        .build()
        .map_err(|e| Error::parse(None, e))?;
    writer
        .write_ser(buf, &value)
        .map(|_| ())
        .map_err(|e| Error::NotConforming {
            schema: schema_label(schema),
            message: e.to_string(),
        })
}

/// Checks `value` against `schema` with a path to the first problem.
pub fn check_value(value: &Value, schema: &Schema) -> Result<()> {
    // apache-avro decides; the JSON walk explains where.
    let names =
        apache_avro::schema::ResolvedSchema::try_from(schema).map_err(|e| Error::parse(None, e))?;
    if value.validate_with_names(schema, names.get_names()) {
        return Ok(());
    }
    Err(not_conforming(
        value,
        schema,
        "value does not match the schema",
    ))
}

fn not_conforming(value: &Value, schema: &Schema, e: impl fmt::Display) -> Error {
    let message = match value_to_json(value, schema) {
        Err(Error::Json(path_msg)) => path_msg,
        _ => e.to_string(),
    };
    Error::NotConforming {
        schema: schema_label(schema),
        message,
    }
}

#[derive(Clone)]
struct WriterEntry {
    schema: Arc<Schema>,
    /// Identical to the reader schema: no resolution needed.
    same_as_reader: bool,
}

/// Decodes wire-format bytes: fetches the writer schema by id (cached) and
/// resolves the data into the reader schema, if one is given.
pub struct AvroDeserializer {
    client: SchemaRegistryClient,
    reader: Option<Arc<Schema>>,
    writers: FlightCache<u32, WriterEntry>,
}

impl fmt::Debug for AvroDeserializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvroDeserializer")
            .field("reader", &self.reader.as_deref().map(schema_label))
            .finish_non_exhaustive()
    }
}

impl AvroDeserializer {
    /// A deserializer returning values in the writer's schema.
    pub fn new(client: SchemaRegistryClient) -> Self {
        let capacity = client.config().cache_capacity;
        AvroDeserializer {
            client,
            reader: None,
            writers: FlightCache::new(capacity),
        }
    }

    /// A deserializer resolving every value into `reader_schema` (schema
    /// evolution at read time).
    pub fn with_reader_schema(client: SchemaRegistryClient, reader_schema: &str) -> Result<Self> {
        let reader = parse_schema(reader_schema, Some("reader schema"))?;
        let mut d = Self::new(client);
        d.reader = Some(Arc::new(reader));
        Ok(d)
    }

    /// The reader schema, if any.
    pub fn reader_schema(&self) -> Option<&Schema> {
        self.reader.as_deref()
    }

    async fn writer(&self, id: u32) -> Result<WriterEntry> {
        self.writers
            .get_or_load(&id, || async {
                let text = self.client.schema_by_id(id).await?;
                let schema = parse_schema(&text, Some(&format!("writer schema id {id}")))?;
                // Full JSON, not Schema's PartialEq: that compares canonical forms, which drop logical types.
                let same_as_reader = self.reader.as_deref().is_some_and(|r| {
                    matches!((serde_json::to_value(r), serde_json::to_value(&schema)), (Ok(a), Ok(b)) if a == b)
                });
                Ok(WriterEntry { schema: Arc::new(schema), same_as_reader })
            })
            .await
    }

    /// The schema id and the decoded value.
    pub async fn deserialize_with_id(&self, bytes: &[u8]) -> Result<(u32, Value)> {
        let (id, body) = wire::split(bytes)?;
        let w = self.writer(id).await?;
        let reader = if w.same_as_reader {
            None
        } else {
            self.reader.as_deref()
        };
        let value = decode_datum(&w.schema, reader, body).map_err(|e| e.with_id(id))?;
        Ok((id, value))
    }

    /// Decodes to an Avro value (in the reader schema when one is set).
    pub async fn deserialize(&self, bytes: &[u8]) -> Result<Value> {
        Ok(self.deserialize_with_id(bytes).await?.1)
    }

    /// Decodes into a serde type (a `#[derive(Deserialize)]` struct).
    pub async fn deserialize_into<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (id, value) = self.deserialize_with_id(bytes).await?;
        apache_avro::from_value(&value).map_err(|e| Error::Resolution {
            id: Some(id),
            message: format!("into the Rust type: {e}"),
        })
    }

    /// Decodes to Avro JSON text (see [`super::json`] for the conventions).
    pub async fn deserialize_json(&self, bytes: &[u8]) -> Result<String> {
        let (id, value) = self.deserialize_with_id(bytes).await?;
        let schema = match &self.reader {
            Some(r) => r.clone(),
            None => self.writer(id).await?.schema,
        };
        Ok(value_to_json(&value, &schema)?.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_registry::client::tests::{client, Fake};
    use std::time::Duration;

    const V1: &str = r#"{"type":"record","name":"Event","namespace":"demo","fields":[
        {"name":"id","type":"int"},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["OK","BAD"]}},
        {"name":"note","type":["null","string"],"default":null}]}"#;
    // Renamed field (alias), promoted type, new enum symbol with a default, new field with a default.
    const V2: &str = r#"{"type":"record","name":"Event","namespace":"demo","fields":[
        {"name":"event_id","type":"long","aliases":["id"]},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["OK","BAD","UNKNOWN"],"default":"UNKNOWN"}},
        {"name":"note","type":["null","string","int"],"default":null},
        {"name":"unit","type":"string","default":"C"}]}"#;

    fn avro_body(schema: &Schema, v: Value) -> apache_avro::AvroResult<Vec<u8>> {
        GenericDatumWriter::builder(schema)
            .build()?
            .write_value_to_vec(v)
    }

    fn registry_with(ids: &[(u32, &str)]) -> Fake {
        let fake = Fake {
            delay: Duration::from_millis(20),
            ..Default::default()
        };
        for (id, schema) in ids {
            let body = serde_json::json!({ "schema": schema }).to_string();
            fake.route(
                "GET",
                &format!("/apis/ccompat/v7/schemas/ids/{id}"),
                &[(200, &body)],
            );
        }
        fake.route(
            "GET",
            "/apis/ccompat/v7/schemas/ids/99",
            &[(
                404,
                r#"{"error_code":40403,"message":"Schema 99 not found"}"#,
            )],
        );
        fake.route(
            "POST",
            "/apis/ccompat/v7/subjects/t-value/versions",
            &[(200, r#"{"id":1}"#)],
        );
        fake
    }

    fn v1_record(id: i32, status: &str, note: Option<&str>) -> Value {
        let i = if status == "OK" { 0 } else { 1 };
        Value::Record(vec![
            ("id".into(), Value::Int(id)),
            ("status".into(), Value::Enum(i, status.into())),
            (
                "note".into(),
                match note {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(n) => Value::Union(1, Box::new(Value::String(n.into()))),
                },
            ),
        ])
    }

    #[tokio::test]
    async fn round_trip_with_zero_requests_when_warm() {
        let fake = registry_with(&[(1, V1)]);
        let c = client(&fake.clone().start().await);
        let cfg = SchemaRegistryConfig::default();
        let ser = AvroSerializer::new(c.clone(), &cfg, RecordPart::Value, V1).unwrap();
        let de = AvroDeserializer::new(c.clone());
        let bytes = ser
            .serialize("t", &v1_record(7, "BAD", Some("x")))
            .await
            .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
        assert_eq!(
            de.deserialize(&bytes).await.unwrap(),
            v1_record(7, "BAD", Some("x"))
        );
        let warm = fake.count();
        assert_eq!(warm, 1, "one register; its answer also fills the id cache");
        for i in 0..200 {
            let b = ser.serialize("t", &v1_record(i, "OK", None)).await.unwrap();
            assert_eq!(de.deserialize(&b).await.unwrap(), v1_record(i, "OK", None));
        }
        assert_eq!(fake.count(), warm, "steady state makes no HTTP calls");
        assert_eq!(c.request_count(), warm as u64);
    }

    #[tokio::test]
    async fn concurrent_deserializer_misses_fetch_once() {
        let fake = registry_with(&[(1, V1)]);
        let c = client(&fake.clone().start().await);
        let de = Arc::new(AvroDeserializer::new(c));
        let mut body = Vec::new();
        wire::write_header(1, &mut body);
        body.extend(avro_body(&parse_schema(V1, None).unwrap(), v1_record(1, "OK", None)).unwrap());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (de, body) = (de.clone(), body.clone());
                tokio::spawn(async move { de.deserialize(&body).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(fake.count(), 1);
    }

    #[tokio::test]
    async fn evolution_at_read_time() {
        let fake = registry_with(&[(1, V1), (2, V2)]);
        let c = client(&fake.clone().start().await);
        let v1 = parse_schema(V1, None).unwrap();
        let v2 = parse_schema(V2, None).unwrap();
        let frame = |id: u32, schema: &Schema, v: Value| {
            let mut b = Vec::new();
            wire::write_header(id, &mut b);
            b.extend(avro_body(schema, v).unwrap());
            b
        };
        // v2 reads v1 data: alias, int->long, union widening, default.
        let de2 = AvroDeserializer::with_reader_schema(c.clone(), V2).unwrap();
        let json = de2
            .deserialize_json(&frame(1, &v1, v1_record(3, "BAD", Some("n"))))
            .await
            .unwrap();
        assert_eq!(
            json,
            r#"{"event_id":3,"note":{"string":"n"},"status":"BAD","unit":"C"}"#
        );
        // v1 reads v2 data: unknown symbol -> error (v1 has no default); a new union branch -> error.
        let de1 = AvroDeserializer::with_reader_schema(c.clone(), V1).unwrap();
        let v2_rec = |status: (u32, &str), note: Value| {
            Value::Record(vec![
                ("event_id".into(), Value::Long(9)),
                ("status".into(), Value::Enum(status.0, status.1.into())),
                ("note".into(), note),
                ("unit".into(), Value::String("K".into())),
            ])
        };
        let e = de1
            .deserialize(&frame(
                2,
                &v2,
                v2_rec((0, "OK"), Value::Union(0, Box::new(Value::Null))),
            ))
            .await;
        // v1 needs `id`, which v2 writes as `event_id` (aliases are the reader's): not forward compatible.
        let e = e.unwrap_err();
        assert!(
            matches!(e, Error::Resolution { id: Some(2), .. })
                && e.to_string().contains("/fields/id"),
            "{e}"
        );
        use crate::schema_registry::compat::can_read;
        assert!(!can_read(&v1, &v2).is_empty() && can_read(&v2, &v1).is_empty());
    }

    #[tokio::test]
    async fn bad_input_is_a_typed_error() {
        let fake = registry_with(&[(1, V1)]);
        let c = client(&fake.clone().start().await);
        let de = AvroDeserializer::new(c.clone());
        assert!(matches!(
            de.deserialize(b"{\"json\":1}").await,
            Err(Error::WireFormat(_))
        ));
        assert!(matches!(
            de.deserialize(&[0, 0]).await,
            Err(Error::WireFormat(_))
        ));
        let e = de.deserialize(&[0, 0, 0, 0, 99, 2]).await.unwrap_err();
        assert!(
            matches!(e, Error::SchemaNotFound { .. }) && e.to_string().contains("99"),
            "{e}"
        );
        let good = {
            let mut b = Vec::new();
            wire::write_header(1, &mut b);
            b.extend(
                avro_body(
                    &parse_schema(V1, None).unwrap(),
                    v1_record(1, "OK", Some("hello")),
                )
                .unwrap(),
            );
            b
        };
        for cut in 5..good.len() {
            let e = de.deserialize(&good[..cut]).await.unwrap_err();
            assert!(
                matches!(e, Error::Decode { id: Some(1), .. }),
                "cut {cut}: {e}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(de
            .deserialize(&trailing)
            .await
            .unwrap_err()
            .to_string()
            .contains("1 bytes left"));
        // Garbage bodies: errors or (rarely) values, never a panic.
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..5_000 {
            let mut b = vec![0, 0, 0, 0, 1];
            b.extend((0..rng.usize(0..24)).map(|_| rng.u8(..)));
            let _ = de.deserialize(&b).await;
        }
    }

    #[tokio::test]
    async fn non_conforming_values_are_rejected_before_any_request() {
        let fake = registry_with(&[(1, V1)]);
        let c = client(&fake.clone().start().await);
        let ser = AvroSerializer::new(
            c.clone(),
            &SchemaRegistryConfig::default(),
            RecordPart::Value,
            V1,
        )
        .unwrap();
        let bad = Value::Record(vec![
            ("id".into(), Value::String("seven".into())),
            ("status".into(), Value::Enum(0, "OK".into())),
            ("note".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        let e = ser.serialize("t", &bad).await.unwrap_err();
        assert!(
            matches!(e, Error::NotConforming { .. }) && e.to_string().contains("/id"),
            "{e}"
        );
        #[derive(serde::Serialize)]
        struct Wrong {
            id: String,
        }
        let e = ser
            .serialize_serde("t", &Wrong { id: "x".into() })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotConforming { .. }), "{e}");
        let e = ser
            .serialize_json("t", r#"{"id":1,"status":"MAYBE"}"#)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("MAYBE"), "{e}");
        assert_eq!(fake.count(), 0);
        assert!(matches!(
            AvroSerializer::new(
                c,
                &SchemaRegistryConfig::default(),
                RecordPart::Key,
                "{\"type\":\"recrd\"}"
            ),
            Err(Error::SchemaParse { .. })
        ));
    }

    #[tokio::test]
    async fn serde_structs_round_trip() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        enum Status {
            #[serde(rename = "OK")]
            Ok,
            #[serde(rename = "BAD")]
            Bad,
        }
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Event {
            id: i32,
            status: Status,
            note: Option<String>,
        }
        let fake = registry_with(&[(1, V1)]);
        let c = client(&fake.clone().start().await);
        let ser = AvroSerializer::new(
            c.clone(),
            &SchemaRegistryConfig::default(),
            RecordPart::Value,
            V1,
        )
        .unwrap();
        let de = AvroDeserializer::new(c);
        let e = Event {
            id: 4,
            status: Status::Bad,
            note: Some("n".into()),
        };
        let bytes = ser.serialize_serde("t", &e).await.unwrap();
        assert_eq!(de.deserialize_into::<Event>(&bytes).await.unwrap(), e);
        assert_eq!(
            de.deserialize(&bytes).await.unwrap(),
            v1_record(4, "BAD", Some("n"))
        );
    }
}
