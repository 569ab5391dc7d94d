//! `kafka-ingest consume`: print records (kcat-style format or JSON), from
//! a group subscription or from chosen partitions and offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use kafka_ingest::schema_registry::{AvroDeserializer, SchemaRegistryClient};
use kafka_ingest::{
    Consumer, ConsumerRecord, Error, OffsetReset, OffsetSpec, Producer, ProducerRecord, Result,
    TopicPartition,
};
use tokio::io::AsyncWriteExt;

use crate::Global;

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read (repeatable).
    #[arg(long, short, required_unless_present = "pattern")]
    topic: Vec<String>,
    /// Subscribe to every topic matching this regex (whole name; needs -g).
    #[arg(
        long,
        requires = "group",
        conflicts_with = "topic",
        value_name = "REGEX"
    )]
    pattern: Option<String>,
    /// Consumer group: commits after printing and leaves the group on exit.
    #[arg(long, short)]
    group: Option<String>,
    /// Start at the beginning when nothing is committed (auto.offset.reset=earliest).
    #[arg(long)]
    from_beginning: bool,
    /// Only these partitions (repeatable; without -g).
    #[arg(long = "partition", short = 'p', conflicts_with = "group")]
    partitions: Vec<i32>,
    /// Start offset (without -g): beginning, end, N, -N (the last N), or
    /// @TIMESTAMP (ms since the epoch or RFC 3339, e.g. @2024-05-01T12:00:00Z).
    #[arg(
        long,
        short = 'o',
        allow_hyphen_values = true,
        conflicts_with = "group"
    )]
    offset: Option<String>,
    /// Exit once every partition is read to the end it had at start (without -g).
    #[arg(short = 'e', long = "exit-at-end", conflicts_with = "group")]
    exit_at_end: bool,
    /// Exit 0 after this many records.
    #[arg(long)]
    max_messages: Option<usize>,
    /// Output per record: %t topic, %p partition, %o offset, %k key, %v value,
    /// %S value size, %h headers, %T timestamp, \n, \t, \\, %% a percent sign.
    #[arg(long, short, default_value = "%v")]
    format: String,
    /// One JSON object per record: topic, partition, offset, timestamp, key,
    /// value, headers (non-UTF-8 bytes in base64, marked `*_encoding`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Print null keys and values as NULL (empty ones stay empty).
    #[arg(short = 'Z', long = "null-marker")]
    null_marker: bool,
    /// Values are Avro in the Confluent wire format: print them as JSON,
    /// resolved into this reader schema (.avsc).
    #[arg(long, value_name = "FILE.avsc")]
    value_schema: Option<PathBuf>,
    /// Keys are Avro, as for --value-schema.
    #[arg(long, value_name = "FILE.avsc")]
    key_schema: Option<PathBuf>,
    /// What to do with a record that cannot be decoded: stop (exit 1), skip
    /// it, or dlq:TOPIC (write it unchanged to TOPIC with the error in headers).
    #[arg(long, default_value = "stop", value_parser = parse_on_error, value_name = "stop|skip|dlq:TOPIC")]
    on_error: OnError,
    /// Schema registry URL (default SCHEMA_REGISTRY_URL, else the local one).
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    #[command(flatten)]
    metrics: crate::prom::MetricsArg,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OnError {
    Stop,
    Skip,
    Dlq(String),
}

fn parse_on_error(s: &str) -> std::result::Result<OnError, String> {
    match s {
        "stop" => Ok(OnError::Stop),
        "skip" => Ok(OnError::Skip),
        _ => match s.strip_prefix("dlq:") {
            Some(t) => kafka_ingest::validate_topic_name(t)
                .map(|()| OnError::Dlq(t.to_owned()))
                .map_err(|e| e.to_string()),
            None => Err(format!("`{s}` is not stop, skip or dlq:TOPIC")),
        },
    }
}

/// A `-o` start position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Spec(OffsetSpec),
    At(i64),
    Last(i64),
}

