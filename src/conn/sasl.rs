//! SASL authentication on a connection: KIP-43 SaslHandshake then KIP-152
//! SaslAuthenticate rounds, and KIP-368 re-authentication on the live
//! connection before the broker's session lifetime ends.

mod scram;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{ConnError, Connection, Inner};
use crate::codec::{self, msg, versions, ErrorCode};
use crate::security::{
    OAuthBearerToken, SaslMechanism, SaslSettings, Secret, SecurityConfig, TokenProvider,
};
use scram::{Hash, Scram};

/// Successful in-band re-authentications in this process.
static REAUTHENTICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many times connections re-authenticated in place (KIP-368) in this process.
pub fn reauthentication_count() -> u64 {
    REAUTHENTICATIONS.load(Ordering::Relaxed)
}

/// A hostile broker must not keep us in the exchange forever.
const MAX_ROUNDS: usize = 5;

/// What a connection authenticates with; built once per client.
#[derive(Debug)]
pub(crate) struct Sasl {
    mechanism: SaslMechanism,
    username: String,
    password: Secret,
    tokens: Option<Arc<dyn TokenProvider>>,
}

impl Sasl {
    /// The SASL part of `cfg`, or `None` when the protocol has no SASL.
    pub(crate) fn new(cfg: &SecurityConfig) -> Result<Option<Sasl>, (&'static str, String)> {
        if !cfg.protocol.uses_sasl() {
            return Ok(None);
        }
        let s: &SaslSettings = &cfg.sasl;
        let mechanism = s
            .mechanism
            .ok_or(("sasl.mechanism", "must be set for SASL".to_owned()))?;
        let tokens = match mechanism {
            SaslMechanism::OAuthBearer => Some(
                cfg.token_provider()
                    .map_err(|e| ("sasl.oauthbearer.token.endpoint.url", e.to_string()))?
                    .ok_or((
                        "sasl.jaas.config",
                        "OAUTHBEARER needs a token provider".to_owned(),
                    ))?,
            ),
            _ => None,
        };
        Ok(Some(Sasl {
            mechanism,
            username: s.username.clone().unwrap_or_default(),
            password: s.password.clone().unwrap_or_else(|| Secret::new("")),
            tokens,
        }))
    }
}

/// One mechanism's side of the exchange.
enum Exchange {
    Plain,
    Scram(Scram),
    OAuth {
        token: OAuthBearerToken,
        /// The broker's error challenge (RFC 7628 §3.2.2), once sent.
        error: Option<String>,
    },
}

impl Exchange {
    async fn start(sasl: &Sasl) -> Result<(Exchange, Vec<u8>), String> {
        Ok(match sasl.mechanism {
            SaslMechanism::Plain => {
                let mut first = vec![0u8];
                first.extend_from_slice(sasl.username.as_bytes());
                first.push(0);
                first.extend_from_slice(sasl.password.expose().as_bytes());
                (Exchange::Plain, first)
            }
            m @ (SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512) => {
                let hash = if m == SaslMechanism::ScramSha256 {
                    Hash::Sha256
                } else {
                    Hash::Sha512
                };
                let s = Scram::new(
                    hash,
                    &sasl.username,
                    sasl.password.expose(),
                    Scram::random_nonce()?,
                );
                let first = s.client_first();
                (Exchange::Scram(s), first)
            }
            SaslMechanism::OAuthBearer => {
                let provider = sasl.tokens.as_ref().ok_or("no token provider")?;
                let token = provider
                    .token()
                    .await
                    .map_err(|e| format!("no token: {e}"))?;
                let mut first = format!("n,,\x01auth=Bearer {}\x01", token.value.expose());
                for (k, v) in &token.extensions {
                    first.push_str(&format!("{k}={v}\x01"));
                }
                first.push('\x01');
                (Exchange::OAuth { token, error: None }, first.into_bytes())
            }
        })
    }

    /// The next message for `challenge`, or `None` when the exchange is done.
    fn next(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            Exchange::Plain if challenge.is_empty() => Ok(None),
            Exchange::Plain => Err("unexpected challenge after PLAIN".into()),
            Exchange::Scram(s) if s.has_final() => s.verify_server(challenge).map(|()| None),
            Exchange::Scram(s) => s.client_final(challenge).map(Some),
            Exchange::OAuth { error: None, .. } if challenge.is_empty() => Ok(None),
            Exchange::OAuth {
                error: e @ None, ..
            } => {
                // The broker refused the token; acknowledge so it sends the failure.
                *e = Some(String::from_utf8_lossy(challenge).into_owned());
                Ok(Some(vec![0x01]))
            }
            Exchange::OAuth { error: Some(e), .. } => Err(format!("broker refused the token: {e}")),
        }
    }

    /// Extra words for a failure message the broker worded as `said`.
    fn context(&self, said: &str) -> String {
        match self {
            Exchange::OAuth { token, error } => {
                let mut s = String::new();
                if let Some(e) = error.as_deref().filter(|e| !said.contains(e)) {
                    s.push_str(&format!("; broker said {e}"));
                }
                if token.expires_at.is_some_and(|t| t <= SystemTime::now()) {
                    s.push_str("; the token had expired");
                }
                s
            }
            _ => String::new(),
        }
    }
}

