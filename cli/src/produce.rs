//! `kafka-ingest produce`: stdin lines → records.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use kafka_ingest::{Producer, ProducerRecord, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Global;

#[derive(Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long, short)]
    topic: String,
    /// Text before the first SEP is the key; lines without SEP get a null key.
    #[arg(long, short = 'K')]
    key_separator: Option<String>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write every record to this partition.
    #[arg(long, short)]
    partition: Option<i32>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long = "linger-ms")]
    linger_ms: Option<u64>,
    #[arg(long = "batch-size")]
    batch_size: Option<usize>,
    /// Turn off the idempotent producer.
    #[arg(long)]
    no_idempotence: bool,
    /// Avro value schema (.avsc): each line (after the key) is a JSON record,
    /// validated and sent in the Confluent wire format via the registry.
    #[arg(long)]
    value_schema: Option<std::path::PathBuf>,
    /// Schema registry URL (for --value-schema).
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = kafka_ingest::schema_registry::DEFAULT_URL)]
    registry: String,
}

/// The Avro value encoder for `--value-schema`.
async fn avro_encoder(
    file: &std::path::Path,
    registry: &str,
) -> std::result::Result<kafka_ingest::schema_registry::AvroSerializer, String> {
    use kafka_ingest::schema_registry::{
        AvroSerializer, RecordPart, SchemaRegistryClient, SchemaRegistryConfig,
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let config = SchemaRegistryConfig::new(registry);
    let client = SchemaRegistryClient::new(&config).map_err(|e| e.to_string())?;
    AvroSerializer::new(client, &config, RecordPart::Value, &text).map_err(|e| e.to_string())
}

pub(crate) async fn run(global: &Global, args: ProduceArgs) -> Result<ExitCode> {
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once('=') else {
            eprintln!("error: --header expects KEY=VALUE, got `{h}`");
            return Ok(ExitCode::from(2));
        };
        headers.push((k.to_owned(), Some(bytes::Bytes::from(v.to_owned()))));
    }
    let mut b = global
        .producer_builder()?
        .set("compression.type", &args.compression)
        .set("acks", &args.acks);
    if let Some(l) = args.linger_ms {
        b = b.set("linger.ms", &l.to_string());
    }
    if let Some(s) = args.batch_size {
        b = b.set("batch.size", &s.to_string());
    }
    if args.no_idempotence {
        b = b.set("enable.idempotence", "false");
    } else if args.acks != "all" && args.acks != "-1" {
        // Idempotence needs acks=all; an explicit weaker acks turns it off, as in Java.
        b = b.set("enable.idempotence", "false");
    }
    let avro = match &args.value_schema {
        Some(f) => match avro_encoder(f, &args.registry).await {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let producer: Producer = b.build().await?;
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stop = crate::shutdown_signal();
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            _ = &mut stop => break,
        };
        let line = match line {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                break;
            }
        };
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_owned()), v.to_owned()),
                None => (None, line),
            },
            None => (None, line),
        };
        let value = match &avro {
            // Validated and encoded before anything is sent; a refusal stops the run.
            Some(ser) => match ser.serialize_json(&args.topic, &value).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("Avro: {e}"));
                    break;
                }
            },
            None => bytes::Bytes::from(value),
        };
        let mut r = ProducerRecord::new(&args.topic).value(value);
        r.key = key.map(bytes::Bytes::from);
        r.partition = args.partition;
        r.headers = headers.clone();
        let (ok2, failures2) = (ok.clone(), failures.clone());
        let sent_now = producer
            .send_with_callback(r, move |res| match res {
                Ok(_) => {
                    ok2.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => failures2
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string()),
            })
            .await;
        match sent_now {
            Ok(()) => {}
            Err(e) => {
                failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
                break;
            }
        }
    }
    producer.flush().await?;
    let report = producer.close(Duration::from_secs(30)).await;
    let failed = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    eprintln!(
        "produced {} records to {}",
        ok.load(Ordering::Relaxed),
        args.topic
    );
    if !failed.is_empty() || report.undelivered > 0 {
        eprintln!(
            "failed: {} records (first error: {})",
            failed.len().max(report.undelivered),
            failed.first().map_or("closed", |s| s.as_str())
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
