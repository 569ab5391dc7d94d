//! Client settings from every source, in Java's precedence: built-in
//! defaults < the command's own defaults < `--config-file` (then
//! `--registry-config`) < environment (`KAFKA_BOOTSTRAP`,
//! `SCHEMA_REGISTRY_URL`, `SCHEMA_REGISTRY_USER_INFO`) < flags and `-X`, in
//! command-line order. Each client gets the keys it understands; keys of
//! another client role are ignored with a warning, unknown keys are errors.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use kafka_ingest::schema_registry::{SchemaRegistryConfig, DEFAULT_URL};
use kafka_ingest::{
    Client, ClientBuilder, ClientConfig, Consumer, ConsumerBuilder, ConsumerConfig, Error,
    Producer, ProducerBuilder, ProducerConfig, Result,
};

/// A client kind that takes settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Producer,
    Consumer,
    Registry,
}

impl Role {
    const ALL: [Role; 4] = [Role::Admin, Role::Producer, Role::Consumer, Role::Registry];

    fn accepts(self, key: &str) -> bool {
        match self {
            Role::Admin => ClientConfig::accepts(key),
            Role::Producer => ProducerConfig::accepts(key),
            Role::Consumer => ConsumerConfig::accepts(key),
            Role::Registry => SchemaRegistryConfig::accepts(key),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Registry => "schema registry",
        }
    }
}

/// Command-line flags that stand for a property: (long, short, key, value
/// when the flag takes none).
const FLAGS: &[(&str, Option<char>, &str, Option<&str>)] = &[
    ("--bootstrap", Some('b'), "bootstrap.servers", None),
    ("--compression", None, "compression.type", None),
    ("--acks", None, "acks", None),
    ("--linger-ms", None, "linger.ms", None),
    ("--batch-size", None, "batch.size", None),
    (
        "--no-idempotence",
        None,
        "enable.idempotence",
        Some("false"),
    ),
    (
        "--from-beginning",
        None,
        "auto.offset.reset",
        Some("earliest"),
    ),
    ("--registry", None, "schema.registry.url", None),
    ("--registry-user-info", None, "basic.auth.user.info", None),
];

/// Flags that take `KEY=VALUE`.
const KV_FLAGS: &[(&str, Option<char>)] = &[
    ("--property", Some('X')),
    ("--producer-prop", None),
    ("--consumer-prop", None),
];

/// Splits `KEY=VALUE`, naming the flag and argument when there is no `=`.
pub(crate) fn key_value(flag: &str, arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(Error::InvalidArgument {
            message: format!("{flag} expects KEY=VALUE, got `{arg}`"),
        }),
    }
}

