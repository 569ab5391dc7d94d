//! Security settings (TLS, SASL) and OAUTHBEARER token providers.
//!
//! A leaf module: plain data plus the [`TokenProvider`] trait, usable by any
//! layer. Properties are parsed by [`ClientConfig::set`](crate::ClientConfig::set)
//! under the Java client's names (`security.protocol`, `ssl.*`, `sasl.*`,
//! `sasl.jaas.config`). Secrets are held in [`Secret`], which never prints.

mod oidc;
mod unsecured;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use oidc::OidcClientCredentialsProvider;
pub use unsecured::UnsecuredJwtProvider;

/// A password, key or token. `Debug` prints `***`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; only the code that sends it should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// No TLS, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS (optionally with a client certificate), no SASL.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses the Java name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628, KIP-255).
    OAuthBearer,
}

impl SaslMechanism {
    /// Parses the mechanism name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Self::Plain,
            "SCRAM-SHA-256" => Self::ScramSha256,
            "SCRAM-SHA-512" => Self::ScramSha512,
            "OAUTHBEARER" => Self::OAuthBearer,
            _ => return None,
        })
    }

    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PEM data: a file, or the text itself (librdkafka's `ssl.*.pem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// A PEM file.
    File(PathBuf),
    /// PEM text given inline (a key's text is secret).
    Inline(Secret),
}

