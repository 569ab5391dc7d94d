//! `kafka-ingest produce`: stdin records (or files) → Kafka. Binary-safe:
//! records are split on any byte sequence, keys and values may be hex or
//! base64, and every failure is reported with its line (record) number.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafka_ingest::schema_registry::{AvroSerializer, RecordPart, SchemaRegistryClient};
use kafka_ingest::{Error, Producer, ProducerRecord, Result};
use tokio::sync::mpsc;

use crate::Global;

/// Longest record read from stdin.
const MAX_RECORD: usize = 64 * 1024 * 1024;

#[derive(Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long, short)]
    topic: String,
    /// Record delimiter, any byte sequence (escapes: \n \t \r \0 \\ \xHH).
    #[arg(
        short = 'D',
        long = "delimiter",
        default_value = "\\n",
        value_name = "DELIM"
    )]
    delimiter: String,
    /// Text before the first SEP is the key; records without SEP get a null
    /// key (escapes as for -D).
    #[arg(long, short = 'K', value_name = "SEP")]
    key_separator: Option<String>,
    /// Produce each file as one record's value instead of reading stdin (repeatable).
    #[arg(long = "value-file", value_name = "FILE")]
    value_files: Vec<PathBuf>,
    /// How keys and values are written: text (raw bytes), hex or base64.
    #[arg(long = "format", value_enum, default_value_t = InputFormat::Text)]
    format: InputFormat,
    /// Empty keys and values are sent as null (kcat's -Z).
    #[arg(short = 'Z', long = "null-empty")]
    null_empty: bool,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Each record starts with its own headers, as Java's ConsoleProducer
    /// parse.headers: `k1:v1,k2:v2<TAB>rest`.
    #[arg(long)]
    parse_headers: bool,
    /// Ends the headers part of a record (with --parse-headers).
    #[arg(long, default_value = "\\t", value_name = "DELIM")]
    headers_delimiter: String,
    /// Separates headers (with --parse-headers).
    #[arg(long, default_value = ",", value_name = "SEP")]
    headers_separator: String,
    /// Separates a header's key from its value (with --parse-headers).
    #[arg(long, default_value = ":", value_name = "SEP")]
    headers_key_separator: String,
    /// Write every record to this partition.
    #[arg(long, short)]
    partition: Option<i32>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// compression.type: none, gzip, snappy, lz4 or zstd (default none).
    #[arg(long)]
    compression: Option<String>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// acks: 0, 1 or all (default all).
    #[arg(long)]
    acks: Option<String>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// linger.ms: how long a batch waits for more records (default 5).
    #[arg(long = "linger-ms", value_name = "MS")]
    linger_ms: Option<u64>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// batch.size: largest batch per partition in bytes (default 16384).
    #[arg(long = "batch-size", value_name = "BYTES")]
    batch_size: Option<usize>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// enable.idempotence=false.
    #[arg(long)]
    no_idempotence: bool,
    /// Stop at the first record that fails; later input is not read (records
    /// are then sent one at a time).
    #[arg(long)]
    stop_on_error: bool,
    /// Avro value schema (.avsc): each value is a JSON record, validated and
    /// sent in the Confluent wire format via the registry.
    #[arg(long, value_name = "FILE.avsc")]
    value_schema: Option<PathBuf>,
    /// Avro key schema (.avsc): each key is JSON, as for --value-schema.
    #[arg(long, value_name = "FILE.avsc")]
    key_schema: Option<PathBuf>,
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    /// Schema registry URL (default SCHEMA_REGISTRY_URL, else the local one).
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    Text,
    Hex,
    Base64,
}

/// Decodes kcat-style escapes into bytes.
pub(crate) fn unescape(flag: &str, s: &str) -> Result<Vec<u8>> {
    let bad = || Error::InvalidArgument {
        message: format!("{flag}: bad escape in `{s}`"),
    };
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next().ok_or_else(bad)? {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = [bytes.next().ok_or_else(bad)?, bytes.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            }
            _ => return Err(bad()),
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("{flag} must not be empty"),
        });
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One input record or the reason input stopped.
type Input = std::result::Result<Vec<u8>, String>;

/// Reads stdin on its own thread (a blocking read must not hold up a
/// signal) and sends delimited records; the channel bounds what is buffered.
fn read_stdin(delim: Vec<u8>, tx: mpsc::Sender<Input>) {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut searched = 0;
        loop {
            while let Some(i) = find(&buf[searched..], &delim) {
                let end = searched + i;
                let rest = buf.split_off(end + delim.len());
                buf.truncate(end);
                if tx
                    .blocking_send(Ok(std::mem::replace(&mut buf, rest)))
                    .is_err()
                {
                    return;
                }
                searched = 0;
            }
            searched = buf.len().saturating_sub(delim.len() - 1);
            if buf.len() > MAX_RECORD {
                let _ = tx.blocking_send(Err(format!(
                    "a record is longer than {MAX_RECORD} bytes (no delimiter found)"
                )));
                return;
            }
            match stdin.read(&mut chunk) {
                Ok(0) => {
                    if !buf.is_empty() {
                        let _ = tx.blocking_send(Ok(buf));
                    }
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("reading stdin: {e}")));
                    return;
                }
            }
        }
    });
}

