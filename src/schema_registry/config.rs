//! Registry and serde settings under Confluent's property names.

use std::fmt;
use std::time::Duration;

use super::error::{Error, Result};
use crate::security::{OAuthSettings, Secret, TlsSettings};

/// Default registry: the harness's Apicurio ccompat endpoint.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8081/apis/ccompat/v7";

/// Whether bytes are a record's key or its value (Confluent's `isKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordPart {
    /// The record key: subjects end in `-key` under [`SubjectNameStrategy::TopicName`].
    Key,
    /// The record value: subjects end in `-value`.
    Value,
}

/// How a serializer names the subject a schema is registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value` (Confluent's default).
    #[default]
    TopicName,
    /// The schema's full name, e.g. `com.acme.IngestEvent`; one schema per record type across topics.
    RecordName,
    /// `<topic>-<full name>`: several record types per topic.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// Parses `TopicNameStrategy`, `RecordNameStrategy` or `TopicRecordNameStrategy`,
    /// with or without Confluent's Java package and `Strategy` suffix, any case.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let short = s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
        match short.strip_suffix("strategy").unwrap_or(&short) {
            "topicname" => Some(Self::TopicName),
            "recordname" => Some(Self::RecordName),
            "topicrecordname" => Some(Self::TopicRecordName),
            _ => None,
        }
    }

    /// The subject for `topic`; `record_name` is the schema's full name
    /// (`None` for unnamed schemas such as `"string"`).
    pub fn subject(
        self,
        topic: &str,
        part: RecordPart,
        record_name: Option<&str>,
    ) -> Result<String> {
        let named = || {
            record_name.ok_or_else(|| {
                Error::SubjectName(format!(
                    "{self} needs a named schema (record, enum or fixed); this schema has no name"
                ))
            })
        };
        Ok(match self {
            Self::TopicName => match part {
                RecordPart::Key => format!("{topic}-key"),
                RecordPart::Value => format!("{topic}-value"),
            },
            Self::RecordName => named()?.to_owned(),
            Self::TopicRecordName => format!("{topic}-{}", named()?),
        })
    }
}

impl fmt::Display for SubjectNameStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TopicName => "TopicNameStrategy",
            Self::RecordName => "RecordNameStrategy",
            Self::TopicRecordName => "TopicRecordNameStrategy",
        })
    }
}

/// Where bearer tokens come from (`bearer.auth.credentials.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BearerSource {
    /// No bearer token.
    #[default]
    None,
    /// `STATIC_TOKEN`: `bearer.auth.token`.
    StaticToken,
    /// `OAUTHBEARER`: client credentials at `bearer.auth.issuer.endpoint.url`.
    OAuthBearer,
}

/// Settings of the registry client and the Avro serde.
///
/// Property names follow Confluent's serializer configs; see [`SchemaRegistryConfig::set`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SchemaRegistryConfig {
    /// `schema.registry.url`: base URLs (comma-separated), tried in turn on connection errors.
    pub urls: Vec<String>,
    /// `basic.auth.user.info`: `user:password` for HTTP basic auth.
    pub basic_auth: Option<(String, String)>,
    /// `basic.auth.credentials.source=URL`: take `user:password` from the URL.
    pub basic_auth_from_url: bool,
    /// `bearer.auth.credentials.source`.
    pub bearer_source: BearerSource,
    /// `bearer.auth.token` (STATIC_TOKEN).
    pub bearer_token: Option<Secret>,
    /// `bearer.auth.issuer.endpoint.url`, `bearer.auth.client.id`,
    /// `bearer.auth.client.secret`, `bearer.auth.scope` (OAUTHBEARER).
    pub bearer_oauth: OAuthSettings,
    /// `bearer.auth.logical.cluster` (sent as `target-sr-cluster`).
    pub bearer_logical_cluster: Option<String>,
    /// `bearer.auth.identity.pool.id` (sent as `Confluent-Identity-Pool-Id`).
    pub bearer_identity_pool: Option<String>,
    /// `schema.registry.ssl.*`: the same settings as the client's `ssl.*`.
    pub tls: TlsSettings,
    /// `http.connect.timeout.ms`: TCP connect to the registry.
    pub connect_timeout: Duration,
    /// `http.read.timeout.ms`: one whole request, body included.
    pub request_timeout: Duration,
    /// `max.retries`: extra attempts after a connection error or a 5xx answer.
    pub max_retries: u32,
    /// `retries.wait.ms`: first backoff between attempts.
    pub retry_backoff: Duration,
    /// `retries.max.wait.ms`: backoff cap.
    pub retry_backoff_max: Duration,
    /// `cache.capacity`: entries per cache (ids, subjects); bounds memory.
    pub cache_capacity: usize,
    /// `auto.register.schemas`: serializers register their schema (else they look its id up).
    pub auto_register_schemas: bool,
    /// `use.latest.version`: serializers write with the subject's latest schema.
    pub use_latest_version: bool,
    /// `key.subject.name.strategy`.
    pub key_subject_name_strategy: SubjectNameStrategy,
    /// `value.subject.name.strategy`.
    pub value_subject_name_strategy: SubjectNameStrategy,
}

