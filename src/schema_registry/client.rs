//! REST client for Confluent-compatible schema registries.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::cache::FlightCache;
use super::compat::CompatibilityLevel;
use super::config::{BearerSource, SchemaRegistryConfig};
use super::error::{Error, Result};
use crate::retry::{retry, Exhausted, RetryAction, RetryPolicy};

const CONTENT: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPTS: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
/// Largest registry answer read; schemas are small, lists of subjects are not unbounded.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Which version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The newest version.
    Latest,
    /// A version number (1-based).
    Number(i32),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A schema as registered under a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredSchema {
    /// Subject.
    pub subject: String,
    /// Global schema id (the one in the wire format).
    pub id: u32,
    /// Version within the subject.
    pub version: i32,
    /// Schema text.
    pub schema: String,
    /// `AVRO`, `JSON` or `PROTOBUF`; `None` means AVRO.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
}

/// The registry's answer to a compatibility test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompatibilityCheck {
    /// Whether the schema may be registered.
    pub is_compatible: bool,
    /// Reasons, when the registry gives them (`verbose=true`; Apicurio gives none).
    #[serde(default)]
    pub messages: Vec<String>,
}

/// Context of one call, for error messages.
#[derive(Default)]
struct Op<'a> {
    name: &'a str,
    subject: Option<&'a str>,
    version: Option<Version>,
    what: Option<String>,
}

/// How requests authenticate.
enum Auth {
    None,
    Basic(String, crate::security::Secret),
    Bearer(crate::security::Secret),
    Tokens(Arc<dyn crate::security::TokenProvider>),
}

struct Inner {
    http: reqwest::Client,
    bases: Vec<Url>,
    auth: Auth,
    config: SchemaRegistryConfig,
    requests: AtomicU64,
    next_base: AtomicUsize,
    by_id: FlightCache<u32, Arc<str>>,
    ids: FlightCache<(String, String), u32>,
    latest: FlightCache<String, RegisteredSchema>,
}