/// Turns raw input into key, value and headers.
struct Parser {
    key_sep: Option<Vec<u8>>,
    format: InputFormat,
    null_empty: bool,
    headers: Option<(Vec<u8>, String, String)>,
}

type Header = (String, Option<Bytes>);

/// A record split into its headers, key and value (still encoded).
type Split = (Vec<Header>, Option<Vec<u8>>, Vec<u8>);

impl Parser {
    fn parts(&self, record: Vec<u8>) -> std::result::Result<Split, String> {
        let mut rest = record;
        let mut headers = Vec::new();
        if let Some((delim, sep, key_sep)) = &self.headers {
            let i = find(&rest, delim).ok_or("no headers delimiter (--headers-delimiter)")?;
            let text = std::str::from_utf8(&rest[..i]).map_err(|_| "headers are not UTF-8")?;
            for h in text.split(sep.as_str()).filter(|h| !h.is_empty()) {
                let (k, v) = h
                    .split_once(key_sep.as_str())
                    .ok_or_else(|| format!("header `{h}` has no `{key_sep}`"))?;
                headers.push((k.to_owned(), Some(Bytes::from(v.to_owned()))));
            }
            rest.drain(..i + delim.len());
        }
        let (key, value) = match &self.key_sep {
            Some(sep) => match find(&rest, sep) {
                Some(i) => (Some(rest[..i].to_vec()), rest[i + sep.len()..].to_vec()),
                None => (None, rest),
            },
            None => (None, rest),
        };
        Ok((headers, key, value))
    }

    fn decode(&self, what: &str, b: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
        use base64::Engine as _;
        match self.format {
            InputFormat::Text => Ok(b),
            InputFormat::Hex => {
                hex::decode(b.trim_ascii()).map_err(|e| format!("{what} is not hex: {e}"))
            }
            InputFormat::Base64 => base64::engine::general_purpose::STANDARD
                .decode(b.trim_ascii())
                .map_err(|e| format!("{what} is not base64: {e}")),
        }
    }

    fn bytes(&self, b: Vec<u8>) -> Option<Bytes> {
        (!(self.null_empty && b.is_empty())).then(|| Bytes::from(b))
    }
}

async fn avro(global: &Global, file: &std::path::Path, part: RecordPart) -> Result<AvroSerializer> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::File {
        path: file.display().to_string(),
        source,
    })?;
    let config = global.registry_config()?;
    let invalid = |e: kafka_ingest::schema_registry::Error| Error::InvalidArgument {
        message: format!("{}: {e}", file.display()),
    };
    let client = SchemaRegistryClient::new(&config).map_err(invalid)?;
    AvroSerializer::new(client, &config, part, &text).map_err(invalid)
}

/// Counts of the run, shared with delivery callbacks.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: Mutex<Vec<usize>>,
    stop: AtomicBool,
}

impl Tally {
    fn fail(&self, unit: &str, n: usize, why: &str, stop_on_error: bool) {
        eprintln!("error: {unit} {n}: {why}");
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n);
        if stop_on_error {
            self.stop.store(true, Ordering::Release);
        }
    }
}