fn parse_start(s: &str) -> Result<Start> {
    let bad = |why: String| Error::InvalidArgument {
        message: format!("-o `{s}`: {why}"),
    };
    match s {
        "beginning" | "earliest" => Ok(Start::Spec(OffsetSpec::Earliest)),
        "end" | "latest" => Ok(Start::Spec(OffsetSpec::Latest)),
        _ => {
            if let Some(ts) = s.strip_prefix('@') {
                return crate::groups::parse_time(ts)
                    .map(|t| Start::Spec(OffsetSpec::Timestamp(t)))
                    .map_err(bad);
            }
            match s.parse::<i64>() {
                Ok(n) if n < 0 => Ok(Start::Last(-n)),
                Ok(n) => Ok(Start::At(n)),
                Err(_) => Err(bad(
                    "expected beginning, end, N, -N or @TIMESTAMP".to_owned()
                )),
            }
        }
    }
}

/// One piece of a compiled `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    ValueSize,
    Headers,
    Timestamp,
}

/// Compiles a kcat-style format; an unknown `%x` or `\x` is an error.
fn compile(fmt: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut chars = fmt.chars();
    let bad = |seq: String| Error::InvalidArgument {
        message: format!("-f: unknown `{seq}` in `{fmt}` (see --help for %t %p %o %k %v %S %h %T)"),
    };
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('k') => Piece::Key,
                Some('v') => Piece::Value,
                Some('S') => Piece::ValueSize,
                Some('h') => Piece::Headers,
                Some('T') => Piece::Timestamp,
                Some('%') => {
                    lit.push(b'%');
                    continue;
                }
                Some(o) => return Err(bad(format!("%{o}"))),
                None => return Err(bad("%".into())),
            },
            '\\' => {
                match chars.next() {
                    Some('n') => lit.push(b'\n'),
                    Some('t') => lit.push(b'\t'),
                    Some('\\') => lit.push(b'\\'),
                    Some(o) => return Err(bad(format!("\\{o}"))),
                    None => return Err(bad("\\".into())),
                }
                continue;
            }
            c => {
                let mut b = [0; 4];
                lit.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                continue;
            }
        };
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(piece);
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// Renders one record (bytes as they are: binary-safe).
fn render(pieces: &[Piece], r: &ConsumerRecord, null_marker: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = |out: &mut Vec<u8>, b: &Option<Bytes>| match b {
        Some(b) => out.extend_from_slice(b),
        None if null_marker => out.extend_from_slice(b"NULL"),
        None => {}
    };
    for p in pieces {
        match p {
            Piece::Lit(l) => out.extend_from_slice(l),
            Piece::Topic => out.extend_from_slice(r.topic.as_bytes()),
            Piece::Partition => out.extend_from_slice(r.partition.to_string().as_bytes()),
            Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
            Piece::Key => bytes(&mut out, &r.key),
            Piece::Value => bytes(&mut out, &r.value),
            Piece::ValueSize => out.extend_from_slice(
                r.value
                    .as_ref()
                    .map_or(-1, |v| v.len() as i64)
                    .to_string()
                    .as_bytes(),
            ),
            Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
            Piece::Headers => {
                for (i, (k, v)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    bytes(&mut out, v);
                }
            }
        }
    }
    out
}

/// A key, value or header as JSON: text when UTF-8, else base64.
fn json_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, b: &Option<Bytes>) {
    use base64::Engine as _;
    let v = match b {
        None => serde_json::Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => serde_json::Value::String(s.to_owned()),
            Err(_) => {
                obj.insert(format!("{name}_encoding"), "base64".into());
                base64::engine::general_purpose::STANDARD.encode(b).into()
            }
        },
    };
    obj.insert(name.to_owned(), v);
}

