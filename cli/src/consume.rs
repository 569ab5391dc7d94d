//! `kafka-ingest consume` and `kafka-ingest groups describe`.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_ingest::{Consumer, ConsumerRecord, Result, TopicPartition};
use tokio::io::AsyncWriteExt;

use crate::Global;

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, short)]
    topic: String,
    /// Consumer group: commits after printing and leaves the group on exit.
    #[arg(long, short)]
    group: Option<String>,
    /// Start at the beginning when nothing is committed (else at the end).
    #[arg(long)]
    from_beginning: bool,
    /// Exit 0 after this many records.
    #[arg(long)]
    max_messages: Option<usize>,
    /// Output per record: %t topic, %p partition, %o offset, %k key, %v value,
    /// %h headers, %T timestamp, \n, \t, %% a percent sign.
    #[arg(long, short, default_value = "%v")]
    format: String,
    /// Values are Avro in the Confluent wire format: print them as JSON,
    /// resolved into this reader schema (.avsc).
    #[arg(long)]
    value_schema: Option<std::path::PathBuf>,
    /// Schema registry URL (for --value-schema).
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = kafka_ingest::schema_registry::DEFAULT_URL)]
    registry: String,
}

fn avro_decoder(
    file: &std::path::Path,
    registry: &str,
) -> std::result::Result<kafka_ingest::schema_registry::AvroDeserializer, String> {
    use kafka_ingest::schema_registry::{
        AvroDeserializer, SchemaRegistryClient, SchemaRegistryConfig,
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let client = SchemaRegistryClient::new(&SchemaRegistryConfig::new(registry))
        .map_err(|e| e.to_string())?;
    AvroDeserializer::with_reader_schema(client, &text).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
pub(crate) enum GroupsCmd {
    /// Members, assignment, committed offset, log-end offset and lag per partition.
    Describe { group: String },
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
}

/// Renders one record with a kcat-style format string.
pub(crate) fn render(fmt: &str, r: &ConsumerRecord) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(n)) => {
                chars.next();
                match n {
                    't' => out.push_str(&r.topic),
                    'p' => out.push_str(&r.partition.to_string()),
                    'o' => out.push_str(&r.offset.to_string()),
                    'k' => out.push_str(&text(&r.key)),
                    'v' => out.push_str(&text(&r.value)),
                    'T' => out.push_str(&r.timestamp.to_string()),
                    'h' => {
                        let hs: Vec<String> = r
                            .headers
                            .iter()
                            .map(|(k, v)| format!("{k}={}", text(v)))
                            .collect();
                        out.push_str(&hs.join(","));
                    }
                    '%' => out.push('%'),
                    other => {
                        out.push('%');
                        out.push(other);
                    }
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            _ => out.push(c),
        }
    }
    out
}

pub(crate) async fn run(global: &Global, args: ConsumeArgs) -> Result<ExitCode> {
    let avro = match &args.value_schema {
        Some(f) => match avro_decoder(f, &args.registry) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let mut b = global
        .consumer_builder()?
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    if let Some(g) = &args.group {
        b = b.set("group.id", g);
    }
    let consumer: Consumer = b.build().await?;
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic]).await?;
    } else {
        let client = global.builder()?.build().await?;
        let t = client.admin().describe_topic(&args.topic).await?;
        client.close();
        let tps: Vec<TopicPartition> = t
            .partitions
            .iter()
            .map(|p| TopicPartition::new(&args.topic, p.partition))
            .collect();
        consumer.assign(&tps).await?;
        if args.from_beginning {
            consumer.seek_to_beginning(&tps).await?;
        } else {
            consumer.seek_to_end(&tps).await?;
        }
    }
    let mut stdout = tokio::io::stdout();
    let mut stop = crate::shutdown_signal();
    let mut printed = 0usize;
    let limit = args.max_messages.unwrap_or(usize::MAX);
    let mut result = Ok(());
    let mut bad_record = false;
    'outer: while printed < limit {
        let records = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            _ = &mut stop => break,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let mut done = Vec::new();
        for mut r in records {
            if printed >= limit {
                break;
            }
            if let (Some(de), Some(v)) = (&avro, &r.value) {
                match de.deserialize_json(v).await {
                    Ok(json) => r.value = Some(Bytes::from(json)),
                    Err(e) => {
                        eprintln!("error: {}-{}@{}: {e}", r.topic, r.partition, r.offset);
                        bad_record = true;
                        break 'outer;
                    }
                }
            }
            let mut line = render(&args.format, &r);
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() {
                break 'outer; // stdout closed (e.g. piped to head)
            }
            printed += 1;
            done.push(r);
        }
        let _ = stdout.flush().await;
        if args.group.is_some() && !done.is_empty() {
            // Commit exactly what was printed (the next offset per partition).
            let mut offsets = std::collections::BTreeMap::new();
            for r in &done {
                offsets.insert(TopicPartition::new(&r.topic, r.partition), r.offset + 1);
            }
            if let Err(e) = consumer.commit_offsets(&offsets).await {
                result = Err(e);
                break;
            }
        }
    }
    consumer.close().await;
    result?;
    Ok(if bad_record {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn groups(global: &Global, cmd: GroupsCmd) -> Result<ExitCode> {
    let client = global.builder()?.build().await?;
    match cmd {
        GroupsCmd::Describe { group } => {
            let d = client.admin().describe_group(&group).await?;
            println!(
                "Group: {}\tState: {}\tAssignor: {}\tMembers: {}\tCoordinator: {}",
                d.group,
                d.state,
                d.protocol,
                d.members.len(),
                d.coordinator
            );
            for m in &d.members {
                let parts: Vec<String> = m.assignment.iter().map(|tp| tp.to_string()).collect();
                println!(
                    "  Member: {}{}\tClient: {}\tHost: {}\tPartitions: {}",
                    m.member_id,
                    m.instance_id
                        .as_deref()
                        .map(|i| format!(" (instance {i})"))
                        .unwrap_or_default(),
                    m.client_id,
                    m.host,
                    parts.join(",")
                );
            }
            println!("TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tOWNER");
            for o in &d.offsets {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    o.partition.topic,
                    o.partition.partition,
                    o.committed.map_or("-".into(), |c| c.to_string()),
                    o.log_end,
                    o.lag.map_or("-".into(), |l| l.to_string()),
                    o.owner.as_deref().unwrap_or("-")
                );
            }
        }
    }
    client.close();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kcat() {
        let r = ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 99,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("a".into(), Some(Bytes::from_static(b"1")))],
        };
        assert_eq!(
            render("%t/%p@%o %k=%v [%h] %T 100%%\\n", &r),
            "t/2@7 k=v [a=1] 99 100%\n"
        );
    }
}