/// Runs one full SASL exchange on `conn`. Returns the session lifetime the
/// broker set (KIP-368), if any. Call with no other request in flight
/// (connect) or with the connection's gate held (re-authentication).
pub(super) async fn authenticate(
    conn: &Connection,
    sasl: &Sasl,
) -> Result<Option<Duration>, ConnError> {
    let name = sasl.mechanism.name();
    let fail = |message: String| ConnError::Authentication {
        addr: conn.addr().to_owned(),
        mechanism: name,
        message,
    };
    let req = msg::SaslHandshakeRequest::default().with_mechanism(codec::s(name));
    let (resp, _) = conn.send_ungated(&req, versions::SASL_HANDSHAKE).await?;
    if let Some(code) = ErrorCode::check(resp.error_code) {
        let enabled: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(fail(format!(
            "the broker refused the mechanism ({code}); this listener enables: {}",
            if enabled.is_empty() {
                "none".to_owned()
            } else {
                enabled.join(", ")
            }
        )));
    }
    let (mut exchange, mut out) = Exchange::start(sasl).await.map_err(fail)?;
    for _ in 0..MAX_ROUNDS {
        let req = msg::SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out));
        let (resp, _) = conn.send_ungated(&req, versions::SASL_AUTHENTICATE).await?;
        if let Some(code) = ErrorCode::check(resp.error_code) {
            let said = resp
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| code.name());
            return Err(fail(format!("{said} ({code}){}", exchange.context(&said))));
        }
        match exchange.next(&resp.auth_bytes).map_err(&fail)? {
            Some(next) => out = next,
            None => {
                let ms = resp.session_lifetime_ms;
                return Ok((ms > 0).then(|| Duration::from_millis(ms as u64)));
            }
        }
    }
    Err(fail(format!("no result after {MAX_ROUNDS} rounds")))
}

/// Re-authenticates in place at 85–95 % of each session lifetime (as Java
/// does) until the connection goes away; a failure poisons it.
pub(super) async fn reauth_loop(
    inner: Weak<Inner>,
    sasl: Arc<Sasl>,
    mut lifetime: Duration,
    timeout: Duration,
) {
    loop {
        tokio::time::sleep(lifetime.mul_f64(0.85 + fastrand::f64() * 0.1)).await;
        let Some(inner) = inner.upgrade() else { return };
        let conn = Connection { inner };
        // No other request may start until the exchange is over (KIP-368).
        let gate = conn.inner.gate.clone();
        let _exclusive = gate.write().await;
        let result = tokio::time::timeout(timeout, authenticate(&conn, &sasl)).await;
        match result {
            Ok(Ok(Some(next))) => {
                REAUTHENTICATIONS.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    broker = conn.addr(),
                    lifetime_ms = next.as_millis() as u64,
                    "re-authenticated"
                );
                lifetime = next;
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => return conn.poison(e),
            Err(_) => {
                return conn.poison(ConnError::Authentication {
                    addr: conn.addr().to_owned(),
                    mechanism: sasl.mechanism.name(),
                    message: format!("re-authentication took longer than {timeout:?}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_messages() {
        let sasl = Sasl {
            mechanism: SaslMechanism::Plain,
            username: "u".into(),
            password: Secret::new("p"),
            tokens: None,
        };
        let (_, first) = Exchange::start(&sasl).await.unwrap();
        assert_eq!(first, b"\0u\0p");
        let tokens: Arc<dyn TokenProvider> = Arc::new(
            crate::security::UnsecuredJwtProvider::new("alice")
                .with_extensions(vec![("k".into(), "v".into())]),
        );
        let sasl = Sasl {
            mechanism: SaslMechanism::OAuthBearer,
            tokens: Some(tokens),
            ..sasl
        };
        let (mut ex, first) = Exchange::start(&sasl).await.unwrap();
        let first = String::from_utf8(first).unwrap();
        assert!(
            first.starts_with("n,,\x01auth=Bearer ey") && first.ends_with("\x01k=v\x01\x01"),
            "{first:?}"
        );
        assert_eq!(
            ex.next(b"{\"status\":\"invalid_token\"}").unwrap(),
            Some(vec![1])
        );
        assert!(ex.context("").contains("invalid_token"));
    }
}