/// The JSON envelope of one record; Avro-decoded parts are embedded as JSON.
fn envelope(r: &ConsumerRecord, key_json: Option<&str>, value_json: Option<&str>) -> String {
    use serde_json::{json, Map, Value};
    let mut o = Map::new();
    o.insert("topic".into(), json!(&*r.topic));
    o.insert("partition".into(), json!(r.partition));
    o.insert("offset".into(), json!(r.offset));
    o.insert("timestamp".into(), json!(r.timestamp));
    let embed = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| s.into());
    match key_json {
        Some(k) => {
            o.insert("key".into(), embed(k));
        }
        None => json_bytes(&mut o, "key", &r.key),
    }
    match value_json {
        Some(v) => {
            o.insert("value".into(), embed(v));
        }
        None => json_bytes(&mut o, "value", &r.value),
    }
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            let mut h = Map::new();
            h.insert("key".into(), json!(k));
            json_bytes(&mut h, "value", v);
            Value::Object(h)
        })
        .collect();
    o.insert("headers".into(), Value::Array(headers));
    Value::Object(o).to_string()
}

fn avro_decoder(global: &Global, file: &std::path::Path) -> Result<AvroDeserializer> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::File {
        path: file.display().to_string(),
        source,
    })?;
    let invalid = |e: kafka_ingest::schema_registry::Error| Error::InvalidArgument {
        message: format!("{}: {e}", file.display()),
    };
    let client = SchemaRegistryClient::new(&global.registry_config()?).map_err(invalid)?;
    AvroDeserializer::with_reader_schema(client, &text).map_err(invalid)
}

