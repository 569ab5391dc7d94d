//! `kafka-ingest schema ...`: offline compatibility checks and the registry's REST API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kafka_ingest::schema_registry::compat::{check_compatibility, CompatibilityLevel, Direction};
use kafka_ingest::schema_registry::{parse_schema, SchemaRegistryClient, Version};

use crate::Global;

/// Exit code for an incompatible schema.
const INCOMPATIBLE: u8 = 1;
/// Exit code for usage and schema-parse errors (clap uses 2 as well).
const USAGE: u8 = 2;

#[derive(Args)]
pub(crate) struct SchemaArgs {
    /// Schema registry base URL (Confluent-compatible API; default
    /// SCHEMA_REGISTRY_URL, else the local one). Same as -X schema.registry.url=URL.
    // Read in command-line order with -X by settings::explicit_settings.
    #[allow(dead_code)]
    #[arg(long, global = true, value_name = "URL")]
    registry: Option<String>,
    /// Basic auth for the registry, USER:PASSWORD (default
    /// SCHEMA_REGISTRY_USER_INFO). Same as -X basic.auth.user.info=...
    #[allow(dead_code)]
    #[arg(
        long,
        global = true,
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    registry_user_info: Option<String>,
    /// Registry client properties (schema.registry.url, basic.auth.*,
    /// bearer.auth.*, schema.registry.ssl.*), read after --config-file.
    #[arg(long, global = true, value_name = "FILE.properties")]
    pub(crate) registry_config: Option<PathBuf>,
    #[command(subcommand)]
    command: SchemaCmd,
}

#[derive(Subcommand)]
enum SchemaCmd {
    /// Check NEW against earlier versions offline. Exit 0 compatible, 1 incompatible, 2 bad input.
    Check {
        /// NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE (any case).
        #[arg(long, value_parser = parse_level)]
        level: CompatibilityLevel,
        /// The new schema (.avsc).
        #[arg(long = "new", value_name = "NEW.avsc")]
        new: PathBuf,
        /// Earlier versions, oldest first; non-transitive levels use the last only.
        #[arg(value_name = "PREVIOUS.avsc")]
        previous: Vec<PathBuf>,
    },
    /// Register FILE under SUBJECT and print its id.
    Register {
        /// Subject name, e.g. events-value.
        #[arg(long)]
        subject: String,
        /// The schema (.avsc).
        file: PathBuf,
    },
    /// Print a schema by global id, or a subject's version.
    Get {
        /// Global schema id.
        #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
        id: Option<u32>,
        /// Subject name.
        #[arg(long)]
        subject: Option<String>,
        /// A version number or `latest` (with --subject).
        #[arg(long, default_value = "latest", requires = "subject")]
        version: String,
    },
    /// Ask the registry whether FILE may be registered under SUBJECT (with
    /// the reasons when not). Exit 0 compatible, 1 not.
    Compat {
        /// Subject name.
        #[arg(long)]
        subject: String,
        /// The candidate schema (.avsc).
        file: PathBuf,
        /// Test against one version (a number or `latest`) instead of what the subject's level names.
        #[arg(long)]
        version: Option<String>,
    },
    /// Delete a subject (soft; --permanent purges it too) and print the versions it had.
    Delete {
        /// Subject name.
        #[arg(long)]
        subject: String,
        /// Purge it for good (also works on an already soft-deleted subject).
        #[arg(long)]
        permanent: bool,
    },
    /// Show the compatibility level (global or of --subject), or set it with --level.
    Config {
        /// Subject name (default: the global level).
        #[arg(long)]
        subject: Option<String>,
        /// Set this level: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
        /// FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE (any case).
        #[arg(long, value_parser = parse_level)]
        level: Option<CompatibilityLevel>,
    },
}

fn parse_level(s: &str) -> Result<CompatibilityLevel, String> {
    s.parse()
}

