//! Provenance headers of forwarded records, byte-compatible with Spring
//! Kafka's `DeadLetterPublishingRecoverer` and retry topics:
//!
//! | header | bytes |
//! |---|---|
//! | `kafka_dlt-original-topic` | UTF-8 |
//! | `kafka_dlt-original-partition` | int32 big-endian |
//! | `kafka_dlt-original-offset` | int64 big-endian |
//! | `kafka_dlt-original-timestamp` | int64 big-endian |
//! | `kafka_dlt-original-timestamp-type` | `CreateTime` or `LogAppendTime` |
//! | `kafka_dlt-original-consumer-group` | UTF-8 |
//! | `kafka_dlt-exception-fqcn`, `-message` | UTF-8 (message truncated) |
//! | `retry_topic-attempts` | int32 big-endian: the next attempt's number |
//! | `retry_topic-original-timestamp` | Java `BigInteger.toByteArray()` of ms |
//! | `retry_topic-backoff-timestamp` | `BigInteger.toByteArray()` of the due time in ms |
//! | `kafka-ingest-first-failure`, `kafka-ingest-last-failure` | int64 big-endian ms |
//!
//! As Spring does with `appendOriginalHeaders=false`, the first original
//! headers are kept; exception and retry headers are replaced on every
//! forward, so the headers stay bounded however often a record is
//! re-dead-lettered.

use bytes::Bytes;
use kafka_ingest::ConsumerRecord;

/// Header names.
pub mod names {
    /// Original topic.
    pub const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
    /// Original partition.
    pub const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
    /// Original offset.
    pub const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
    /// Original timestamp.
    pub const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
    /// Original timestamp type.
    pub const ORIGINAL_TIMESTAMP_TYPE: &str = "kafka_dlt-original-timestamp-type";
    /// Consumer group that failed the record.
    pub const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
    /// Error class.
    pub const EXCEPTION_FQCN: &str = "kafka_dlt-exception-fqcn";
    /// Error message.
    pub const EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
    /// Spring's attempt counter.
    pub const ATTEMPTS: &str = "retry_topic-attempts";
    /// Spring's original timestamp (BigInteger bytes).
    pub const RETRY_ORIGINAL_TIMESTAMP: &str = "retry_topic-original-timestamp";
    /// Spring's due time (BigInteger bytes).
    pub const BACKOFF_TIMESTAMP: &str = "retry_topic-backoff-timestamp";
    /// Our first failure time.
    pub const FIRST_FAILURE: &str = "kafka-ingest-first-failure";
    /// Our last failure time.
    pub const LAST_FAILURE: &str = "kafka-ingest-last-failure";
    /// Set by `dlq replay` to the dead letter it replays.
    pub const REPLAY_ID: &str = "replay-id";
}

use names::*;

/// Longest exception message kept.
pub const MAX_MESSAGE: usize = 1024;
/// Longest exception class kept.
pub const MAX_CLASS: usize = 256;

/// Headers the pipeline writes afresh on every forward.
fn managed(key: &str) -> bool {
    key.starts_with("kafka_dlt-exception-")
        || key.starts_with("kafka_dlt-key-exception-")
        || key.starts_with("retry_topic-")
        || key.starts_with("kafka-ingest-")
        || key == REPLAY_ID
}

/// Where a record first came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// Original topic.
    pub topic: String,
    /// Original partition.
    pub partition: i32,
    /// Original offset.
    pub offset: i64,
    /// Original timestamp (ms).
    pub timestamp: i64,
    /// Whether the original timestamp was the broker's append time.
    pub log_append_time: bool,
    /// Group that failed it, if recorded.
    pub group: Option<String>,
}

impl Provenance {
    /// The record itself as the origin.
    pub fn of(r: &ConsumerRecord) -> Provenance {
        Provenance {
            topic: r.topic.to_string(),
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            log_append_time: r.log_append_time,
            group: None,
        }
    }

    /// Parses the `kafka_dlt-original-*` headers; `None` if any of topic,
    /// partition or offset is missing or malformed.
    pub fn from_headers(headers: &[(String, Option<Bytes>)]) -> Option<Provenance> {
        let topic = String::from_utf8(first(headers, ORIGINAL_TOPIC)?.to_vec()).ok()?;
        let partition =
            i32::from_be_bytes(first(headers, ORIGINAL_PARTITION)?[..].try_into().ok()?);
        let offset = i64::from_be_bytes(first(headers, ORIGINAL_OFFSET)?[..].try_into().ok()?);
        let timestamp = first(headers, ORIGINAL_TIMESTAMP)
            .and_then(|b| b[..].try_into().ok().map(i64::from_be_bytes))
            .unwrap_or(-1);
        let log_append_time =
            first(headers, ORIGINAL_TIMESTAMP_TYPE).is_some_and(|b| &b[..] == b"LogAppendTime");
        let group = first(headers, ORIGINAL_CONSUMER_GROUP)
            .and_then(|b| String::from_utf8(b.to_vec()).ok());
        Some(Provenance {
            topic,
            partition,
            offset,
            timestamp,
            log_append_time,
            group,
        })
    }