/// Assigns the chosen partitions and positions them; returns the end
/// offsets at start (for `-e`).
async fn assign(
    global: &Global,
    consumer: &Consumer,
    args: &ConsumeArgs,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let start = args.offset.as_deref().map(parse_start).transpose()?;
    let client = global.client().await?;
    let admin = client.admin();
    let mut tps = Vec::new();
    for t in admin.describe_topics(&args.topic).await? {
        let all: BTreeSet<i32> = t.partitions.iter().map(|p| p.partition).collect();
        for p in &args.partitions {
            if !all.contains(p) {
                return Err(Error::UnknownPartition {
                    topic: t.name.clone(),
                    partition: *p,
                });
            }
        }
        tps.extend(
            all.into_iter()
                .filter(|p| args.partitions.is_empty() || args.partitions.contains(p))
                .map(|p| TopicPartition::new(&t.name, p)),
        );
    }
    consumer.assign(&tps).await?;
    let specs = |s: OffsetSpec| tps.iter().map(|tp| (tp.clone(), s)).collect::<Vec<_>>();
    let ends = if consumer.config().read_committed {
        admin
            .list_offsets_committed(&specs(OffsetSpec::Latest))
            .await?
    } else {
        admin.list_offsets(&specs(OffsetSpec::Latest)).await?
    };
    let start = start.unwrap_or(match consumer.config().auto_offset_reset {
        OffsetReset::Earliest => Start::Spec(OffsetSpec::Earliest),
        _ => Start::Spec(OffsetSpec::Latest),
    });
    match start {
        Start::Spec(OffsetSpec::Earliest) => consumer.seek_to_beginning(&tps).await?,
        Start::Spec(OffsetSpec::Timestamp(t)) => {
            let times = tps.iter().map(|tp| (tp.clone(), t)).collect();
            for (tp, found) in consumer.offsets_for_times(&times).await? {
                match found {
                    Some(o) => consumer.seek(&tp, o.offset)?,
                    None => consumer.seek_to_end(std::slice::from_ref(&tp)).await?,
                }
            }
        }
        Start::Spec(_) => consumer.seek_to_end(&tps).await?,
        Start::At(n) => {
            for tp in &tps {
                consumer.seek(tp, n)?;
            }
        }
        Start::Last(n) => {
            let earliest = admin.list_offsets(&specs(OffsetSpec::Earliest)).await?;
            for tp in &tps {
                let end = ends.get(tp).map_or(0, |o| o.offset);
                let low = earliest.get(tp).map_or(0, |o| o.offset);
                consumer.seek(tp, (end - n).max(low))?;
            }
        }
    }
    client.close();
    Ok(ends.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
}

/// Decodes the Avro parts of a record: (key JSON, value JSON).
async fn decode(
    r: &ConsumerRecord,
    key: Option<&AvroDeserializer>,
    value: Option<&AvroDeserializer>,
) -> std::result::Result<(Option<String>, Option<String>), String> {
    async fn one(
        de: Option<&AvroDeserializer>,
        b: Option<&Bytes>,
        what: &str,
    ) -> std::result::Result<Option<String>, String> {
        match (de, b) {
            (Some(de), Some(b)) => de
                .deserialize_json(b)
                .await
                .map(Some)
                .map_err(|e| format!("{what}: {e}")),
            _ => Ok(None),
        }
    }
    let k = one(key, r.key.as_ref(), "key").await?;
    let v = one(value, r.value.as_ref(), "value").await?;
    Ok((k, v))
}

pub(crate) async fn run(global: &Global, args: ConsumeArgs) -> Result<ExitCode> {
    for t in &args.topic {
        kafka_ingest::validate_topic_name(t)?;
    }
    let pieces = compile(&args.format)?;
    let value_de = args
        .value_schema
        .as_deref()
        .map(|f| avro_decoder(global, f))
        .transpose()?;
    let key_de = args
        .key_schema
        .as_deref()
        .map(|f| avro_decoder(global, f))
        .transpose()?;
    let dlq: Option<(Producer, String)> = match &args.on_error {
        OnError::Dlq(t) => Some((
            global
                .reaching(global.producer_builder(&[]).build())
                .await?,
            t.clone(),
        )),
        _ => None,
    };
    let mut b = global.consumer_builder(&[("enable.auto.commit", "false")]);
    if let Some(g) = &args.group {
        b = b.set("group.id", g);
    }
    let consumer: Consumer = global.reaching(b.build()).await?;
    let endpoint = args.metrics.serve()?;
    if let Some(e) = &endpoint {
        e.add_consumer("consume", &consumer);
    }
    let mut ends = BTreeMap::new();
    if args.group.is_some() {
        match &args.pattern {
            Some(p) => consumer.subscribe_pattern(p).await?,
            None => consumer.subscribe(&args.topic).await?,
        }
    } else {
        ends = assign(global, &consumer, &args).await?;
    }
    let mut stdout = tokio::io::stdout();
    let mut stop = crate::shutdown_signal();
    let mut stopped_by = None;
    let mut printed = 0usize;
    let mut skipped = 0usize;
    let limit = args.max_messages.unwrap_or(usize::MAX);
    let mut result = Ok(());
    let mut bad_record = false;
    // Partitions read to their end at start (for -e).
    let mut done: BTreeSet<TopicPartition> = BTreeSet::new();
    'outer: while printed < limit {
        if args.exit_at_end {
            for (tp, end) in &ends {
                if consumer.position(tp).is_some_and(|p| p >= *end) {
                    done.insert(tp.clone());
                }
            }
            if done.len() == ends.len() {
                break;
            }
        }
        let records = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            s = &mut stop => {
                stopped_by = Some(s);
                break;
            }
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        // The next offset per partition, for commits: every record handled.
        let mut handled: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for mut r in records {
            if printed >= limit {
                break;
            }
            if args.exit_at_end && done.contains(&TopicPartition::new(&*r.topic, r.partition)) {
                continue;
            }
            let (key_json, value_json) = match decode(&r, key_de.as_ref(), value_de.as_ref()).await
            {
                Ok(d) => d,
                Err(why) => {
                    eprintln!("error: {}-{}@{}: {why}", r.topic, r.partition, r.offset);
                    match &args.on_error {
                        OnError::Stop => {
                            bad_record = true;
                            break;
                        }
                        OnError::Skip => {}
                        OnError::Dlq(_) => {
                            if let Some((p, t)) = &dlq {
                                if let Err(e) = to_dlq(p, t, &r, &why).await {
                                    result = Err(e);
                                    break 'outer;
                                }
                            }
                        }
                    }
                    skipped += 1;
                    handled.insert(TopicPartition::new(&*r.topic, r.partition), r.offset + 1);
                    continue;
                }
            };
            let mut line = if args.json {
                envelope(&r, key_json.as_deref(), value_json.as_deref()).into_bytes()
            } else {
                if let Some(k) = key_json {
                    r.key = Some(Bytes::from(k));
                }
                if let Some(v) = value_json {
                    r.value = Some(Bytes::from(v));
                }
                render(&pieces, &r, args.null_marker)
            };
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() {
                break 'outer; // stdout closed (e.g. piped to head)
            }
            printed += 1;
            handled.insert(TopicPartition::new(&*r.topic, r.partition), r.offset + 1);
        }
        let _ = stdout.flush().await;
        if args.group.is_some() && !handled.is_empty() {
            // Commit exactly what was printed (or skipped).
            if let Err(e) = consumer.commit_offsets(&handled).await {
                result = Err(e);
                break;
            }
        }
        if bad_record {
            break;
        }
    }
    consumer.close().await;
    if let Some((p, _)) = dlq {
        p.close(Duration::from_secs(30)).await;
    }
    if skipped > 0 {
        eprintln!("{skipped} records could not be decoded and were skipped");
    }
    result?;
    Ok(match stopped_by {
        Some(s) => s.code(),
        None if bad_record => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    })
}