pub(crate) async fn run(global: &Global, args: ProduceArgs) -> Result<ExitCode> {
    kafka_ingest::validate_topic_name(&args.topic)?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = crate::settings::key_value("--header", h)?;
        headers.push((k, Some(Bytes::from(v))));
    }
    let delim = unescape("-D", &args.delimiter)?;
    let parser = Parser {
        key_sep: args
            .key_separator
            .as_deref()
            .map(|s| unescape("-K", s))
            .transpose()?,
        format: args.format,
        null_empty: args.null_empty,
        headers: if args.parse_headers {
            Some((
                unescape("--headers-delimiter", &args.headers_delimiter)?,
                args.headers_separator.clone(),
                args.headers_key_separator.clone(),
            ))
        } else {
            None
        },
    };
    let value_avro = match &args.value_schema {
        Some(f) => Some(avro(global, f, RecordPart::Value).await?),
        None => None,
    };
    let key_avro = match &args.key_schema {
        Some(f) => Some(avro(global, f, RecordPart::Key).await?),
        None => None,
    };
    let producer: Producer = global
        .reaching(global.producer_builder(&[]).build())
        .await?;
    let (tx, mut rx) = mpsc::channel::<Input>(256);
    let unit = if args.value_files.is_empty() && delim == b"\n" {
        "line"
    } else {
        "record"
    };
    if args.value_files.is_empty() {
        read_stdin(delim, tx);
    } else {
        let files = args.value_files.clone();
        tokio::spawn(async move {
            for f in files {
                let r = tokio::fs::read(&f)
                    .await
                    .map_err(|e| format!("{}: {e}", f.display()));
                let stop = r.is_err();
                if tx.send(r).await.is_err() || stop {
                    return;
                }
            }
        });
    }
    let tally = Arc::new(Tally::default());
    let mut stop = crate::shutdown_signal();
    let mut stopped_by = None;
    let mut read_error = None;
    let mut gave_up = false;
    let mut n = 0usize;
    while !tally.stop.load(Ordering::Acquire) {
        let input = tokio::select! {
            r = rx.recv() => r,
            s = &mut stop => {
                stopped_by = Some(s);
                break;
            }
        };
        let raw = match input {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                read_error = Some(e);
                break;
            }
            None => break,
        };
        n += 1;
        let record = match build(
            &args,
            &parser,
            &headers,
            raw,
            key_avro.as_ref(),
            value_avro.as_ref(),
        )
        .await
        {
            Ok(r) => r,
            Err(why) => {
                tally.fail(unit, n, &why, args.stop_on_error);
                continue;
            }
        };
        let (t, stop_on_error) = (tally.clone(), args.stop_on_error);
        let sent = producer
            .send_with_callback(record, move |res| match res {
                Ok(_) => {
                    t.ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => t.fail(unit, n, &crate::settings::report(&e), stop_on_error),
            })
            .await;
        if sent.is_ok() && args.stop_on_error {
            // One at a time, so nothing after a failed record is sent.
            let _ = producer.flush().await;
        }
        if let Err(e) = sent {
            tally.fail(unit, n, &crate::settings::report(&e), args.stop_on_error);
            // Only a too-large record is about this record alone.
            if !matches!(e, Error::RecordTooLarge { .. }) {
                gave_up = true;
                break;
            }
        }
    }
    let flushed = producer.flush().await;
    let report = producer.close(Duration::from_secs(30)).await;
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally
        .failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    eprintln!("produced {ok} records to {}", args.topic);
    let lost = n.saturating_sub(ok + failed.len()).max(report.undelivered);
    if !failed.is_empty() || lost > 0 {
        let mut numbers: Vec<usize> = failed.clone();
        numbers.sort_unstable();
        let shown: Vec<String> = numbers.iter().take(10).map(usize::to_string).collect();
        let more = if numbers.len() > 10 { ", ..." } else { "" };
        eprintln!(
            "failed: {} records ({unit}s {}{more}){}",
            failed.len() + lost,
            shown.join(", "),
            if lost > 0 {
                format!("; {lost} undelivered at close")
            } else {
                String::new()
            }
        );
    }
    if gave_up || (tally.stop.load(Ordering::Acquire) && args.stop_on_error) {
        eprintln!("stopped at {unit} {n}; later input was not read");
    }
    if let Err(e) = flushed {
        eprintln!("error: {}", crate::settings::report(&e));
    }
    if let Some(e) = &read_error {
        eprintln!("error: {e}");
    }
    Ok(match stopped_by {
        Some(s) => s.code(),
        None if read_error.is_some() || !failed.is_empty() || lost > 0 => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    })
}

/// One input record as a ProducerRecord, or why it cannot be one.
async fn build(
    args: &ProduceArgs,
    parser: &Parser,
    headers: &[Header],
    raw: Vec<u8>,
    key_avro: Option<&AvroSerializer>,
    value_avro: Option<&AvroSerializer>,
) -> std::result::Result<ProducerRecord, String> {
    let (mut own, key, value) = parser.parts(raw)?;
    let key = key.map(|k| parser.decode("key", k)).transpose()?;
    let value = parser.decode("value", value)?;
    let key = match (key, key_avro) {
        (Some(k), Some(ser)) => {
            let json = String::from_utf8(k).map_err(|_| "key is not UTF-8 JSON".to_owned())?;
            Some(
                ser.serialize_json(&args.topic, &json)
                    .await
                    .map_err(|e| format!("Avro key: {e}"))?,
            )
        }
        (k, _) => k.and_then(|k| parser.bytes(k)),
    };
    let value = match value_avro {
        Some(ser) => {
            let json =
                String::from_utf8(value).map_err(|_| "value is not UTF-8 JSON".to_owned())?;
            Some(
                ser.serialize_json(&args.topic, &json)
                    .await
                    .map_err(|e| format!("Avro value: {e}"))?,
            )
        }
        None => parser.bytes(value),
    };
    let mut all = headers.to_vec();
    all.append(&mut own);
    Ok(ProducerRecord {
        topic: args.topic.clone(),
        partition: args.partition,
        key,
        value,
        headers: all,
        timestamp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_splits() {
        assert_eq!(unescape("-D", "\\n").unwrap(), b"\n");
        assert_eq!(unescape("-D", "|\\x00|").unwrap(), b"|\0|");
        assert!(unescape("-D", "\\q").is_err());
        assert!(unescape("-D", "").is_err());
        let p = Parser {
            key_sep: Some(b"::".to_vec()),
            format: InputFormat::Text,
            null_empty: true,
            headers: Some((b"\t".to_vec(), ",".into(), ":".into())),
        };
        let (h, k, v) = p.parts(b"a:1,b:2\tk::v::w".to_vec()).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1], ("b".into(), Some(Bytes::from_static(b"2"))));
        assert_eq!(k.as_deref(), Some(&b"k"[..]));
        assert_eq!(v, b"v::w");
        assert!(p.parts(b"no headers".to_vec()).is_err());
        assert_eq!(p.bytes(Vec::new()), None);
    }
}