    fn headers(&self, group: &str) -> Vec<(String, Option<Bytes>)> {
        let ty: &[u8] = if self.log_append_time {
            b"LogAppendTime"
        } else {
            b"CreateTime"
        };
        vec![
            h(ORIGINAL_TOPIC, self.topic.as_bytes()),
            h(ORIGINAL_PARTITION, &self.partition.to_be_bytes()),
            h(ORIGINAL_OFFSET, &self.offset.to_be_bytes()),
            h(ORIGINAL_TIMESTAMP, &self.timestamp.to_be_bytes()),
            h(ORIGINAL_TIMESTAMP_TYPE, ty),
            h(ORIGINAL_CONSUMER_GROUP, group.as_bytes()),
        ]
    }
}

fn h(k: &str, v: &[u8]) -> (String, Option<Bytes>) {
    (k.to_owned(), Some(Bytes::copy_from_slice(v)))
}

/// The first value of header `key`.
pub fn first<'a>(headers: &'a [(String, Option<Bytes>)], key: &str) -> Option<&'a Bytes> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_ref())
}

/// Java's `BigInteger.valueOf(v).toByteArray()`: minimal two's complement, big-endian.
pub fn bigint_bytes(v: i64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut i = 0;
    while i < 7 {
        let (cur, next_neg) = (b[i], b[i + 1] & 0x80 != 0);
        if (cur == 0 && !next_neg) || (cur == 0xff && next_neg) {
            i += 1;
        } else {
            break;
        }
    }
    b[i..].to_vec()
}

/// `new BigInteger(bytes).longValue()` for 1 to 8 bytes.
pub fn bigint_value(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut b = [fill; 8];
    b[8 - bytes.len()..].copy_from_slice(bytes);
    Some(i64::from_be_bytes(b))
}

/// `retry_topic-attempts` as Spring reads it: 1 or 4 bytes, else 1.
pub fn attempts(headers: &[(String, Option<Bytes>)]) -> u32 {
    let raw = match first(headers, ATTEMPTS).map(|b| &b[..]) {
        Some([one]) => u32::from(*one),
        Some(four) if four.len() == 4 => {
            i32::from_be_bytes([four[0], four[1], four[2], four[3]]).max(0) as u32
        }
        _ => 1,
    };
    raw.max(1)
}

/// The due time of a retry-tier record (`retry_topic-backoff-timestamp`).
pub fn due(headers: &[(String, Option<Bytes>)]) -> Option<i64> {
    first(headers, BACKOFF_TIMESTAMP).and_then(|b| bigint_value(b))
}

/// An int64 header such as our failure times.
pub fn long(headers: &[(String, Option<Bytes>)], key: &str) -> Option<i64> {
    first(headers, key).and_then(|b| b[..].try_into().ok().map(i64::from_be_bytes))
}

/// What a forward records about the failure.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Error class.
    pub class: &'a str,
    /// Error message.
    pub message: &'a str,
    /// Attempts made so far, every tier included.
    pub attempts: u32,
    /// First failure (ms).
    pub first_failure: i64,
    /// This failure (ms).
    pub last_failure: i64,
    /// When the next tier may process it (ms); `None` for the DLQ.
    pub due: Option<i64>,
}

/// Headers of a record forwarded to a retry tier or the DLQ: the record's
/// own headers minus the managed ones, the first original headers (or the
/// record's own provenance), then fresh exception and retry headers.
pub fn forward_headers(
    rec: &ConsumerRecord,
    group: &str,
    f: &Failure<'_>,
) -> Vec<(String, Option<Bytes>)> {
    let mut out: Vec<(String, Option<Bytes>)> = Vec::with_capacity(rec.headers.len() + 12);
    let provenance = Provenance::from_headers(&rec.headers);
    for (k, v) in &rec.headers {
        if managed(k) {
            continue;
        }
        if k.starts_with("kafka_dlt-original-") {
            // Keep only the first copy of each (and none if they do not parse).
            if provenance.is_none() || out.iter().any(|(o, _)| o == k) {
                continue;
            }
        }
        out.push((k.clone(), v.clone()));
    }
    if provenance.is_none() {
        out.extend(Provenance::of(rec).headers(group));
    }
    let original_ts = first(&rec.headers, RETRY_ORIGINAL_TIMESTAMP)
        .and_then(|b| bigint_value(b))
        .unwrap_or(rec.timestamp);
    out.push(h(EXCEPTION_FQCN, truncate(f.class, MAX_CLASS).as_bytes()));
    out.push(h(
        EXCEPTION_MESSAGE,
        truncate(f.message, MAX_MESSAGE).as_bytes(),
    ));
    out.push(h(
        ATTEMPTS,
        &(f.attempts.saturating_add(1) as i32).to_be_bytes(),
    ));
    out.push(h(RETRY_ORIGINAL_TIMESTAMP, &bigint_bytes(original_ts)));
    if let Some(due) = f.due {
        out.push(h(BACKOFF_TIMESTAMP, &bigint_bytes(due)));
    }
    out.push(h(FIRST_FAILURE, &f.first_failure.to_be_bytes()));
    out.push(h(LAST_FAILURE, &f.last_failure.to_be_bytes()));
    out
}