/// Writes an undecodable record unchanged to the dead-letter topic, with
/// where it came from and why in headers; waits for the ack.
async fn to_dlq(p: &Producer, topic: &str, r: &ConsumerRecord, why: &str) -> Result<()> {
    let mut headers = r.headers.clone();
    for (k, v) in [
        ("kafka-ingest.error", why.to_owned()),
        ("kafka-ingest.topic", r.topic.to_string()),
        ("kafka-ingest.partition", r.partition.to_string()),
        ("kafka-ingest.offset", r.offset.to_string()),
    ] {
        headers.push((k.to_owned(), Some(Bytes::from(v))));
    }
    let rec = ProducerRecord {
        topic: topic.to_owned(),
        partition: None,
        key: r.key.clone(),
        value: r.value.clone(),
        headers,
        timestamp: Some(r.timestamp),
    };
    p.send(rec).await?.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 99,
            log_append_time: false,
            key: None,
            value: Some(Bytes::from_static(b"v\xff")),
            headers: vec![("a".into(), Some(Bytes::from_static(b"1")))],
        }
    }

    #[test]
    fn formats_like_kcat() {
        let p = compile("%t/%p@%o %k=%v [%h] %T %S 100%%\\n").unwrap();
        assert_eq!(
            render(&p, &record(), false),
            b"t/2@7 =v\xff [a=1] 99 2 100%\n"
        );
        assert_eq!(
            render(&compile("%k|%v").unwrap(), &record(), true),
            b"NULL|v\xff"
        );
        for bad in ["%x", "%", "\\q"] {
            assert!(compile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_envelope_marks_binary() {
        let v: serde_json::Value =
            serde_json::from_str(&envelope(&record(), None, Some("{\"a\":1}"))).unwrap();
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["value"]["a"], 1);
        assert_eq!(v["headers"][0]["value"], "1");
        let v: serde_json::Value = serde_json::from_str(&envelope(&record(), None, None)).unwrap();
        assert_eq!(v["value_encoding"], "base64");
    }

    #[test]
    fn start_offsets() {
        assert_eq!(parse_start("-5").unwrap(), Start::Last(5));
        assert_eq!(parse_start("12").unwrap(), Start::At(12));
        assert_eq!(
            parse_start("beginning").unwrap(),
            Start::Spec(OffsetSpec::Earliest)
        );
        assert_eq!(
            parse_start("@1700000000000").unwrap(),
            Start::Spec(OffsetSpec::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            parse_start("@1970-01-01T00:00:01Z").unwrap(),
            Start::Spec(OffsetSpec::Timestamp(1000))
        );
        assert!(parse_start("soon").is_err());
        assert_eq!(
            parse_on_error("dlq:dead").unwrap(),
            OnError::Dlq("dead".into())
        );
        assert!(parse_on_error("dlq:bad name").is_err());
    }
}
