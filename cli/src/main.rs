//! `kafka-ingest`: a kcat-style command line over the kafka-ingest library.

mod consume;
mod dlq;
mod perf;
mod pipeline;
mod produce;
mod schema;
mod topics;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kafka_ingest::{Client, ClientBuilder, Consumer, ConsumerBuilder, Producer, ProducerBuilder};

#[derive(Parser)]
#[command(
    name = "kafka-ingest",
    version,
    about = "Pure-Rust Kafka toolkit: topics, produce, consume, schemas"
)]
struct Cli {
    /// Bootstrap servers, comma-separated host:port. Wins over --config-file's
    /// bootstrap.servers; KAFKA_BOOTSTRAP and the default do not.
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Java-style .properties file with client settings.
    #[arg(long, global = true)]
    config_file: Option<std::path::PathBuf>,
    /// Extra client property, KEY=VALUE (repeatable).
    #[arg(long = "set", short = 'X', global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, delete, list and describe topics.
    #[command(subcommand)]
    Topics(topics::TopicsCmd),
    /// Produce stdin lines as records.
    Produce(produce::ProduceArgs),
    /// Print records, one line each.
    Consume(consume::ConsumeArgs),
    /// Consumer groups.
    #[command(subcommand)]
    Groups(consume::GroupsCmd),
    /// Burst load and throughput measurement.
    #[command(subcommand)]
    Perf(perf::PerfCmd),
    /// Schema registry: offline compatibility checks, register, get, compat, config.
    Schema(schema::SchemaArgs),
    /// Run the ingestion pipeline with the built-in demo handler.
    Pipeline(pipeline::PipelineArgs),
    /// Dead-letter topics: replay.
    #[command(subcommand)]
    Dlq(dlq::DlqCmd),
}

/// Client settings shared by every subcommand.
pub(crate) struct Global {
    bootstrap: String,
    /// Whether --bootstrap was given on the command line.
    bootstrap_explicit: bool,
    config_file: Option<std::path::PathBuf>,
    set: Vec<String>,
}

impl Global {
    /// `--bootstrap` (or KAFKA_BOOTSTRAP, the default) unless the file sets
    /// bootstrap.servers, the file, an explicit `--bootstrap`, then `-X` overrides.
    fn props(&self) -> kafka_ingest::Result<Vec<(String, String)>> {
        let bootstrap = ("bootstrap.servers".to_owned(), self.bootstrap.clone());
        let mut p = vec![bootstrap.clone()];
        if let Some(f) = &self.config_file {
            p.extend(kafka_ingest::config::load_properties(f)?);
        }
        if self.bootstrap_explicit {
            p.push(bootstrap);
        }
        for kv in &self.set {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            p.push((k.to_owned(), v.to_owned()));
        }
        Ok(p)
    }

    pub(crate) fn builder(&self) -> kafka_ingest::Result<ClientBuilder> {
        Ok(Client::builder().properties(self.props()?))
    }

    pub(crate) fn consumer_builder(&self) -> kafka_ingest::Result<ConsumerBuilder> {
        Ok(Consumer::builder().properties(self.props()?))
    }

    pub(crate) fn producer_builder(&self) -> kafka_ingest::Result<ProducerBuilder> {
        Ok(Producer::builder().properties(self.props()?))
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) fn shutdown_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KAFKA_INGEST_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let bootstrap_explicit = matches.value_source("bootstrap") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let global = Global {
        bootstrap: cli.bootstrap,
        bootstrap_explicit,
        config_file: cli.config_file,
        set: cli.set,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Topics(cmd) => topics::run(&global, cmd).await,
            Command::Produce(args) => produce::run(&global, args).await,
            Command::Consume(args) => consume::run(&global, args).await,
            Command::Groups(cmd) => consume::groups(&global, cmd).await,
            Command::Perf(cmd) => perf::run(&global, cmd).await,
            Command::Schema(args) => Ok(schema::run(args).await),
            Command::Pipeline(args) => pipeline::run(&global, args).await,
            Command::Dlq(cmd) => dlq::run(&global, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
