//! OAuth 2 client credentials (RFC 6749 §4.4) against an OIDC token endpoint,
//! as Java's `OAuthBearerLoginCallbackHandler` with `sasl.oauthbearer.token.endpoint.url`.

use std::time::{Duration, Instant, SystemTime};

use super::{jwt_claims, OAuthBearerToken, Secret, TokenError, TokenFuture, TokenProvider};

/// Largest token-endpoint answer read.
const MAX_BODY: usize = 256 * 1024;

/// Fetches tokens with the client-credentials grant and caches each until
/// 80 % of its lifetime has passed.
#[derive(Debug)]
pub struct OidcClientCredentialsProvider {
    url: reqwest::Url,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    extensions: Vec<(String, String)>,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(OAuthBearerToken, Instant)>>,
}

impl OidcClientCredentialsProvider {
    /// A provider for the token endpoint at `url`.
    pub fn new(
        url: &str,
        client_id: &str,
        client_secret: Secret,
        scope: Option<String>,
    ) -> Result<Self, TokenError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| TokenError::new(format!("token endpoint `{url}` is not a URL: {e}")))?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => {
                return Err(TokenError::new(format!(
                    "token endpoint `{url}` needs TLS; build kafka-ingest with the `tls` feature"
                )))
            }
            s => {
                return Err(TokenError::new(format!(
                    "token endpoint `{url}`: scheme `{s}` is not http(s)"
                )))
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("kafka-ingest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TokenError::new(format!("cannot build HTTP client: {e}")))?;
        Ok(OidcClientCredentialsProvider {
            url: parsed,
            client_id: client_id.to_owned(),
            client_secret,
            scope,
            extensions: Vec::new(),
            http,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// SASL extensions sent with each token.
    pub fn with_extensions(mut self, ext: Vec<(String, String)>) -> Self {
        self.extensions = ext;
        self
    }

    async fn fetch(&self) -> Result<(OAuthBearerToken, Option<Duration>), TokenError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        // RFC 6749 §2.3.1: id and secret are form-encoded inside the basic header.
        let enc = |s: &str| url_encode(s);
        let resp = self
            .http
            .post(self.url.clone())
            .basic_auth(enc(&self.client_id), Some(enc(self.client_secret.expose())))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::new(format!("token endpoint {}: {e}", self.url)))?;
        let status = resp.status();
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TokenError::new(format!("token endpoint {}: {e}", self.url)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(TokenError::new(format!(
                    "token endpoint {} sent more than {MAX_BODY} bytes",
                    self.url
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(TokenError::new(format!(
                "token endpoint {} answered {status}: {text}",
                self.url
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            TokenError::new(format!("token endpoint {} sent bad JSON: {e}", self.url))
        })?;
        let token = v["access_token"].as_str().ok_or_else(|| {
            TokenError::new(format!("token endpoint {} sent no access_token", self.url))
        })?;
        let expires_in = v["expires_in"].as_u64().map(Duration::from_secs);
        let (sub, exp) = jwt_claims(token);
        let mut t = OAuthBearerToken::new(token).with_extensions(self.extensions.clone());
        if let Some(s) = sub {
            t = t.with_principal(s);
        }
        if let Some(at) = exp.or_else(|| expires_in.map(|d| SystemTime::now() + d)) {
            t = t.with_expiry(at);
        }
        Ok((t, expires_in))
    }
}

impl TokenProvider for OidcClientCredentialsProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some((t, refresh_at)) = &*cached {
                if Instant::now() < *refresh_at {
                    return Ok(t.clone());
                }
            }
            let (t, expires_in) = self.fetch().await?;
            let lifetime = expires_in
                .or_else(|| {
                    t.expires_at
                        .and_then(|e| e.duration_since(SystemTime::now()).ok())
                })
                .unwrap_or_default();
            *cached = Some((t.clone(), Instant::now() + lifetime.mul_f64(0.8)));
            Ok(t)
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_forms() {
        assert_eq!(url_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }

    #[test]
    fn refuses_bad_urls_without_the_secret() {
        let e =
            OidcClientCredentialsProvider::new("ftp://x/token", "id", Secret::new("s3cr3t"), None)
                .unwrap_err()
                .to_string();
        assert!(e.contains("ftp") && !e.contains("s3cr3t"), "{e}");
    }
}
