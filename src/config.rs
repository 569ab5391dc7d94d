//! Client configuration: typed fields, Kafka's property names, one place for
//! defaults ([`Default`]) and one [`ClientConfig::validate`].

mod security;

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::security::SecurityConfig;
pub use security::{SECURITY_KEYS, TLS_KEYS};

/// Settings shared by every client (admin, producer, consumer).
///
/// Field names follow the Java client's properties; see [`ClientConfig::set`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` pairs tried in order.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for one response.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: budget of one API call, retries included.
    pub default_api_timeout: Duration,
    /// `metadata.max.age.ms`: refresh metadata at least this often.
    pub metadata_max_age: Duration,
    /// `reconnect.backoff.ms`: first wait before redialing a failed broker.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: cap of the redial backoff.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`: first wait before retrying a failed request.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: cap of the retry backoff.
    pub retry_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus handshake.
    pub connection_setup_timeout: Duration,
    /// `receive.message.max.bytes` (librdkafka's name): largest response
    /// frame accepted; a larger length prefix closes the connection.
    pub receive_message_max_bytes: usize,
    /// `security.protocol`, `ssl.*`, `sasl.*` (see [`SECURITY_KEYS`], [`TLS_KEYS`]).
    pub security: SecurityConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: vec!["127.0.0.1:9092".to_owned()],
            client_id: "kafka-ingest".to_owned(),
            request_timeout: Duration::from_millis(30_000),
            default_api_timeout: Duration::from_millis(60_000),
            metadata_max_age: Duration::from_millis(300_000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            connection_setup_timeout: Duration::from_millis(10_000),
            receive_message_max_bytes: 100 * 1024 * 1024,
            security: SecurityConfig::default(),
        }
    }
}

impl ClientConfig {
    /// Property names this struct accepts, besides [`SECURITY_KEYS`] and [`TLS_KEYS`].
    pub const KEYS: &'static [&'static str] = &[
        "bootstrap.servers",
        "client.id",
        "request.timeout.ms",
        "default.api.timeout.ms",
        "metadata.max.age.ms",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "socket.connection.setup.timeout.ms",
        "receive.message.max.bytes",
    ];

    /// Whether `key` is a property every client accepts (connection and
    /// security settings).
    pub fn accepts(key: &str) -> bool {
        let key = key.trim();
        [Self::KEYS, SECURITY_KEYS, TLS_KEYS]
            .iter()
            .any(|keys| keys.contains(&key))
    }

    /// Sets one property by its Java name. Unknown keys and bad values are
    /// errors that name the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match key.trim() {
            "bootstrap.servers" => self.bootstrap_servers = parse_list(v),
            "client.id" => self.client_id = v.to_owned(),
            "request.timeout.ms" => self.request_timeout = parse_ms(key, v)?,
            "default.api.timeout.ms" => self.default_api_timeout = parse_ms(key, v)?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, v)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(key, v)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = parse_ms(key, v)?,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(key, v)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(key, v)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = parse_ms(key, v)?
            }
            "receive.message.max.bytes" => self.receive_message_max_bytes = parse_num(key, v)?,
            other => {
                if !self.security.set(other, value)? {
                    return Err(unknown_key(other));
                }
            }
        }
        Ok(())
    }

    /// Checks the whole config; every builder calls this before use.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config(
                "bootstrap.servers",
                "must list at least one host:port",
            ));
        }
        for s in &self.bootstrap_servers {
            check_host_port(s)?;
        }
        positive("request.timeout.ms", self.request_timeout)?;
        positive("default.api.timeout.ms", self.default_api_timeout)?;
        positive(
            "socket.connection.setup.timeout.ms",
            self.connection_setup_timeout,
        )?;
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(Error::config(
                "reconnect.backoff.max.ms",
                "must be at least reconnect.backoff.ms",
            ));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(Error::config(
                "retry.backoff.max.ms",
                "must be at least retry.backoff.ms",
            ));
        }
        if self.receive_message_max_bytes < 1024 {
            return Err(Error::config(
                "receive.message.max.bytes",
                "must be at least 1024",
            ));
        }
        self.security.validate()?;
        // Load certificates and keys now, so a bad file fails build().
        crate::engine::Security::check(&self.security)
            .map_err(|(key, message)| Error::config(key, message))
    }
}

fn unknown_key(key: &str) -> Error {
    Error::config(key, "unknown configuration key")
}

fn check_host_port(s: &str) -> Result<()> {
    let bad = || Error::config("bootstrap.servers", format!("`{s}` is not host:port"));
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

fn positive(key: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::config(key, "must be greater than 0"));
    }
    Ok(())
}

/// Splits a comma-separated list, dropping blanks.
pub fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a non-negative millisecond count.
pub fn parse_ms(key: &str, v: &str) -> Result<Duration> {
    parse_num::<u64>(key, v).map(Duration::from_millis)
}

/// Parses a number, naming the key on failure.
pub fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::config(key, format!("`{v}` is not a valid non-negative number")))
}

/// Parses `true`/`false`.
pub fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::config(key, format!("`{v}` is not true or false"))),
    }
}