impl fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryConfig")
            .field("urls", &self.urls)
            // Never print the password.
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(u, _)| format!("{u}:***")),
            )
            .field("basic_auth_from_url", &self.basic_auth_from_url)
            .field("bearer_source", &self.bearer_source)
            .field("bearer_token", &self.bearer_token)
            .field("bearer_oauth", &self.bearer_oauth)
            .field("bearer_logical_cluster", &self.bearer_logical_cluster)
            .field("bearer_identity_pool", &self.bearer_identity_pool)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("retry_backoff_max", &self.retry_backoff_max)
            .field("cache_capacity", &self.cache_capacity)
            .field("auto_register_schemas", &self.auto_register_schemas)
            .field("use_latest_version", &self.use_latest_version)
            .field("key_subject_name_strategy", &self.key_subject_name_strategy)
            .field(
                "value_subject_name_strategy",
                &self.value_subject_name_strategy,
            )
            .finish()
    }
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            urls: vec![DEFAULT_URL.to_owned()],
            basic_auth: None,
            basic_auth_from_url: false,
            bearer_source: BearerSource::None,
            bearer_token: None,
            bearer_oauth: OAuthSettings::default(),
            bearer_logical_cluster: None,
            bearer_identity_pool: None,
            tls: TlsSettings::default(),
            connect_timeout: Duration::from_millis(10_000),
            request_timeout: Duration::from_millis(30_000),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(2_000),
            cache_capacity: 1_000,
            auto_register_schemas: true,
            use_latest_version: false,
            key_subject_name_strategy: SubjectNameStrategy::TopicName,
            value_subject_name_strategy: SubjectNameStrategy::TopicName,
        }
    }
}