/// An asynchronous registry client with id and subject caches. Cheap to
/// clone; clones share the caches and the connection pool.
///
/// Cached: schema by id, id by (subject, schema). Once warm, serializers and
/// deserializers make no HTTP calls ([`SchemaRegistryClient::request_count`]).
#[derive(Clone)]
pub struct SchemaRegistryClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryClient")
            .field("urls", &self.inner.config.urls)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl SchemaRegistryClient {
    /// A client for the registry at `url` with default settings.
    pub fn with_url(url: &str) -> Result<Self> {
        Self::new(&SchemaRegistryConfig::new(url))
    }

    /// A client from a config (validated first).
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self> {
        config.validate()?;
        let mut bases = config
            .urls
            .iter()
            .map(|u| {
                Url::parse(u)
                    .map_err(|e| Error::config("schema.registry.url", format!("`{u}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let auth = auth(config, &mut bases)?;
        #[allow(unused_mut)]
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("kafka-ingest/", env!("CARGO_PKG_VERSION")));
        #[cfg(feature = "tls")]
        if bases.iter().any(|b| b.scheme() == "https") {
            let tls = config
                .tls
                .rustls_config()
                .map_err(|e| Error::config("schema.registry.ssl.ca.location", e.to_string()))?;
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let http = builder.build().map_err(|e| {
            Error::config(
                "schema.registry.url",
                format!("cannot build HTTP client: {e}"),
            )
        })?;
        let cap = config.cache_capacity;
        Ok(SchemaRegistryClient {
            inner: Arc::new(Inner {
                http,
                bases,
                auth,
                config: config.clone(),
                requests: AtomicU64::new(0),
                next_base: AtomicUsize::new(0),
                by_id: FlightCache::new(cap),
                ids: FlightCache::new(cap),
                latest: FlightCache::new(cap),
            }),
        })
    }

    /// The config this client was built from.
    pub fn config(&self) -> &SchemaRegistryConfig {
        &self.inner.config
    }

    /// HTTP requests sent so far (each retry counts).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Registers `schema` (Avro JSON text) under `subject` and returns its
    /// id. Idempotent: the same schema gets the same id. Cached.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let key = (subject.to_owned(), schema.to_owned());
        self.inner
            .ids
            .get_or_load(&key, || async {
                #[derive(Deserialize)]
                struct Id {
                    id: u32,
                }
                let op = Op {
                    name: "register",
                    subject: Some(subject),
                    ..Default::default()
                };
                let body = json!({ "schema": schema });
                let r: Id = self
                    .call(
                        &op,
                        Method::POST,
                        &["subjects", subject, "versions"],
                        &[],
                        Some(body),
                    )
                    .await?;
                // The id now names this schema: deserializers need not fetch it.
                self.inner.by_id.insert(r.id, Arc::from(schema));
                Ok(r.id)
            })
            .await
    }

    /// Finds `schema` under `subject` without registering it. The id is cached.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema> {
        let op = Op {
            name: "lookup",
            subject: Some(subject),
            what: Some(format!(
                "the schema is not registered under subject `{subject}`"
            )),
            ..Default::default()
        };
        let body = json!({ "schema": schema });
        let r: RegisteredSchema = self
            .call(&op, Method::POST, &["subjects", subject], &[], Some(body))
            .await?;
        self.inner
            .ids
            .insert((subject.to_owned(), schema.to_owned()), r.id);
        self.inner.by_id.insert(r.id, Arc::from(r.schema.as_str()));
        Ok(r)
    }

    /// The id of `schema` under `subject`: registered when `register`, else looked up. Cached.
    pub async fn id_for(&self, subject: &str, schema: &str, register: bool) -> Result<u32> {
        if register {
            return self.register(subject, schema).await;
        }
        let key = (subject.to_owned(), schema.to_owned());
        self.inner
            .ids
            .get_or_load(&key, || async {
                Ok(self.lookup(subject, schema).await?.id)
            })
            .await
    }

    /// The schema text with this global id. Cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<str>> {
        self.inner
            .by_id
            .get_or_load(&id, || async {
                #[derive(Deserialize)]
                struct S {
                    schema: String,
                }
                let op = Op {
                    name: "get schema by id",
                    what: Some(format!("no schema has id {id}")),
                    ..Default::default()
                };
                let r: S = self
                    .call(
                        &op,
                        Method::GET,
                        &["schemas", "ids", &id.to_string()],
                        &[],
                        None,
                    )
                    .await?;
                Ok(Arc::from(r.schema))
            })
            .await
    }

    /// A version of a subject (not cached: `latest` moves).
    pub async fn version(&self, subject: &str, version: Version) -> Result<RegisteredSchema> {
        let op = Op {
            name: "get version",
            subject: Some(subject),
            version: Some(version),
            ..Default::default()
        };
        let v = version.to_string();
        let r: RegisteredSchema = self
            .call(
                &op,
                Method::GET,
                &["subjects", subject, "versions", &v],
                &[],
                None,
            )
            .await?;
        self.inner.by_id.insert(r.id, Arc::from(r.schema.as_str()));
        Ok(r)
    }

    /// The newest version of a subject (not cached).
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        self.version(subject, Version::Latest).await
    }

    /// The newest version as first seen by this client (for `use.latest.version`;
    /// like Confluent's default, it is not refreshed).
    pub async fn latest_cached(&self, subject: &str) -> Result<RegisteredSchema> {
        self.inner
            .latest
            .get_or_load(subject, || self.latest(subject))
            .await
    }

    /// All subjects.
    pub async fn subjects(&self) -> Result<Vec<String>> {
        let op = Op {
            name: "list subjects",
            ..Default::default()
        };
        self.call(&op, Method::GET, &["subjects"], &[], None).await
    }

    /// The version numbers of a subject.
    pub async fn versions(&self, subject: &str) -> Result<Vec<i32>> {
        let op = Op {
            name: "list versions",
            subject: Some(subject),
            ..Default::default()
        };
        self.call(
            &op,
            Method::GET,
            &["subjects", subject, "versions"],
            &[],
            None,
        )
        .await
    }

    /// Deletes a subject and returns the versions it had. A soft delete first;
    /// `permanent` then also purges it (Confluent needs both steps).
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>> {
        let op = Op {
            name: "delete subject",
            subject: Some(subject),
            ..Default::default()
        };
        let soft: Result<Vec<i32>> = self
            .call(&op, Method::DELETE, &["subjects", subject], &[], None)
            .await;
        let versions = match soft {
            // Already soft-deleted (40404): purging is what is left to do.
            Err(e) if permanent && e.code() == Some(40404) => None,
            r => Some(r?),
        };
        if permanent {
            let purged: Vec<i32> = self
                .call(
                    &op,
                    Method::DELETE,
                    &["subjects", subject],
                    &[("permanent", "true")],
                    None,
                )
                .await?;
            self.forget(subject);
            return Ok(versions.unwrap_or(purged));
        }
        self.forget(subject);
        Ok(versions.unwrap_or_default())
    }

    fn forget(&self, subject: &str) {
        self.inner.ids.remove_where(|(s, _)| s == subject);
        self.inner.latest.remove_where(|s| s == subject);
    }

    /// Asks whether `schema` may be registered under `subject`, tested against
    /// one version (`/compatibility/subjects/{s}/versions/{v}`).
    pub async fn test_compatibility(
        &self,
        subject: &str,
        schema: &str,
        version: Version,
    ) -> Result<CompatibilityCheck> {
        let op = Op {
            name: "test compatibility",
            subject: Some(subject),
            version: Some(version),
            ..Default::default()
        };
        let v = version.to_string();
        let path = ["compatibility", "subjects", subject, "versions", &v];
        self.call(
            &op,
            Method::POST,
            &path,
            &[("verbose", "true")],
            Some(json!({ "schema": schema })),
        )
        .await
    }

    /// Asks whether `schema` may be registered under `subject`, tested against
    /// the versions the subject's level names (`/compatibility/subjects/{s}/versions`).
    pub async fn test_compatibility_all(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<CompatibilityCheck> {
        let op = Op {
            name: "test compatibility",
            subject: Some(subject),
            ..Default::default()
        };
        let path = ["compatibility", "subjects", subject, "versions"];
        self.call(
            &op,
            Method::POST,
            &path,
            &[("verbose", "true")],
            Some(json!({ "schema": schema })),
        )
        .await
    }

    /// The global compatibility level.
    pub async fn global_compatibility(&self) -> Result<CompatibilityLevel> {
        let op = Op {
            name: "get global compatibility",
            ..Default::default()
        };
        let r: LevelAnswer = self.call(&op, Method::GET, &["config"], &[], None).await?;
        r.level(op.name)
    }

    /// Sets the global compatibility level.
    pub async fn set_global_compatibility(
        &self,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        let op = Op {
            name: "set global compatibility",
            ..Default::default()
        };
        let body = json!({ "compatibility": level.as_str() });
        let r: LevelAnswer = self
            .call(&op, Method::PUT, &["config"], &[], Some(body))
            .await?;
        r.level(op.name)
    }

    /// The subject's own level; `None` when it has none (Confluent's 40408).
    /// Some registries (Apicurio) answer with the global level instead.
    pub async fn subject_compatibility(&self, subject: &str) -> Result<Option<CompatibilityLevel>> {
        let op = Op {
            name: "get subject compatibility",
            subject: Some(subject),
            ..Default::default()
        };
        match self
            .call::<LevelAnswer>(&op, Method::GET, &["config", subject], &[], None)
            .await
        {
            Ok(r) => r.level(op.name).map(Some),
            Err(e) if e.code() == Some(40408) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the subject's level.
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        let op = Op {
            name: "set subject compatibility",
            subject: Some(subject),
            ..Default::default()
        };
        let body = json!({ "compatibility": level.as_str() });
        let r: LevelAnswer = self
            .call(&op, Method::PUT, &["config", subject], &[], Some(body))
            .await?;
        r.level(op.name)
    }

    /// Removes the subject's level so the global one applies again.
    pub async fn delete_subject_compatibility(&self, subject: &str) -> Result<()> {
        let op = Op {
            name: "delete subject compatibility",
            subject: Some(subject),
            ..Default::default()
        };
        let _: serde_json::Value = self
            .call(&op, Method::DELETE, &["config", subject], &[], None)
            .await?;
        Ok(())
    }

    /// One REST call with retries on connection errors and 5xx answers.
    async fn call<T: DeserializeOwned>(
        &self,
        op: &Op<'_>,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let body = body.map(|b| b.to_string());
        let first = inner.next_base.load(Ordering::Relaxed);
        let attempt = std::sync::atomic::AtomicUsize::new(0);
        let policy = RetryPolicy {
            backoff: cfg.retry_backoff,
            backoff_max: cfg.retry_backoff_max,
            deadline: None,
            max_attempts: Some(cfg.max_retries.saturating_add(1)),
        };
        let result = retry(
            policy,
            || {
                let n = attempt.fetch_add(1, Ordering::Relaxed);
                let index = (first + n) % inner.bases.len();
                self.attempt(op, &method, segments, query, body.as_deref(), index)
            },
            |e: &Attempt| match e {
                Attempt::Retriable { .. } => RetryAction::Retry,
                Attempt::Final(_) => RetryAction::NoRetry,
            },
            |e, _| {
                if let Attempt::Retriable {
                    rotate: Some(index),
                    error,
                } = e
                {
                    tracing::debug!(%error, "schema registry {}: retrying", op.name);
                    // Try the next URL first next time too.
                    inner.next_base.store(index + 1, Ordering::Relaxed);
                }
            },
        )
        .await;
        match result {
            Ok(v) => Ok(v),
            Err(Exhausted::Failed(a) | Exhausted::GaveUp { last: Some(a), .. }) => {
                Err(a.into_error())
            }
            Err(Exhausted::GaveUp { last: None, .. }) => Err(Error::Timeout {
                operation: op.name.to_owned(),
                after: cfg.request_timeout,
            }),
        }
    }

    /// One REST request to base URL `index`.
    async fn attempt<T: DeserializeOwned>(
        &self,
        op: &Op<'_>,
        method: &Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&str>,
        index: usize,
    ) -> std::result::Result<T, Attempt> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let url = endpoint(&inner.bases[index], segments, query);
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = inner
            .http
            .request(method.clone(), url)
            .header(ACCEPT, ACCEPTS);
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, CONTENT).body(b.to_owned());
        }
        req = match &inner.auth {
            Auth::None => req,
            Auth::Basic(user, password) => req.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => req.bearer_auth(token.expose()),
            Auth::Tokens(p) => {
                let t = p.token().await.map_err(|e| {
                    Attempt::Final(Error::config(
                        "bearer.auth.issuer.endpoint.url",
                        format!("no bearer token: {e}"),
                    ))
                })?;
                req.bearer_auth(t.value.expose())
            }
        };
        if let Some(c) = &cfg.bearer_logical_cluster {
            req = req.header("target-sr-cluster", c);
        }
        if let Some(p) = &cfg.bearer_identity_pool {
            req = req.header("Confluent-Identity-Pool-Id", p);
        }
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                read_limited(resp).await.map(|bytes| (status, bytes))
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok((_, None)) => Err(Attempt::Final(Error::InvalidResponse {
                operation: op.name.to_owned(),
                message: format!("answer larger than {MAX_RESPONSE_BYTES} bytes"),
            })),
            Ok((status, Some(bytes))) if status.is_success() => serde_json::from_slice(&bytes)
                .map_err(|e| {
                    Attempt::Final(Error::InvalidResponse {
                        operation: op.name.to_owned(),
                        message: format!("{e}; body: {}", snippet(&bytes)),
                    })
                }),
            // 501 Not Implemented will not change by asking again.
            Ok((status, Some(bytes)))
                if status.is_server_error() && status != reqwest::StatusCode::NOT_IMPLEMENTED =>
            {
                Err(Attempt::Retriable {
                    rotate: None,
                    error: answer_error(status, &bytes, op),
                })
            }
            Ok((status, Some(bytes))) => Err(Attempt::Final(answer_error(status, &bytes, op))),
            Err(e) if is_connection_error(&e) => Err(Attempt::Retriable {
                rotate: Some(index),
                error: transport_error(e, &inner.bases[index], op, cfg.request_timeout),
            }),
            Err(e) => Err(Attempt::Final(transport_error(
                e,
                &inner.bases[index],
                op,
                cfg.request_timeout,
            ))),
        }
    }
}