/// Parses Java `.properties` text: `key=value` or `key: value` lines,
/// `#` and `!` comments, blank lines ignored, a trailing `\` continues the
/// line (as Java files often do for `sasl.jaas.config`), and Java's escapes
/// (`\t`, `\n`, `\uXXXX`, `\=`, `\\`...) are decoded.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let mut line = raw.trim_start().to_owned();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        while line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1 {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next.trim_start()),
                None => break,
            }
        }
        // The line itself is not quoted: it may hold a secret.
        let (key, value) = split_line(&line)
            .ok_or_else(|| Error::config(&format!("line {}", n + 1), "is not `key=value`"))?;
        out.push((unescape(key), unescape(value)));
    }
    Ok(out)
}

/// Splits at the first unescaped `=`, `:` or whitespace (Java's rule; a
/// whitespace separator may be followed by one `=` or `:`).
fn split_line(line: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ':' => return Some((line[..i].trim(), line[i + 1..].trim())),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return Some((&line[..i], rest.trim()));
            }
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Reads and parses a `.properties` file.
pub fn load_properties(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    parse_properties(&text)
}

/// A config being built plus the first error seen, returned by `build()`
/// (so chained setters never break, as in reqwest).
#[derive(Debug, Default)]
pub(crate) struct Pending<C> {
    pub(crate) config: C,
    error: Option<Error>,
}

/// A config that accepts Java property names.
pub(crate) trait Settable {
    fn set(&mut self, key: &str, value: &str) -> Result<()>;
}

impl Settable for ClientConfig {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        ClientConfig::set(self, key, value)
    }
}

impl<C: Settable> Pending<C> {
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        if let Err(e) = self.config.set(key, value) {
            self.error.get_or_insert(e);
        }
    }

    pub(crate) fn properties<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        props: impl IntoIterator<Item = (K, V)>,
    ) {
        for (k, v) in props {
            self.set(k.as_ref(), v.as_ref());
        }
    }

    pub(crate) fn properties_file(&mut self, path: impl AsRef<Path>) {
        match load_properties(path) {
            Ok(p) => self.properties(p),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// The config, or the first error any setter hit.
    pub(crate) fn finish(self) -> Result<C> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.config),
        }
    }
}

/// The property setters every builder shares; expects a `pending: Pending<_>` field.
macro_rules! property_setters {
    () => {
        /// `bootstrap.servers`, comma-separated `host:port`.
        pub fn bootstrap(self, servers: &str) -> Self {
            self.set("bootstrap.servers", servers)
        }

        /// Sets one property by its Java name; the first error is returned by `build()`.
        pub fn set(mut self, key: &str, value: &str) -> Self {
            self.pending.set(key, value);
            self
        }

        /// Sets many properties.
        pub fn properties<K: AsRef<str>, V: AsRef<str>>(
            mut self,
            props: impl IntoIterator<Item = (K, V)>,
        ) -> Self {
            self.pending.properties(props);
            self
        }

        /// Loads a Java `.properties` file.
        pub fn properties_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
            self.pending.properties_file(path);
            self
        }
    };
}
pub(crate) use property_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        ClientConfig::default().validate().unwrap();
    }

    #[test]
    fn every_listed_key_is_known_to_set() {
        for key in ClientConfig::KEYS
            .iter()
            .chain(SECURITY_KEYS)
            .chain(TLS_KEYS)
        {
            assert!(ClientConfig::accepts(key));
            if let Err(e) = ClientConfig::default().set(key, "\u{0}") {
                assert!(!e.to_string().contains("unknown"), "{key}: {e}");
            }
        }
        assert!(!ClientConfig::accepts("acks"));
    }

    #[test]
    fn set_by_java_names() {
        let mut c = ClientConfig::default();
        c.set("bootstrap.servers", "a:1, b:2").unwrap();
        c.set("request.timeout.ms", "1500").unwrap();
        assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = ClientConfig::default();
        let e = c.set("request.timeout.ms", "soon").unwrap_err().to_string();
        assert!(
            e.contains("request.timeout.ms") && e.contains("soon"),
            "{e}"
        );
        let e = c.set("bootstrap.server", "x:1").unwrap_err().to_string();
        assert!(
            e.contains("bootstrap.server") && e.contains("unknown"),
            "{e}"
        );
        c.set("bootstrap.servers", "nohost").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bootstrap.servers"));
        let mut c = ClientConfig::default();
        c.set("reconnect.backoff.ms", "5000").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("reconnect.backoff.max.ms"));
    }

    #[test]
    fn properties_text() {
        let p = parse_properties("# c\n\nbootstrap.servers = h:9092\nclient.id: me\n").unwrap();
        assert_eq!(
            p,
            vec![
                ("bootstrap.servers".into(), "h:9092".into()),
                ("client.id".into(), "me".into())
            ]
        );
        assert!(parse_properties("nonsense").is_err());
        let e = parse_properties("x=1\nsecret-value")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && !e.contains("secret-value"), "{e}");
        assert_eq!(
            parse_properties("sasl.password  s3cret\na : b").unwrap(),
            vec![
                ("sasl.password".into(), "s3cret".into()),
                ("a".into(), "b".into())
            ]
        );
    }

    #[test]
    fn java_continuations_and_escapes() {
        let text = "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    username=\"alice\" \\\n    password=\"a\\\\b\";\nk\\=x = tab\\there\\u0041\n";
        let p = parse_properties(text).unwrap();
        assert_eq!(
            p[0].1,
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="a\b";"#
        );
        assert_eq!(p[1], ("k=x".into(), "tab\there\u{41}".into()));
    }
}