fn parse_version(s: &str) -> Result<Version, String> {
    if s.eq_ignore_ascii_case("latest") {
        return Ok(Version::Latest);
    }
    s.parse()
        .map(Version::Number)
        .map_err(|_| format!("version `{s}` is not a number or `latest`"))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

pub(crate) async fn run(global: &Global, args: SchemaArgs) -> ExitCode {
    match args.command {
        SchemaCmd::Check {
            level,
            new,
            previous,
        } => check(level, &new, &previous),
        cmd => {
            let client = match global.registry_config().and_then(|c| {
                SchemaRegistryClient::new(&c).map_err(|e| kafka_ingest::Error::InvalidArgument {
                    message: e.to_string(),
                })
            }) {
                Ok(c) => c,
                Err(e) => return fail(USAGE, crate::settings::report(&e)),
            };
            remote(&client, cmd).await
        }
    }
}

fn check(level: CompatibilityLevel, new: &Path, previous: &[PathBuf]) -> ExitCode {
    let parse = |p: &Path| {
        read(p).and_then(|t| {
            parse_schema(&t, Some(&p.display().to_string())).map_err(|e| e.to_string())
        })
    };
    let new_schema = match parse(new) {
        Ok(s) => s,
        Err(e) => return fail(USAGE, e),
    };
    let mut old = Vec::with_capacity(previous.len());
    for p in previous {
        match parse(p) {
            Ok(s) => old.push(s),
            Err(e) => return fail(USAGE, e),
        }
    }
    let report = check_compatibility(level, &new_schema, &old);
    let against: Vec<String> = if level == CompatibilityLevel::None || previous.is_empty() {
        vec![]
    } else if level.is_transitive() {
        previous.iter().map(|p| p.display().to_string()).collect()
    } else {
        previous
            .last()
            .map(|p| p.display().to_string())
            .into_iter()
            .collect()
    };
    let against = if against.is_empty() {
        "nothing to check against".to_owned()
    } else {
        format!("against {}", against.join(", "))
    };
    if report.is_compatible() {
        crate::out!("compatible: {} under {level} ({against})", new.display());
        return ExitCode::SUCCESS;
    }
    crate::out!("incompatible: {} under {level} ({against})", new.display());
    for p in &report.problems {
        let old = previous[p.previous].display();
        let who = match p.direction {
            Direction::NewReadsOld => format!("new schema cannot read data written with {old}"),
            Direction::OldReadsNew => format!("{old} cannot read data written with the new schema"),
        };
        crate::out!("  {who}: {}", p.incompatibility);
    }
    ExitCode::from(INCOMPATIBLE)
}

async fn remote(client: &SchemaRegistryClient, cmd: SchemaCmd) -> ExitCode {
    let schema_text = |file: &Path| -> Result<String, ExitCode> {
        let text = read(file).map_err(|e| fail(USAGE, e))?;
        // Catch a bad file here, with its name, rather than as the registry's 42201.
        parse_schema(&text, Some(&file.display().to_string())).map_err(|e| fail(USAGE, e))?;
        Ok(text)
    };
    let result = match cmd {
        SchemaCmd::Check { .. } => return fail(USAGE, "check runs offline"),
        SchemaCmd::Register { subject, file } => {
            let text = match schema_text(&file) {
                Ok(t) => t,
                Err(code) => return code,
            };
            client.register(&subject, &text).await.map(|id| {
                crate::out!("{id}");
                ExitCode::SUCCESS
            })
        }
        SchemaCmd::Get { id: Some(id), .. } => client.schema_by_id(id).await.map(|s| {
            crate::out!("{}", pretty(&s));
            ExitCode::SUCCESS
        }),
        SchemaCmd::Get {
            subject, version, ..
        } => {
            let version = match parse_version(&version) {
                Ok(v) => v,
                Err(e) => return fail(USAGE, e),
            };
            let subject = subject.unwrap_or_default();
            client.version(&subject, version).await.map(|r| {
                eprintln!("subject {} version {} id {}", r.subject, r.version, r.id);
                crate::out!("{}", pretty(&r.schema));
                ExitCode::SUCCESS
            })
        }
        SchemaCmd::Compat {
            subject,
            file,
            version,
        } => {
            let text = match schema_text(&file) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let answer = match &version {
                Some(v) => match parse_version(v) {
                    Ok(v) => client.test_compatibility(&subject, &text, v).await,
                    Err(e) => return fail(USAGE, e),
                },
                None => client.test_compatibility_all(&subject, &text).await,
            };
            match answer {
                Ok(c) if c.is_compatible => {
                    crate::out!("compatible");
                    Ok(ExitCode::SUCCESS)
                }
                Ok(c) => {
                    crate::out!("incompatible");
                    for m in &c.messages {
                        crate::out!("  {m}");
                    }
                    // The offline checker names every problem and its path.
                    match reasons(client, &subject, &text, version.as_deref()).await {
                        Ok(lines) => lines.iter().for_each(|l| crate::out!("  {l}")),
                        Err(e) => eprintln!("(no details: {e})"),
                    }
                    Ok(ExitCode::from(INCOMPATIBLE))
                }
                Err(e) => Err(e),
            }
        }
        SchemaCmd::Delete { subject, permanent } => {
            client.delete_subject(&subject, permanent).await.map(|v| {
                crate::out!(
                    "{}",
                    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                );
                ExitCode::SUCCESS
            })
        }
        SchemaCmd::Config { subject, level } => {
            let answer = match (subject.as_deref(), level) {
                (None, None) => client.global_compatibility().await.map(Some),
                (None, Some(l)) => client.set_global_compatibility(l).await.map(Some),
                (Some(s), None) => client.subject_compatibility(s).await,
                (Some(s), Some(l)) => client.set_subject_compatibility(s, l).await.map(Some),
            };
            answer.map(|l| {
                match l {
                    Some(l) => crate::out!("{l}"),
                    None => crate::out!("(none; the global level applies)"),
                }
                ExitCode::SUCCESS
            })
        }
    };
    result.unwrap_or_else(|e| fail(1, e))
}

/// Why `text` is incompatible with `subject`, from the offline checker at
/// the subject's level, against the versions that level names.
async fn reasons(
    client: &SchemaRegistryClient,
    subject: &str,
    text: &str,
    version: Option<&str>,
) -> Result<Vec<String>, String> {
    let e = |e: kafka_ingest::schema_registry::Error| e.to_string();
    let mut level = match client.subject_compatibility(subject).await.map_err(e)? {
        Some(l) => l,
        None => client.global_compatibility().await.map_err(e)?,
    };
    let versions: Vec<Version> = match version {
        Some(v) => {
            // One version against: the level's direction, not its transitivity.
            level = match level {
                CompatibilityLevel::BackwardTransitive => CompatibilityLevel::Backward,
                CompatibilityLevel::ForwardTransitive => CompatibilityLevel::Forward,
                CompatibilityLevel::FullTransitive => CompatibilityLevel::Full,
                l => l,
            };
            vec![parse_version(v)?]
        }
        None if level.is_transitive() => client
            .versions(subject)
            .await
            .map_err(e)?
            .into_iter()
            .map(Version::Number)
            .collect(),
        None => vec![Version::Latest],
    };
    let mut names = Vec::new();
    let mut old = Vec::new();
    for v in versions {
        let r = client.version(subject, v).await.map_err(e)?;
        old.push(parse_schema(&r.schema, None).map_err(e)?);
        names.push(format!("version {}", r.version));
    }
    let new = parse_schema(text, None).map_err(e)?;
    let report = check_compatibility(level, &new, &old);
    Ok(report
        .problems
        .iter()
        .map(|p| {
            let old = &names[p.previous];
            let who = match p.direction {
                Direction::NewReadsOld => format!("new schema cannot read data written with {old}"),
                Direction::OldReadsNew => {
                    format!("{old} cannot read data written with the new schema")
                }
            };
            format!("{who} ({level}): {}", p.incompatibility)
        })
        .collect())
}

fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_owned())
}