/// How one registry request failed.
enum Attempt {
    /// Worth another try (a 5xx or a connection failure; `rotate` names the
    /// base URL that failed to connect).
    Retriable {
        rotate: Option<usize>,
        error: Error,
    },
    Final(Error),
}

impl Attempt {
    fn into_error(self) -> Error {
        match self {
            Attempt::Retriable { error, .. } | Attempt::Final(error) => error,
        }
    }
}

#[derive(Deserialize)]
struct LevelAnswer {
    #[serde(rename = "compatibilityLevel", alias = "compatibility")]
    level: Option<String>,
}

impl LevelAnswer {
    fn level(self, op: &str) -> Result<CompatibilityLevel> {
        let s = self.level.unwrap_or_default();
        s.parse().map_err(|_| Error::InvalidResponse {
            operation: op.to_owned(),
            message: format!("unknown level `{s}`"),
        })
    }
}

fn endpoint(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        // Each segment is percent-encoded: subjects may hold '/' or spaces.
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// The body, or `None` when it exceeds [`MAX_RESPONSE_BYTES`].
/// The credentials `config` names; URL user info is moved out of `bases`.
fn auth(config: &SchemaRegistryConfig, bases: &mut [Url]) -> Result<Auth> {
    use crate::security::{OidcClientCredentialsProvider, Secret};
    let mut from_url = None;
    for b in bases.iter_mut() {
        if !b.username().is_empty() {
            let user = percent_decode(b.username());
            let password = percent_decode(b.password().unwrap_or(""));
            from_url.get_or_insert((user, password));
            let _ = b.set_username("");
            let _ = b.set_password(None);
        }
    }
    Ok(match config.bearer_source {
        BearerSource::StaticToken => Auth::Bearer(
            config
                .bearer_token
                .clone()
                .unwrap_or_else(|| Secret::new("")),
        ),
        BearerSource::OAuthBearer => {
            let o = &config.bearer_oauth;
            let missing = || {
                Error::config(
                    "bearer.auth.issuer.endpoint.url",
                    "incomplete OAUTHBEARER settings",
                )
            };
            let p = OidcClientCredentialsProvider::new(
                o.token_endpoint_url.as_deref().ok_or_else(missing)?,
                o.client_id.as_deref().ok_or_else(missing)?,
                o.client_secret.clone().ok_or_else(missing)?,
                o.scope.clone(),
            )
            .map_err(|e| Error::config("bearer.auth.issuer.endpoint.url", e.to_string()))?;
            Auth::Tokens(Arc::new(p))
        }
        BearerSource::None if config.basic_auth_from_url => match from_url {
            Some((u, p)) => Auth::Basic(u, Secret::new(p)),
            None => {
                return Err(Error::config(
                    "basic.auth.credentials.source",
                    "URL needs user:password@ in schema.registry.url",
                ))
            }
        },
        BearerSource::None => match &config.basic_auth {
            Some((u, p)) => Auth::Basic(u.clone(), Secret::new(p.clone())),
            None => Auth::None,
        },
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read_limited(mut resp: reqwest::Response) -> reqwest::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

fn is_connection_error(e: &reqwest::Error) -> bool {
    // Connect failures (refused, DNS, connect timeout) and broken connections;
    // not a read timeout, which would multiply the caller's wait.
    e.is_connect() || ((e.is_request() || e.is_body()) && !e.is_timeout())
}

fn transport_error(
    e: reqwest::Error,
    base: &Url,
    op: &Op<'_>,
    after: std::time::Duration,
) -> Error {
    if e.is_timeout() && !e.is_connect() {
        return Error::Timeout {
            operation: format!("{} at {base}", op.name),
            after,
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Connection {
        url: base.to_string(),
        operation: op.name.to_owned(),
        message,
    }
}

fn snippet(bytes: &[u8]) -> String {
    if let Some(page) = html_summary(bytes) {
        return page;
    }
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    if bytes.len() > 300 {
        s + "..."
    } else {
        s
    }
}

/// An HTML error page (a proxy's, a web server's) as one line: its title,
/// never the markup.
fn html_summary(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let head = text.trim_start().get(..15)?.to_ascii_lowercase();
    if !(head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<head"))
    {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .and_then(|i| {
            let start = i + "<title>".len();
            lower[start..]
                .find("</title>")
                .map(|j| text[start..start + j].trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    Some(match title {
        Some(t) => format!("an HTML page titled `{t}` (not a registry answer)"),
        None => "an HTML page (not a registry answer)".to_owned(),
    })
}

fn answer_error(status: StatusCode, body: &[u8], op: &Op<'_>) -> Error {
    #[derive(Deserialize)]
    struct Answer {
        error_code: Option<i32>,
        #[serde(alias = "detail")]
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Answer>(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|a| a.error_code)
        .unwrap_or(i32::from(status.as_u16()));
    let message = parsed
        .and_then(|a| a.message)
        .unwrap_or_else(|| snippet(body));
    let subject = op.subject.unwrap_or_default().to_owned();
    match (status.as_u16(), code) {
        (401 | 403, _) | (_, 40101 | 40301) => Error::Unauthorized {
            status: status.as_u16(),
            message,
        },
        (_, 40401) => Error::SubjectNotFound { subject },
        (_, 40402) => Error::VersionNotFound {
            subject,
            version: op.version.map(|v| v.to_string()).unwrap_or_default(),
        },
        (_, 40403) => Error::SchemaNotFound {
            what: op.what.clone().unwrap_or(message),
        },
        (_, 409) => Error::IncompatibleSchema { subject, message },
        (_, 42201) => Error::InvalidSchema { message },
        _ => Error::Registry {
            operation: op.name.to_owned(),
            status: status.as_u16(),
            code,
            message,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against a counting fake registry (a real HTTP server on loopback).
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    type Routes = HashMap<(String, String), Vec<(u16, String)>>;
    /// (method, path, body, request head).
    type Logged = (String, String, Option<String>, String);

    /// `(method, path) -> (status, body)`; every request is logged.
    #[derive(Clone, Default)]
    pub(crate) struct Fake {
        pub routes: Arc<Mutex<Routes>>,
        /// (method, path, body, request head).
        pub log: Arc<Mutex<Vec<Logged>>>,
        pub delay: Duration,
    }

    impl Fake {
        /// Answers with these in turn; the last one repeats.
        pub fn route(&self, method: &str, path: &str, answers: &[(u16, &str)]) {
            let v = answers.iter().map(|(s, b)| (*s, b.to_string())).collect();
            self.routes
                .lock()
                .unwrap()
                .insert((method.into(), path.into()), v);
        }

        pub fn count(&self) -> usize {
            self.log.lock().unwrap().len()
        }

        pub async fn start(self) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else {
                        return;
                    };
                    let fake = self.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let head_end = loop {
                            if matches!(sock.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                                return;
                            }
                            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break p + 4;
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            if sock.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        let body = (len > 0).then(|| {
                            String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned()
                        });
                        let mut first = head.lines().next().unwrap_or("").split(' ');
                        let method = first.next().unwrap_or("").to_owned();
                        let path = first
                            .next()
                            .unwrap_or("")
                            .split('?')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        fake.log.lock().unwrap().push((
                            method.clone(),
                            path.clone(),
                            body,
                            head.clone(),
                        ));
                        tokio::time::sleep(fake.delay).await;
                        let (status, body) = {
                            let mut routes = fake.routes.lock().unwrap();
                            match routes.get_mut(&(method, path)) {
                                Some(v) if v.len() > 1 => v.remove(0),
                                Some(v) => v[0].clone(),
                                None => {
                                    (404, r#"{"error_code":404,"message":"no route"}"#.to_owned())
                                }
                            }
                        };
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    });
                }
            });
            format!("http://{addr}/apis/ccompat/v7")
        }
    }

    pub(crate) fn client(url: &str) -> SchemaRegistryClient {
        let mut c = SchemaRegistryConfig::new(url);
        c.retry_backoff = Duration::from_millis(1);
        c.retry_backoff_max = Duration::from_millis(5);
        SchemaRegistryClient::new(&c).unwrap()
    }

    #[tokio::test]
    async fn caches_and_single_flight() {
        let fake = Fake {
            delay: Duration::from_millis(100),
            ..Default::default()
        };
        fake.route(
            "GET",
            "/apis/ccompat/v7/schemas/ids/7",
            &[(200, r#"{"schema":"\"string\""}"#)],
        );
        fake.route(
            "POST",
            "/apis/ccompat/v7/subjects/t-value/versions",
            &[(200, r#"{"id":7}"#)],
        );
        let url = fake.clone().start().await;
        let c = client(&url);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let s = c.schema_by_id(7).await.unwrap();
                let id = c.register("t-value", "\"string\"").await.unwrap();
                (s, id)
            }));
        }
        for t in tasks {
            let (s, id) = t.await.unwrap();
            assert_eq!((&*s, id), ("\"string\"", 7));
        }
        assert_eq!(
            fake.count(),
            2,
            "16 concurrent misses per key make one request each: {:?}",
            fake.log.lock().unwrap()
        );
        for _ in 0..100 {
            c.schema_by_id(7).await.unwrap();
            c.register("t-value", "\"string\"").await.unwrap();
        }
        assert_eq!(fake.count(), 2, "warm cache makes no requests");
        assert_eq!(c.request_count(), 2);
        let log = fake.log.lock().unwrap();
        let body: serde_json::Value = serde_json::from_str(
            log.iter()
                .find(|l| l.0 == "POST")
                .unwrap()
                .2
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body, json!({"schema": "\"string\""}));
    }

    #[tokio::test]
    async fn error_codes_are_typed() {
        let fake = Fake::default();
        let p = "/apis/ccompat/v7";
        fake.route(
            "GET",
            &format!("{p}/schemas/ids/1"),
            &[(
                404,
                r#"{"error_code":40403,"message":"Schema 1 not found"}"#,
            )],
        );
        fake.route(
            "GET",
            &format!("{p}/subjects/s/versions/3"),
            &[(404, r#"{"error_code":40402,"message":"v"}"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/subjects/none/versions"),
            &[(404, r#"{"error_code":40401,"message":"s"}"#)],
        );
        fake.route(
            "POST",
            &format!("{p}/subjects/s/versions"),
            &[(409, r#"{"error_code":409,"message":"diff"}"#)],
        );
        fake.route(
            "POST",
            &format!("{p}/subjects/bad/versions"),
            &[(422, r#"{"error_code":42201,"message":"nope"}"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/subjects"),
            &[(401, r#"{"error_code":40101,"message":"who"}"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/config/s"),
            &[(404, r#"{"error_code":40408,"message":"none"}"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/config"),
            &[(200, r#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/subjects/weird%2Fname%20x/versions"),
            &[(200, "[1,2]")],
        );
        let c = client(&fake.clone().start().await);
        let e = c.schema_by_id(1).await.unwrap_err();
        assert!(
            matches!(e, Error::SchemaNotFound { .. }) && e.to_string().contains("id 1"),
            "{e}"
        );
        let e = c.version("s", Version::Number(3)).await.unwrap_err();
        assert!(
            matches!(&e, Error::VersionNotFound { subject, version } if subject == "s" && version == "3"),
            "{e}"
        );
        let e = c.versions("none").await.unwrap_err();
        assert!(
            matches!(&e, Error::SubjectNotFound { subject } if subject == "none"),
            "{e}"
        );
        let e = c.register("s", "\"int\"").await.unwrap_err();
        assert!(
            matches!(&e, Error::IncompatibleSchema { message, .. } if message == "diff"),
            "{e}"
        );
        assert_eq!(e.code(), Some(409));
        assert!(matches!(
            c.register("bad", "x").await.unwrap_err(),
            Error::InvalidSchema { .. }
        ));
        let e = c.subjects().await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized { status: 401, .. }), "{e}");
        assert_eq!(c.subject_compatibility("s").await.unwrap(), None);
        assert_eq!(
            c.global_compatibility().await.unwrap(),
            CompatibilityLevel::FullTransitive
        );
        assert_eq!(c.versions("weird/name x").await.unwrap(), vec![1, 2]);
        assert_eq!(fake.count(), 9, "4xx answers are not retried");
    }

    #[tokio::test]
    async fn retries_5xx_then_gives_up() {
        let fake = Fake::default();
        let p = "/apis/ccompat/v7";
        fake.route(
            "GET",
            &format!("{p}/subjects"),
            &[(503, "busy"), (500, "{}"), (200, r#"["a"]"#)],
        );
        fake.route(
            "GET",
            &format!("{p}/schemas/ids/5"),
            &[(500, r#"{"error_code":50001,"message":"store"}"#)],
        );
        let c = client(&fake.clone().start().await);
        assert_eq!(c.subjects().await.unwrap(), vec!["a"]);
        assert_eq!(fake.count(), 3);
        let e = c.schema_by_id(5).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Registry {
                    code: 50001,
                    status: 500,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_retriable());
        assert_eq!(fake.count(), 3 + 4, "1 try + max.retries (3)");
    }

    #[tokio::test]
    async fn connection_errors_retry_then_fail_clearly() {
        // A port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(&format!("http://127.0.0.1:{port}"));
        let e = c.subjects().await.unwrap_err();
        assert!(matches!(e, Error::Connection { .. }), "{e}");
        assert!(e.to_string().contains("unreachable"), "{e}");
        assert_eq!(c.request_count(), 4);
    }

    #[tokio::test]
    async fn request_timeout_is_enforced() {
        let fake = Fake {
            delay: Duration::from_secs(5),
            ..Default::default()
        };
        fake.route("GET", "/subjects", &[(200, "[]")]);
        let url = fake.clone().start().await.replace("/apis/ccompat/v7", "");
        let mut cfg = SchemaRegistryConfig::new(&url);
        cfg.request_timeout = Duration::from_millis(200);
        let c = SchemaRegistryClient::new(&cfg).unwrap();
        let t = std::time::Instant::now();
        let e = c.subjects().await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(c.request_count(), 1, "read timeouts are not retried");
    }

    #[tokio::test]
    async fn oversized_answers_are_refused() {
        let fake = Fake::default();
        let huge = format!("[\"{}\"]", "x".repeat(MAX_RESPONSE_BYTES));
        fake.route("GET", "/subjects", &[(200, &huge)]);
        let url = fake.clone().start().await.replace("/apis/ccompat/v7", "");
        let e = client(&url).subjects().await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidResponse { .. }) && e.to_string().contains("larger than"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn basic_auth_header_is_sent() {
        let fake = Fake::default();
        fake.route("GET", "/subjects", &[(200, "[]")]);
        let url = fake.clone().start().await.replace("/apis/ccompat/v7", "");
        let mut cfg = SchemaRegistryConfig::new(&url);
        cfg.set("basic.auth.user.info", "alice:secret").unwrap();
        SchemaRegistryClient::new(&cfg)
            .unwrap()
            .subjects()
            .await
            .unwrap();
        let head = fake.log.lock().unwrap()[0].3.to_ascii_lowercase();
        // base64("alice:secret")
        assert!(
            head.contains("authorization: basic ywxpy2u6c2vjcmv0"),
            "{head}"
        );
    }
}