/// Headers of a record sent back by `dlq replay`: exception and retry
/// headers dropped (the original ones kept), a fresh `replay-id`.
pub fn replay_headers(
    headers: &[(String, Option<Bytes>)],
    replay_id: &str,
) -> Vec<(String, Option<Bytes>)> {
    let mut out: Vec<_> = headers
        .iter()
        .filter(|(k, _)| !managed(k))
        .cloned()
        .collect();
    out.push(h(REPLAY_ID, replay_id.as_bytes()));
    out
}

/// Bytes of a header list as Kafka counts them (keys and values).
pub fn size(headers: &[(String, Option<Bytes>)]) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(headers: Vec<(String, Option<Bytes>)>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 3,
            offset: 0x0102_0304_0506,
            timestamp: 1_700_000_000_123,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers,
        }
    }

    fn get<'a>(hs: &'a [(String, Option<Bytes>)], k: &str) -> &'a [u8] {
        first(hs, k).unwrap_or_else(|| panic!("{k} missing"))
    }

    #[test]
    fn spring_byte_layout() {
        let f = Failure {
            class: "com.example.Boom",
            message: "boom",
            attempts: 3,
            first_failure: 10,
            last_failure: 20,
            due: Some(1_700_000_001_123),
        };
        let hs = forward_headers(&record(vec![h("trace", b"abc")]), "billing", &f);
        assert_eq!(get(&hs, "trace"), b"abc", "user headers kept");
        assert_eq!(get(&hs, ORIGINAL_TOPIC), b"orders");
        assert_eq!(get(&hs, ORIGINAL_PARTITION), [0, 0, 0, 3]);
        assert_eq!(get(&hs, ORIGINAL_OFFSET), [0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            get(&hs, ORIGINAL_TIMESTAMP),
            1_700_000_000_123i64.to_be_bytes()
        );
        assert_eq!(get(&hs, ORIGINAL_TIMESTAMP_TYPE), b"CreateTime");
        assert_eq!(get(&hs, ORIGINAL_CONSUMER_GROUP), b"billing");
        assert_eq!(get(&hs, EXCEPTION_FQCN), b"com.example.Boom");
        assert_eq!(get(&hs, EXCEPTION_MESSAGE), b"boom");
        assert_eq!(get(&hs, ATTEMPTS), [0, 0, 0, 4], "Spring: attempts + 1");
        // BigInteger.valueOf(1700000000123L).toByteArray() = 01 8B CF E5 68 7B
        assert_eq!(
            get(&hs, RETRY_ORIGINAL_TIMESTAMP),
            [0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b]
        );
        assert_eq!(due(&hs), Some(1_700_000_001_123));
        assert_eq!(long(&hs, FIRST_FAILURE), Some(10));
        assert_eq!(attempts(&hs), 4);
        let p = Provenance::from_headers(&hs).unwrap();
        assert_eq!(
            (p.topic.as_str(), p.partition, p.offset),
            ("orders", 3, 0x0102_0304_0506)
        );
    }

    #[test]
    fn bigint_matches_java() {
        for (v, bytes) in [
            (0i64, &[0u8][..]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (255, &[0x00, 0xff]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (i64::MAX, &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ] {
            assert_eq!(bigint_bytes(v), bytes, "{v}");
            assert_eq!(bigint_value(bytes), Some(v));
        }
        assert_eq!(bigint_value(&[]), None);
    }

    #[test]
    fn headers_stay_bounded_across_many_re_dead_letterings() {
        let long_message = "x".repeat(10_000);
        let mut rec = record(vec![h("trace", b"abc")]);
        for round in 0..100 {
            let f = Failure {
                class: "some::Error",
                message: &long_message,
                attempts: round,
                first_failure: 1,
                last_failure: round as i64,
                due: Some(round as i64),
            };
            let dead = forward_headers(&rec, "g", &f);
            // Replayed back to the source, which fails it again next round.
            rec = record(replay_headers(&dead, &format!("t-dlt:0:{round}")));
            assert!(
                size(&dead) < 8 * 1024,
                "round {round}: {} bytes",
                size(&dead)
            );
        }
        let dead = forward_headers(
            &rec,
            "g",
            &Failure {
                class: "c",
                message: "m",
                attempts: 1,
                first_failure: 1,
                last_failure: 2,
                due: None,
            },
        );
        let originals = dead.iter().filter(|(k, _)| k == ORIGINAL_OFFSET).count();
        assert_eq!(originals, 1, "one provenance, the first");
        assert_eq!(
            Provenance::from_headers(&dead).unwrap().offset,
            0x0102_0304_0506
        );
    }
}
