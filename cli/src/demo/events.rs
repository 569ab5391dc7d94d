//! The demo's IngestEvents (`schemas/`), as JSON for the serializer and
//! read back from decoded Avro values.

use kafka_ingest::schema_registry::apache_avro::types::Value;

pub(crate) const V1: &str = include_str!("../../../schemas/ingest_event_v1.avsc");
pub(crate) const V2: &str = include_str!("../../../schemas/ingest_event_v2.avsc");
/// Refused under BACKWARD: `event_id` becomes a string, `data.unit` has no default.
pub(crate) const INCOMPATIBLE: &str =
    include_str!("../../../schemas/ingest_event_incompatible.avsc");

const SENSORS: u64 = 24;

/// The key (its sensor) and the v1 JSON of event `id`.
pub(crate) fn v1(id: u64) -> (String, String) {
    let sensor = format!("sensor-{:02}", id % SENSORS);
    let status = if id.is_multiple_of(10) {
        "warning"
    } else {
        "ok"
    };
    let value = 20.0 + (id % 50) as f64 / 10.0;
    let json = format!(
        r#"{{"event_id":{id},"timestamp":{:.3},"status":"{status}","data":{{"sensor":"{sensor}","value":{value:.1}}}}}"#,
        now_secs()
    );
    (sensor, json)
}

/// The same with v2's `source` set.
pub(crate) fn v2(id: u64) -> (String, String) {
    let (key, json) = v1(id);
    let gateway = format!(r#","source":{{"string":"gateway-{}"}}}}"#, id % 3);
    (key, format!("{}{gateway}", &json[..json.len() - 1]))
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Record(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
        _ => None,
    }
}

/// `event_id` of a decoded IngestEvent.
pub(crate) fn event_id(v: &Value) -> Option<i64> {
    match field(v, "event_id")? {
        Value::Long(id) => Some(*id),
        _ => None,
    }
}

/// Whether `source` is null (what v2's default fills in for v1 data).
pub(crate) fn source_is_null(v: &Value) -> bool {
    match field(v, "source") {
        Some(Value::Union(_, inner)) => matches!(**inner, Value::Null),
        Some(Value::Null) | None => true,
        Some(_) => false,
    }
}