impl SchemaRegistryConfig {
    /// Property names this struct accepts, besides `schema.registry.` +
    /// [`TLS_KEYS`](crate::config::TLS_KEYS).
    pub const KEYS: &'static [&'static str] = &[
        "schema.registry.url",
        "basic.auth.credentials.source",
        "basic.auth.user.info",
        "bearer.auth.credentials.source",
        "bearer.auth.token",
        "bearer.auth.issuer.endpoint.url",
        "bearer.auth.client.id",
        "bearer.auth.client.secret",
        "bearer.auth.scope",
        "bearer.auth.logical.cluster",
        "bearer.auth.identity.pool.id",
        "http.connect.timeout.ms",
        "http.read.timeout.ms",
        "max.retries",
        "retries.wait.ms",
        "retries.max.wait.ms",
        "cache.capacity",
        "auto.register.schemas",
        "use.latest.version",
        "key.subject.name.strategy",
        "value.subject.name.strategy",
    ];

    /// Whether `key` is a registry property (including `schema.registry.`
    /// + a TLS key).
    pub fn accepts(key: &str) -> bool {
        let key = key.trim();
        Self::KEYS.contains(&key)
            || key
                .strip_prefix("schema.registry.")
                .is_some_and(|k| crate::config::TLS_KEYS.contains(&k))
    }

    /// A default config for the registry at `url`.
    pub fn new(url: &str) -> Self {
        SchemaRegistryConfig {
            urls: crate::config::parse_list(url),
            ..Default::default()
        }
    }

    /// Sets one property by its Confluent name. Unknown keys and bad values
    /// are errors that name the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        use crate::config::{parse_list, parse_ms, parse_num};
        let v = value.trim();
        // The crate's parsers report crate::Error; keep their message, retag the type.
        let c = |r: crate::Result<Duration>| {
            r.map_err(|e| Error::config(key, strip_prefix(&e.to_string())))
        };
        match key.trim() {
            "schema.registry.url" => self.urls = parse_list(v),
            "basic.auth.credentials.source" => match v.to_ascii_uppercase().as_str() {
                "USER_INFO" => self.basic_auth_from_url = false,
                "URL" => self.basic_auth_from_url = true,
                _ => {
                    return Err(Error::config(
                        key,
                        format!("`{v}` is not supported; USER_INFO and URL are"),
                    ))
                }
            },
            "bearer.auth.credentials.source" => {
                self.bearer_source = match v.to_ascii_uppercase().as_str() {
                    "STATIC_TOKEN" => BearerSource::StaticToken,
                    "OAUTHBEARER" => BearerSource::OAuthBearer,
                    "" | "NONE" => BearerSource::None,
                    _ => {
                        return Err(Error::config(
                            key,
                            format!("`{v}` is not supported; STATIC_TOKEN and OAUTHBEARER are"),
                        ))
                    }
                }
            }
            "bearer.auth.token" => self.bearer_token = Some(Secret::new(v)),
            "bearer.auth.issuer.endpoint.url" => {
                self.bearer_oauth.token_endpoint_url = Some(v.to_owned())
            }
            "bearer.auth.client.id" => self.bearer_oauth.client_id = Some(v.to_owned()),
            "bearer.auth.client.secret" => self.bearer_oauth.client_secret = Some(Secret::new(v)),
            "bearer.auth.scope" => self.bearer_oauth.scope = Some(v.to_owned()),
            "bearer.auth.logical.cluster" => self.bearer_logical_cluster = Some(v.to_owned()),
            "bearer.auth.identity.pool.id" => self.bearer_identity_pool = Some(v.to_owned()),
            "basic.auth.user.info" if v.is_empty() => self.basic_auth = None,
            "basic.auth.user.info" => {
                let (u, p) = v
                    .split_once(':')
                    .ok_or_else(|| Error::config(key, "expected user:password"))?;
                self.basic_auth = Some((u.to_owned(), p.to_owned()));
            }
            "http.connect.timeout.ms" => self.connect_timeout = c(parse_ms(key, v))?,
            "http.read.timeout.ms" => self.request_timeout = c(parse_ms(key, v))?,
            "retries.wait.ms" => self.retry_backoff = c(parse_ms(key, v))?,
            "retries.max.wait.ms" => self.retry_backoff_max = c(parse_ms(key, v))?,
            "max.retries" => {
                self.max_retries = parse_num(key, v)
                    .map_err(|e| Error::config(key, strip_prefix(&e.to_string())))?
            }
            "cache.capacity" => {
                self.cache_capacity = parse_num(key, v)
                    .map_err(|e| Error::config(key, strip_prefix(&e.to_string())))?
            }
            "auto.register.schemas" => self.auto_register_schemas = parse_bool(key, v)?,
            "use.latest.version" => self.use_latest_version = parse_bool(key, v)?,
            "key.subject.name.strategy" => self.key_subject_name_strategy = parse_strategy(key, v)?,
            "value.subject.name.strategy" => {
                self.value_subject_name_strategy = parse_strategy(key, v)?
            }
            other => {
                let tls_key = other.strip_prefix("schema.registry.");
                let known = match tls_key {
                    Some(k) => self
                        .tls
                        .set(k, value)
                        .map_err(|e| Error::config(other, strip_prefix(&e.to_string())))?,
                    None => false,
                };
                if !known {
                    return Err(Error::config(
                        other,
                        "unknown schema registry configuration key",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the whole config; the client calls this before use.
    pub fn validate(&self) -> Result<()> {
        if self.urls.is_empty() {
            return Err(Error::config(
                "schema.registry.url",
                "must name at least one URL",
            ));
        }
        for u in &self.urls {
            let url = reqwest::Url::parse(u).map_err(|e| {
                Error::config("schema.registry.url", format!("`{u}` is not a URL: {e}"))
            })?;
            match url.scheme() {
                "http" => {}
                "https" if cfg!(feature = "tls") => {}
                "https" => {
                    return Err(Error::config(
                        "schema.registry.url",
                        format!("`{u}` needs TLS; build kafka-ingest with the `tls` feature"),
                    ))
                }
                s => {
                    return Err(Error::config(
                        "schema.registry.url",
                        format!("`{u}`: scheme `{s}` is not http(s)"),
                    ))
                }
            }
            if url.cannot_be_a_base() || url.host().is_none() {
                return Err(Error::config(
                    "schema.registry.url",
                    format!("`{u}` has no host"),
                ));
            }
        }
        for (key, d) in [
            ("http.connect.timeout.ms", self.connect_timeout),
            ("http.read.timeout.ms", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::config(key, "must be greater than 0"));
            }
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(Error::config(
                "retries.max.wait.ms",
                "must be at least retries.wait.ms",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(Error::config("cache.capacity", "must be at least 1"));
        }
        self.tls.validate("schema.registry.").map_err(|e| {
            Error::config(
                "schema.registry.ssl.key.location",
                strip_prefix(&e.to_string()),
            )
        })?;
        let basic = self.basic_auth.is_some() || self.basic_auth_from_url;
        match self.bearer_source {
            BearerSource::None => {}
            _ if basic => {
                return Err(Error::config(
                    "bearer.auth.credentials.source",
                    "set either basic or bearer auth, not both",
                ))
            }
            BearerSource::StaticToken if self.bearer_token.is_none() => {
                return Err(Error::config(
                    "bearer.auth.token",
                    "STATIC_TOKEN needs a token",
                ))
            }
            BearerSource::OAuthBearer => {
                let o = &self.bearer_oauth;
                if o.token_endpoint_url.is_none()
                    || o.client_id.is_none()
                    || o.client_secret.is_none()
                {
                    return Err(Error::config(
                        "bearer.auth.issuer.endpoint.url",
                        "OAUTHBEARER needs bearer.auth.issuer.endpoint.url, bearer.auth.client.id and bearer.auth.client.secret",
                    ));
                }
            }
            BearerSource::StaticToken => {}
        }
        Ok(())
    }

    /// The strategy for keys or values.
    pub fn strategy(&self, part: RecordPart) -> SubjectNameStrategy {
        match part {
            RecordPart::Key => self.key_subject_name_strategy,
            RecordPart::Value => self.value_subject_name_strategy,
        }
    }
}

fn strip_prefix(msg: &str) -> String {
    // "invalid config `k`: why" -> "why"
    msg.split_once("`: ").map_or(msg, |(_, m)| m).to_owned()
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    crate::config::parse_bool(key, v)
        .map_err(|_| Error::config(key, format!("`{v}` is not true or false")))
}

fn parse_strategy(key: &str, v: &str) -> Result<SubjectNameStrategy> {
    SubjectNameStrategy::parse(v).ok_or_else(|| {
        Error::config(
            key,
            format!(
                "`{v}` is not TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        SchemaRegistryConfig::default().validate().unwrap();
    }

    #[test]
    fn set_by_confluent_names() {
        let mut c = SchemaRegistryConfig::default();
        c.set("schema.registry.url", "http://a:1, http://b:2/x")
            .unwrap();
        c.set("basic.auth.user.info", "me:s3:cret").unwrap();
        c.set("auto.register.schemas", "false").unwrap();
        c.set("use.latest.version", "TRUE").unwrap();
        c.set(
            "value.subject.name.strategy",
            "io.confluent.kafka.serializers.subject.RecordNameStrategy",
        )
        .unwrap();
        c.set("http.read.timeout.ms", "1500").unwrap();
        assert_eq!(c.urls, vec!["http://a:1", "http://b:2/x"]);
        assert_eq!(c.basic_auth, Some(("me".into(), "s3:cret".into())));
        assert!(!c.auto_register_schemas && c.use_latest_version);
        assert_eq!(
            c.value_subject_name_strategy,
            SubjectNameStrategy::RecordName
        );
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        c.validate().unwrap();
        assert!(
            !format!("{c:?}").contains("s3:cret"),
            "password leaked into Debug"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = SchemaRegistryConfig::default();
        let e = c
            .set("schema.registry.urls", "http://x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schema.registry.urls") && e.contains("unknown"),
            "{e}"
        );
        let e = c
            .set("auto.register.schemas", "yes")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auto.register.schemas") && e.contains("yes"),
            "{e}"
        );
        let e = c
            .set("http.read.timeout.ms", "soon")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.read.timeout.ms") && e.contains("soon"),
            "{e}"
        );
        let e = c
            .set("value.subject.name.strategy", "Mine")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("value.subject.name.strategy") && e.contains("Mine"),
            "{e}"
        );
        assert!(c
            .set("basic.auth.user.info", "nocolon")
            .unwrap_err()
            .to_string()
            .contains("user:password"));
        c.set("schema.registry.url", "https://x:1").unwrap();
        if !cfg!(feature = "tls") {
            assert!(c
                .validate()
                .unwrap_err()
                .to_string()
                .contains("`tls` feature"));
        }
        c.set("schema.registry.url", "ftp://x").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("schema.registry.url"));
        c.set("schema.registry.url", "").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn subject_names() {
        use RecordPart::*;
        use SubjectNameStrategy::*;
        assert_eq!(TopicName.subject("t", Value, None).unwrap(), "t-value");
        assert_eq!(TopicName.subject("t", Key, Some("a.B")).unwrap(), "t-key");
        assert_eq!(RecordName.subject("t", Value, Some("a.B")).unwrap(), "a.B");
        assert_eq!(
            TopicRecordName.subject("t", Key, Some("a.B")).unwrap(),
            "t-a.B"
        );
        assert!(RecordName
            .subject("t", Value, None)
            .unwrap_err()
            .to_string()
            .contains("named schema"));
        assert_eq!(
            SubjectNameStrategy::parse("topicrecordname"),
            Some(TopicRecordName)
        );
    }
}
