//! `kafka-ingest`: a kcat-style command line over the kafka-ingest library.

mod burst;
mod configs;
mod consume;
mod demo;
mod dlq;
mod groups;
mod lab;
mod lag;
mod perf;
mod pipeline;
mod produce;
mod prom;
mod schema;
mod settings;
mod topics;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use settings::{shutdown_signal, Global, Role};

/// `println!` that ends the process quietly when stdout is closed (e.g.
/// piped to `head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::settings::print_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

#[derive(Parser)]
#[command(
    name = "kafka-ingest",
    version,
    about = "Pure-Rust Kafka toolkit: topics, produce, consume, groups, configs, schemas",
    after_help = "Settings, lowest precedence first: built-in defaults, --config-file, \
                  environment (KAFKA_BOOTSTRAP, SCHEMA_REGISTRY_URL), then flags and -X in \
                  command-line order. Logs: KAFKA_INGEST_LOG=debug (any tracing filter) on stderr."
)]
struct Cli {
    /// Bootstrap servers, comma-separated host:port (default 127.0.0.1:9092).
    /// Wins over KAFKA_BOOTSTRAP and the config file.
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "KAFKA_BOOTSTRAP",
        value_name = "HOST:PORT,..."
    )]
    bootstrap: Option<String>,
    /// Java-style .properties file with client settings (Kafka and registry
    /// keys may share one file: each client takes the keys it knows).
    #[arg(long, global = true, value_name = "FILE.properties")]
    config_file: Option<PathBuf>,
    /// Client property KEY=VALUE (repeatable); later settings win.
    #[arg(
        long = "property",
        short = 'X',
        global = true,
        value_name = "KEY=VALUE"
    )]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

// Subcommands, one block (each names its module's entry point below).
#[derive(Subcommand)]
enum Command {
    /// Cluster metadata: brokers, controller, topics and partitions (kcat -L).
    Metadata(topics::MetadataArgs),
    /// Create, delete, list, describe, grow and truncate topics.
    #[command(subcommand)]
    Topics(topics::TopicsCmd),
    /// Produce records from stdin or files.
    Produce(produce::ProduceArgs),
    /// Print records, one per line (or as JSON).
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups; delete and reset their offsets.
    #[command(subcommand)]
    Groups(groups::GroupsCmd),
    /// Describe and alter topic, broker and client-quota configs.
    #[command(subcommand)]
    Configs(configs::ConfigsCmd),
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
    /// The guided demo: producer, group, schema evolution, pipeline, lag.
    Demo(demo::DemoArgs),
    /// Open-loop load generator with coordinated-omission-corrected latency.
    Burst(burst::BurstArgs),
    /// The burst experiment end to end, with an HTML report (lab-report/report.html).
    Lab(lab::LabArgs),
    /// A group's offset lag, time lag and Burrow status per partition (--watch: live).
    Lag(lag::LagArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Metadata(_) => "metadata",
            Command::Topics(_) => "topics",
            Command::Produce(_) => "produce",
            Command::Consume(_) => "consume",
            Command::Groups(_) => "groups",
            Command::Configs(_) => "configs",
            Command::Perf(perf::PerfCmd::Produce { .. }) => "perf produce",
            Command::Perf(perf::PerfCmd::Consume { .. }) => "perf consume",
            Command::Schema(_) => "schema",
            Command::Pipeline(_) => "pipeline",
            Command::Dlq(_) => "dlq replay",
            Command::Demo(_) => "demo",
            Command::Lag(_) => "lag",
            Command::Burst(_) => "burst",
            Command::Lab(_) => "lab",
        }
    }

    /// The clients the command uses (each takes the settings it knows).
    fn roles(&self) -> &'static [Role] {
        match self {
            Command::Metadata(_)
            | Command::Topics(_)
            | Command::Groups(_)
            | Command::Configs(_)
            | Command::Lag(_) => &[Role::Admin],
            Command::Produce(_) => &[Role::Producer, Role::Registry],
            Command::Consume(_) => &[Role::Consumer, Role::Producer, Role::Registry],
            Command::Perf(perf::PerfCmd::Produce { .. }) => &[Role::Producer],
            Command::Burst(_) => &[Role::Producer, Role::Admin],
            Command::Perf(perf::PerfCmd::Consume { .. }) => &[Role::Consumer],
            Command::Schema(_) => &[Role::Registry],
            Command::Pipeline(_) | Command::Dlq(_) | Command::Lab(_) => {
                &[Role::Consumer, Role::Producer, Role::Admin]
            }
            Command::Demo(_) => &[Role::Admin, Role::Producer, Role::Consumer, Role::Registry],
        }
    }

    async fn run(self, global: &Global) -> kafka_ingest::Result<ExitCode> {
        match self {
            Command::Metadata(args) => topics::metadata(global, args).await,
            Command::Topics(cmd) => topics::run(global, cmd).await,
            Command::Produce(args) => produce::run(global, args).await,
            Command::Consume(args) => consume::run(global, args).await,
            Command::Groups(cmd) => groups::run(global, cmd).await,
            Command::Configs(cmd) => configs::run(global, cmd).await,
            Command::Perf(cmd) => perf::run(global, cmd).await,
            Command::Schema(args) => Ok(schema::run(global, args).await),
            Command::Pipeline(args) => pipeline::run(global, args).await,
            Command::Dlq(cmd) => dlq::run(global, cmd).await,
            Command::Demo(args) => demo::run(global, args).await,
            Command::Lag(args) => lag::run(global, args).await,
            Command::Burst(args) => burst::run(global, args).await,
            Command::Lab(args) => lab::run(global, args).await,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KAFKA_INGEST_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let argv: Vec<String> = std::env::args().collect();
    let registry_config = match &cli.command {
        Command::Schema(s) => s.registry_config.clone(),
        _ => None,
    };
    let global = match Global::new(
        &argv,
        cli.command.name(),
        cli.config_file.as_ref(),
        registry_config.as_ref(),
    )
    .and_then(|g| g.check(cli.command.roles()).map(|()| g))
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {}", settings::report(&e));
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(cli.command.run(&global));
    // A stdin reader may still block in a read: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", settings::report(&e));
            ExitCode::FAILURE
        }
    }
}
