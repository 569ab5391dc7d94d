//! Unsecured JWTs (`alg: none`), as Kafka's `OAuthBearerUnsecuredLoginCallbackHandler`
//! makes them: for brokers running the unsecured validator (tests, development).

use std::time::{Duration, SystemTime};

use super::{b64url, OAuthBearerToken, TokenFuture, TokenProvider};

/// Issues an unsigned JWT for a fixed principal on every call.
#[derive(Debug, Clone)]
pub struct UnsecuredJwtProvider {
    principal: String,
    lifetime: Duration,
    scope: Option<String>,
    extensions: Vec<(String, String)>,
}

impl UnsecuredJwtProvider {
    /// Tokens for `principal` (the `sub` claim), valid for one hour.
    pub fn new(principal: impl Into<String>) -> Self {
        UnsecuredJwtProvider {
            principal: principal.into(),
            lifetime: Duration::from_secs(3600),
            scope: None,
            extensions: Vec::new(),
        }
    }

    /// How long each token is valid.
    pub fn with_lifetime(mut self, d: Duration) -> Self {
        self.lifetime = d;
        self
    }

    /// The `scope` claim (space-separated scopes).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }

    /// SASL extensions sent with each token.
    pub fn with_extensions(mut self, ext: Vec<(String, String)>) -> Self {
        self.extensions = ext;
        self
    }

    /// A token as if issued at `issued_at` (a past time gives an expired token).
    pub fn token_at(&self, issued_at: SystemTime) -> OAuthBearerToken {
        // Whole milliseconds, as Java's unsecured login handler writes them:
        // the broker compares `iat * 1000` with its clock in whole ms, so a
        // sub-millisecond fraction could put `iat` "in the future".
        let secs = |t: SystemTime| {
            let ms = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            ms as f64 / 1000.0
        };
        let exp = issued_at + self.lifetime;
        let mut claims = serde_json::json!({
            "sub": self.principal,
            "iat": secs(issued_at),
            "exp": secs(exp),
        });
        if let Some(s) = &self.scope {
            claims["scope"] = serde_json::Value::String(s.clone());
        }
        let value = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(claims.to_string().as_bytes())
        );
        OAuthBearerToken::new(value)
            .with_principal(self.principal.clone())
            .with_expiry(exp)
            .with_extensions(self.extensions.clone())
    }
}

impl TokenProvider for UnsecuredJwtProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move { Ok(self.token_at(SystemTime::now())) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_claims() {
        let p = UnsecuredJwtProvider::new("alice").with_scope("kafka");
        let t = p.token_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
        let (sub, exp) = crate::security::jwt_claims(t.value.expose());
        assert_eq!(sub.as_deref(), Some("alice"));
        assert_eq!(
            exp,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(4600))
        );
        assert!(
            t.value.expose().ends_with('.'),
            "unsigned JWS ends with an empty signature"
        );
    }
}