/// The property-setting flags of `argv`, in order. clap parses the same
/// arguments for everything else; this pass only keeps their order (clap
/// drops a global `-X` given before the subcommand when another follows it).
pub(crate) fn explicit_settings(argv: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            break;
        }
        // (flag name, attached value)
        let (name, attached): (String, Option<String>) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ if arg.starts_with("--") => (arg.clone(), None),
            _ if arg.starts_with('-') && arg.len() > 2 && !arg.starts_with("--") => {
                (arg[..2].to_owned(), Some(arg[2..].to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let matches = |long: &str, short: Option<char>| {
            name == long || short.is_some_and(|c| name == format!("-{c}"))
        };
        let mut value = |attached: Option<String>| -> Option<String> {
            attached.or_else(|| {
                let v = argv.get(i).cloned();
                i += 1;
                v
            })
        };
        if KV_FLAGS.iter().any(|(l, s)| matches(l, *s)) {
            let Some(v) = value(attached) else { break };
            out.push(key_value(&name, &v)?);
        } else if let Some((_, _, key, fixed)) = FLAGS.iter().find(|(l, s, _, _)| matches(l, *s)) {
            let v = match fixed {
                Some(f) => f.to_string(),
                None => match value(attached) {
                    Some(v) => v,
                    None => break,
                },
            };
            out.push((key.to_string(), v));
        }
    }
    Ok(out)
}

/// Every setting of this run, lowest precedence first.
pub(crate) struct Global {
    settings: Vec<(String, String)>,
    /// Keys that came from the environment (applied where used, never warned about).
    from_env: Vec<String>,
    /// The subcommand's name, for messages.
    command: String,
}

impl Global {
    pub(crate) fn new(
        argv: &[String],
        command: &str,
        config_file: Option<&PathBuf>,
        registry_config: Option<&PathBuf>,
    ) -> Result<Global> {
        let mut settings = Vec::new();
        let mut from_env = Vec::new();
        for f in [config_file, registry_config].into_iter().flatten() {
            settings.extend(kafka_ingest::config::load_properties(f)?);
        }
        for (var, key) in [
            ("KAFKA_BOOTSTRAP", "bootstrap.servers"),
            ("SCHEMA_REGISTRY_URL", "schema.registry.url"),
            ("SCHEMA_REGISTRY_USER_INFO", "basic.auth.user.info"),
        ] {
            if let Ok(v) = std::env::var(var) {
                if !v.trim().is_empty() {
                    settings.push((key.to_owned(), v));
                    from_env.push(key.to_owned());
                }
            }
        }
        let explicit = explicit_settings(argv)?;
        // A key set on the command line is no longer the environment's.
        from_env.retain(|k| !explicit.iter().any(|(e, _)| e == k));
        settings.extend(explicit);
        Ok(Global {
            settings,
            from_env,
            command: command.to_owned(),
        })
    }

    /// Checks every key against the roles this command uses: a key of
    /// another role is ignored with one warning line, a key no client knows
    /// is an error naming it.
    pub(crate) fn check(&self, used: &[Role]) -> Result<()> {
        let mut ignored: Vec<String> = Vec::new();
        for (k, _) in &self.settings {
            if used.iter().any(|r| r.accepts(k)) || self.from_env.contains(k) {
                continue;
            }
            let owners: Vec<&str> = Role::ALL
                .iter()
                .filter(|r| r.accepts(k))
                .map(|r| r.name())
                .collect();
            if owners.is_empty() {
                return Err(Error::Config {
                    key: k.clone(),
                    message: "unknown configuration key".into(),
                });
            }
            let note = format!("{k} ({})", owners.join("/"));
            if !ignored.contains(&note) {
                ignored.push(note);
            }
        }
        if !ignored.is_empty() {
            eprintln!(
                "warning: `{}` does not use {}; ignored",
                self.command,
                ignored.join(", ")
            );
        }
        Ok(())
    }

    /// The settings `role` understands, in precedence order.
    fn props(&self, role: Role) -> Vec<(String, String)> {
        self.settings
            .iter()
            .filter(|(k, _)| role.accepts(k))
            .cloned()
            .collect()
    }

    /// Where the clients will connect (for progress messages).
    fn bootstrap(&self) -> String {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == "bootstrap.servers")
            .map_or_else(|| "127.0.0.1:9092".to_owned(), |(_, v)| v.clone())
    }

    pub(crate) fn builder(&self) -> ClientBuilder {
        Client::builder().properties(self.props(Role::Admin))
    }

    /// An admin client, connected.
    pub(crate) async fn client(&self) -> Result<Client> {
        self.reaching(self.builder().build()).await
    }

    /// A producer; `defaults` are the command's own (lowest precedence).
    pub(crate) fn producer_builder(&self, defaults: &[(&str, &str)]) -> ProducerBuilder {
        Producer::builder()
            .properties(defaults.iter().copied())
            .properties(self.props(Role::Producer))
    }

    /// A consumer; `defaults` are the command's own (lowest precedence).
    pub(crate) fn consumer_builder(&self, defaults: &[(&str, &str)]) -> ConsumerBuilder {
        Consumer::builder()
            .properties(defaults.iter().copied())
            .properties(self.props(Role::Consumer))
    }

    /// The registry client's settings (default URL first).
    pub(crate) fn registry_config(&self) -> Result<SchemaRegistryConfig> {
        let mut c = SchemaRegistryConfig::new(DEFAULT_URL);
        for (k, v) in self.props(Role::Registry) {
            c.set(&k, &v).map_err(|e| Error::Config {
                key: k.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(c)
    }

    /// Awaits `connect`; on a terminal, says after a few seconds that the
    /// brokers have not answered yet (the library retries silently).
    pub(crate) async fn reaching<T>(&self, connect: impl Future<Output = T>) -> T {
        tokio::pin!(connect);
        tokio::select! {
            r = &mut connect => return r,
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        if std::io::stderr().is_terminal() {
            eprintln!(
                "still trying to reach {} (KAFKA_INGEST_LOG=debug shows each attempt)",
                self.bootstrap()
            );
        }
        connect.await
    }
}

/// Writes one line to stdout; a closed stdout ends the process (exit 0, as
/// a reader such as `head` has all it wanted).
pub(crate) fn print_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .is_err()
    {
        std::process::exit(0);
    }
}

/// The message of `e` and of each cause that adds something new.
pub(crate) fn report(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

/// Which signal stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    /// The shell's code for death by this signal (128 + signal number).
    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        })
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) fn shutdown_signal() -> Pin<Box<dyn Future<Output = Stop> + Send>> {
    Box::pin(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return Stop::Interrupt;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Stop::Interrupt,
                _ = term.recv() => Stop::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        std::iter::once("kafka-ingest")
            .chain(s.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn flags_and_x_keep_command_line_order() {
        let got = explicit_settings(&argv(
            "-X acks=0 produce -t t --acks 1 -Xcompression.type=lz4 --compression=zstd -b h:1 --no-idempotence",
        ))
        .unwrap();
        let want: Vec<(String, String)> = [
            ("acks", "0"),
            ("acks", "1"),
            ("compression.type", "lz4"),
            ("compression.type", "zstd"),
            ("bootstrap.servers", "h:1"),
            ("enable.idempotence", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_property_without_equals_is_an_error_naming_it() {
        let e = explicit_settings(&argv("-X linger.ms topics list")).unwrap_err();
        assert!(e.to_string().contains("`linger.ms`"), "{e}");
        let e = explicit_settings(&argv("perf produce --producer-prop acks")).unwrap_err();
        assert!(e.to_string().contains("--producer-prop"), "{e}");
    }

    #[test]
    fn causes_are_added_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "timed out (last error: refused)",
            Some(Box::new(E(
                "refused",
                Some(Box::new(E("os error 111", None))),
            ))),
        );
        assert_eq!(report(&e), "timed out (last error: refused): os error 111");
    }
}