/// TLS settings (`ssl.*`), used when `security.protocol` is SSL or SASL_SSL,
/// and by the schema registry client (`schema.registry.ssl.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// `ssl.ca.location` / `ssl.truststore.location` / `ssl.ca.pem`: CAs to
    /// trust; without it, the Mozilla roots (webpki-roots).
    pub ca: Option<Pem>,
    /// `ssl.certificate.location` / `ssl.certificate.pem`: client certificate chain (mTLS).
    pub certificate: Option<Pem>,
    /// `ssl.key.location` / `ssl.key.pem`: the client certificate's private key
    /// (PKCS#8, SEC1 or PKCS#1; encrypted PKCS#8 with `ssl.key.password`).
    pub key: Option<Pem>,
    /// `ssl.key.password`.
    pub key_password: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm`: `https` (default) checks the
    /// broker's host name against its certificate; empty turns that off (the
    /// chain is still verified).
    pub verify_hostname: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca: None,
            certificate: None,
            key: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

/// OAUTHBEARER token settings: where tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthSettings {
    /// `sasl.oauthbearer.token.endpoint.url`: use the OIDC client-credentials provider.
    pub token_endpoint_url: Option<String>,
    /// `sasl.oauthbearer.client.id` or JAAS `clientId`.
    pub client_id: Option<String>,
    /// `sasl.oauthbearer.client.secret` or JAAS `clientSecret`.
    pub client_secret: Option<Secret>,
    /// `sasl.oauthbearer.scope` or JAAS `scope`.
    pub scope: Option<String>,
    /// JAAS `unsecuredLoginStringClaim_sub` (or librdkafka's
    /// `sasl.oauthbearer.config` `principal=`): use unsecured JWTs for this principal.
    pub unsecured_principal: Option<String>,
    /// JAAS `unsecuredLoginLifetimeSeconds` (default 3600 s).
    pub unsecured_lifetime: Duration,
    /// SASL extensions sent with the token (`unsecuredLoginExtension_NAME`,
    /// `sasl.oauthbearer.extensions`).
    pub extensions: Vec<(String, String)>,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            token_endpoint_url: None,
            client_id: None,
            client_secret: None,
            scope: None,
            unsecured_principal: None,
            unsecured_lifetime: Duration::from_secs(3600),
            extensions: Vec::new(),
        }
    }
}

/// SASL settings, used when `security.protocol` is SASL_PLAINTEXT or SASL_SSL.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SaslSettings {
    /// `sasl.mechanism` (GSSAPI, Java's default, is not supported: set one).
    pub mechanism: Option<SaslMechanism>,
    /// `sasl.username`, or `username` in `sasl.jaas.config`.
    pub username: Option<String>,
    /// `sasl.password`, or `password` in `sasl.jaas.config`.
    pub password: Option<Secret>,
    /// OAUTHBEARER token settings.
    pub oauth: OAuthSettings,
    /// A token provider set in code; wins over [`oauth`](Self::oauth).
    pub token_provider: Option<Arc<dyn TokenProvider>>,
}

impl PartialEq for SaslSettings {
    fn eq(&self, o: &Self) -> bool {
        self.mechanism == o.mechanism
            && self.username == o.username
            && self.password == o.password
            && self.oauth == o.oauth
            && match (&self.token_provider, &o.token_provider) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// `security.protocol` plus the TLS and SASL settings it uses.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// `ssl.*`.
    pub tls: TlsSettings,
    /// `sasl.*`.
    pub sasl: SaslSettings,
}

impl SecurityConfig {
    /// The OAUTHBEARER token provider these settings name: the one set in
    /// code, else OIDC client credentials when a token endpoint is set, else
    /// unsecured JWTs when a principal is set.
    pub fn token_provider(&self) -> Result<Option<Arc<dyn TokenProvider>>, TokenError> {
        let s = &self.sasl;
        if let Some(p) = &s.token_provider {
            return Ok(Some(p.clone()));
        }
        let o = &s.oauth;
        if let Some(url) = &o.token_endpoint_url {
            let (Some(id), Some(secret)) = (&o.client_id, &o.client_secret) else {
                return Err(TokenError::new(
                    "the token endpoint needs a client id and secret (sasl.oauthbearer.client.id/secret or JAAS clientId/clientSecret)",
                ));
            };
            let p = OidcClientCredentialsProvider::new(url, id, secret.clone(), o.scope.clone())?
                .with_extensions(o.extensions.clone());
            return Ok(Some(Arc::new(p)));
        }
        if let Some(principal) = &o.unsecured_principal {
            let mut p = UnsecuredJwtProvider::new(principal).with_lifetime(o.unsecured_lifetime);
            if let Some(scope) = &o.scope {
                p = p.with_scope(scope);
            }
            return Ok(Some(Arc::new(p.with_extensions(o.extensions.clone()))));
        }
        Ok(None)
    }
}

/// An OAUTHBEARER access token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OAuthBearerToken {
    /// The compact JWS (or any bearer string the broker accepts).
    pub value: Secret,
    /// The principal the token is for, when known (for logs).
    pub principal: Option<String>,
    /// When the token expires, when known.
    pub expires_at: Option<SystemTime>,
    /// SASL extensions sent with it (`key=value`).
    pub extensions: Vec<(String, String)>,
}

impl OAuthBearerToken {
    /// A token with no known principal, expiry or extensions.
    pub fn new(value: impl Into<String>) -> Self {
        OAuthBearerToken {
            value: Secret::new(value),
            principal: None,
            expires_at: None,
            extensions: Vec::new(),
        }
    }

    /// Sets the principal.
    pub fn with_principal(mut self, p: impl Into<String>) -> Self {
        self.principal = Some(p.into());
        self
    }

    /// Sets the expiry.
    pub fn with_expiry(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the SASL extensions.
    pub fn with_extensions(mut self, ext: Vec<(String, String)>) -> Self {
        self.extensions = ext;
        self
    }
}

/// Why a token could not be had. Never contains the secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

impl TokenError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        TokenError(message.into())
    }
}

/// What [`TokenProvider::token`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<OAuthBearerToken, TokenError>> + Send + 'a>>;

/// Supplies OAUTHBEARER tokens. Called on every (re-)authentication, so
/// implementations should cache a token until shortly before it expires.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A valid token.
    fn token(&self) -> TokenFuture<'_>;
}

/// Base64url without padding (JWT segments).
pub(crate) fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The `sub` and `exp` claims of a JWT, if it parses (signature not checked).
pub(crate) fn jwt_claims(token: &str) -> (Option<String>, Option<SystemTime>) {
    use base64::Engine;
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(c) = claims else {
        return (None, None);
    };
    let sub = c["sub"].as_str().map(str::to_owned);
    let exp = c["exp"]
        .as_f64()
        .filter(|e| *e >= 0.0)
        .map(|e| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(e));
    (sub, exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SaslSettings {
            password: Some(Secret::new("hunter2")),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = OAuthBearerToken::new("eyJtoken");
        assert!(!format!("{t:?}").contains("eyJtoken"));
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            SecurityProtocol::parse("sasl_ssl"),
            Some(SecurityProtocol::SaslSsl)
        );
        assert_eq!(
            SaslMechanism::parse("scram-sha-512"),
            Some(SaslMechanism::ScramSha512)
        );
        assert_eq!(SaslMechanism::parse("GSSAPI"), None);
    }
}
