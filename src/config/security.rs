//! `security.protocol`, `ssl.*` and `sasl.*` properties (Java names, plus
//! librdkafka's where Java has none), and `sasl.jaas.config` parsing.
//!
//! Values of secret keys never appear in errors.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::security::{Pem, SaslMechanism, Secret, SecurityConfig, SecurityProtocol, TlsSettings};

/// The security property names [`SecurityConfig::set`] accepts.
pub const SECURITY_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "sasl.login.callback.handler.class",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.extensions",
    "enable.sasl.oauthbearer.unsecure.jwt",
];

/// The TLS property names [`TlsSettings::set`] accepts (also under `schema.registry.`).
pub const TLS_KEYS: &[&str] = &[
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.endpoint.identification.algorithm",
];

impl TlsSettings {
    /// Sets one `ssl.*` property. `Ok(false)` when `key` is not a TLS key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        let v = value.trim();
        let file = |v: &str| (!v.is_empty()).then(|| Pem::File(PathBuf::from(v)));
        let inline = |v: &str| (!v.is_empty()).then(|| Pem::Inline(Secret::new(v)));
        match key {
            "ssl.ca.location" | "ssl.truststore.location" => self.ca = file(v),
            "ssl.ca.pem" | "ssl.truststore.certificates" => self.ca = inline(v),
            "ssl.certificate.location" => self.certificate = file(v),
            "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => {
                self.certificate = inline(v)
            }
            "ssl.key.location" => self.key = file(v),
            "ssl.key.pem" | "ssl.keystore.key" => self.key = inline(value),
            // Java's PEM key store: one file with the key and its certificate chain.
            "ssl.keystore.location" => {
                self.certificate = file(v);
                self.key = file(v);
            }
            "ssl.key.password" => {
                self.key_password = (!value.is_empty()).then(|| Secret::new(value))
            }
            "ssl.truststore.type" | "ssl.keystore.type" => {
                if !v.eq_ignore_ascii_case("PEM") {
                    return Err(Error::config(
                        key,
                        format!("`{v}` is not supported; only PEM is (convert with openssl)"),
                    ));
                }
            }
            "ssl.endpoint.identification.algorithm" => {
                self.verify_hostname = match v.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(Error::config(key, format!("`{v}` is not `https` or empty"))),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The rustls client config these settings describe (every file loaded
    /// now), for HTTP clients such as the schema registry's.
    #[cfg(feature = "tls")]
    pub fn rustls_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        crate::engine::tls::client_config(self).map_err(|(key, m)| Error::config(key, m))
    }

    /// Checks that a certificate comes with its key.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        match (&self.certificate, &self.key) {
            (Some(_), None) => Err(Error::config(
                &format!("{prefix}ssl.key.location"),
                "a client certificate needs its private key",
            )),
            (None, Some(_)) => Err(Error::config(
                &format!("{prefix}ssl.certificate.location"),
                "a private key needs its client certificate",
            )),
            _ => Ok(()),
        }
    }
}

impl SecurityConfig {
    /// Sets one security property. `Ok(false)` when `key` is not one.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        if self.tls.set(key, value)? {
            return Ok(true);
        }
        let v = value.trim();
        let sasl = &mut self.sasl;
        let o = &mut sasl.oauth;
        match key {
            "security.protocol" => {
                let p = SecurityProtocol::parse(v).ok_or_else(|| {
                    Error::config(
                        key,
                        format!("`{v}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                    )
                })?;
                if p.uses_tls() && !cfg!(feature = "tls") {
                    return Err(Error::config(
                        key,
                        format!("`{v}` needs TLS; build kafka-ingest with the `tls` feature"),
                    ));
                }
                self.protocol = p;
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                sasl.mechanism = Some(SaslMechanism::parse(v).ok_or_else(|| {
                    Error::config(
                        key,
                        format!(
                            "`{v}` is not supported; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
                        ),
                    )
                })?)
            }
            "sasl.username" => sasl.username = Some(v.to_owned()),
            "sasl.password" => sasl.password = Some(Secret::new(value)),
            "sasl.jaas.config" => self.set_jaas(value)?,
            "sasl.login.callback.handler.class" => {
                // Java picks OIDC with this handler; we pick it from the endpoint URL.
                let short = v.rsplit('.').next().unwrap_or(v);
                if !v.is_empty()
                    && short != "OAuthBearerLoginCallbackHandler"
                    && short != "OAuthBearerUnsecuredLoginCallbackHandler"
                {
                    return Err(Error::config(
                        key,
                        format!("`{v}` is not supported; set a TokenProvider in code instead"),
                    ));
                }
            }
            "sasl.oauthbearer.method" => {
                if !matches!(v.to_ascii_lowercase().as_str(), "default" | "oidc") {
                    return Err(Error::config(key, format!("`{v}` is not default or oidc")));
                }
            }
            "sasl.oauthbearer.token.endpoint.url" => {
                o.token_endpoint_url = (!v.is_empty()).then(|| v.to_owned())
            }
            "sasl.oauthbearer.client.id" => o.client_id = Some(v.to_owned()),
            "sasl.oauthbearer.client.secret" => o.client_secret = Some(Secret::new(value)),
            "sasl.oauthbearer.scope" => o.scope = Some(v.to_owned()),
            "sasl.oauthbearer.extensions" => {
                for kv in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (k, val) = kv
                        .split_once('=')
                        .ok_or_else(|| Error::config(key, "expected key=value,key=value"))?;
                    o.extensions.push((k.to_owned(), val.to_owned()));
                }
            }
            // librdkafka's unsecured-JWT settings: `principal=p scope=a,b lifeSeconds=n extension_k=v`.
            "sasl.oauthbearer.config" => {
                for kv in v.split_whitespace() {
                    let (k, val) = kv
                        .split_once('=')
                        .ok_or_else(|| Error::config(key, "expected space-separated key=value"))?;
                    match k {
                        "principal" => o.unsecured_principal = Some(val.to_owned()),
                        "scope" => o.scope = Some(val.replace(',', " ")),
                        "lifeSeconds" => o.unsecured_lifetime = parse_secs(key, val)?,
                        _ => match k.strip_prefix("extension_") {
                            Some(name) => o.extensions.push((name.to_owned(), val.to_owned())),
                            None => {
                                return Err(Error::config(key, format!("unknown setting `{k}`")))
                            }
                        },
                    }
                }
            }
            "enable.sasl.oauthbearer.unsecure.jwt" => {
                crate::config::parse_bool(key, v)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_jaas(&mut self, value: &str) -> Result<()> {
        const KEY: &str = "sasl.jaas.config";
        let jaas = Jaas::parse(value).map_err(|m| Error::config(KEY, m))?;
        let module = jaas.module.rsplit('.').next().unwrap_or(&jaas.module);
        let sasl = &mut self.sasl;
        match module {
            "PlainLoginModule" | "ScramLoginModule" => {
                for (k, v) in jaas.options {
                    match k.as_str() {
                        "username" => sasl.username = Some(v),
                        "password" => sasl.password = Some(Secret::new(v)),
                        _ => tracing::debug!(option = %k, "ignoring JAAS option"),
                    }
                }
            }
            "OAuthBearerLoginModule" => {
                let o = &mut sasl.oauth;
                for (k, v) in jaas.options {
                    match k.as_str() {
                        "unsecuredLoginStringClaim_sub" => o.unsecured_principal = Some(v),
                        "unsecuredLoginLifetimeSeconds" => {
                            o.unsecured_lifetime = parse_secs(KEY, &v)?
                        }
                        "clientId" => o.client_id = Some(v),
                        "clientSecret" => o.client_secret = Some(Secret::new(v)),
                        "scope" => o.scope = Some(v),
                        _ => match k.strip_prefix("unsecuredLoginExtension_") {
                            Some(name) => o.extensions.push((name.to_owned(), v)),
                            None => tracing::debug!(option = %k, "ignoring JAAS option"),
                        },
                    }
                }
            }
            _ => {
                return Err(Error::config(
                    KEY,
                    format!(
                        "login module `{}` is not supported (PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule are)",
                        jaas.module
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Checks the settings the protocol needs are there.
    pub fn validate(&self) -> Result<()> {
        let p = self.protocol;
        if p.uses_tls() {
            if !cfg!(feature = "tls") {
                return Err(Error::config(
                    "security.protocol",
                    "SSL and SASL_SSL need TLS; build kafka-ingest with the `tls` feature",
                ));
            }
            self.tls.validate("")?;
        }
        if !p.uses_sasl() {
            return Ok(());
        }
        let s = &self.sasl;
        let Some(m) = s.mechanism else {
            return Err(Error::config(
                "sasl.mechanism",
                "must be set for SASL (GSSAPI, Java's default, is not supported)",
            ));
        };
        match m {
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                if s.username.as_deref().unwrap_or("").is_empty() || s.password.is_none() {
                    return Err(Error::config(
                        "sasl.jaas.config",
                        format!("{m} needs a username and password (sasl.username/sasl.password or sasl.jaas.config)"),
                    ));
                }
            }
            SaslMechanism::OAuthBearer => match self.token_provider() {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Error::config(
                        "sasl.jaas.config",
                        "OAUTHBEARER needs tokens: sasl.oauthbearer.token.endpoint.url, unsecuredLoginStringClaim_sub, or a TokenProvider",
                    ))
                }
                Err(e) => return Err(Error::config("sasl.oauthbearer.token.endpoint.url", e.to_string())),
            },
        }
        Ok(())
    }
}

fn parse_secs(key: &str, v: &str) -> Result<Duration> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| Error::config(key, "a lifetime in seconds must be a non-negative number"))
}

/// One JAAS login-module entry: `Module flag key=value key="value";`.
#[derive(Debug, PartialEq, Eq)]
struct Jaas {
    module: String,
    options: Vec<(String, String)>,
}

impl Jaas {
    /// Parses the entry. Messages name positions, never values.
    fn parse(s: &str) -> std::result::Result<Jaas, String> {
        let mut it = s.trim().chars().peekable();
        let word = |it: &mut std::iter::Peekable<std::str::Chars>| {
            while it.peek().is_some_and(|c| c.is_whitespace()) {
                it.next();
            }
            let mut w = String::new();
            while let Some(&c) = it.peek() {
                if c.is_whitespace() || c == '=' || c == ';' {
                    break;
                }
                w.push(c);
                it.next();
            }
            w
        };
        let module = word(&mut it);
        if module.is_empty() {
            return Err("expected `LoginModule required key=\"value\" ...;`".into());
        }
        let flag = word(&mut it).to_ascii_lowercase();
        if !matches!(
            flag.as_str(),
            "required" | "requisite" | "sufficient" | "optional"
        ) {
            return Err("the login module must be followed by `required` (or requisite, sufficient, optional)".into());
        }
        let mut options = Vec::new();
        loop {
            let k = word(&mut it);
            if k.is_empty() {
                match it.next() {
                    Some(';') => break,
                    None => return Err("missing `;` at the end".into()),
                    Some(_) => return Err("expected `key=value` options".into()),
                }
            }
            if it.next() != Some('=') {
                return Err(format!("option `{k}` has no `=`"));
            }
            let mut v = String::new();
            if it.peek() == Some(&'"') {
                it.next();
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c) => v.push(c),
                            None => return Err(format!("option `{k}`: unterminated quote")),
                        },
                        Some(c) => v.push(c),
                        None => return Err(format!("option `{k}`: unterminated quote")),
                    }
                }
            } else {
                while let Some(&c) = it.peek() {
                    if c.is_whitespace() || c == ';' {
                        break;
                    }
                    v.push(c);
                    it.next();
                }
            }
            options.push((k, v));
        }
        if it.any(|c| !c.is_whitespace()) {
            return Err("only one login module entry is supported".into());
        }
        Ok(Jaas { module, options })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_entries_parse() {
        let j = Jaas::parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="a \"q\" b;c" tokenauth=true;"#,
        )
        .unwrap();
        assert_eq!(
            j.module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(
            j.options,
            vec![
                ("username".into(), "alice".into()),
                ("password".into(), r#"a "q" b;c"#.into()),
                ("tokenauth".into(), "true".into())
            ]
        );
        for bad in [
            "",
            "M",
            "M required username=\"x\"",
            "M required username",
            "M required password=\"secret-value",
        ] {
            let e = Jaas::parse(bad).unwrap_err();
            assert!(!e.contains("secret-value"), "{e}");
        }
    }

    #[test]
    fn java_properties_map_to_settings() {
        let mut c = SecurityConfig::default();
        c.set("security.protocol", "SASL_PLAINTEXT").unwrap();
        c.set("sasl.mechanism", "SCRAM-SHA-512").unwrap();
        c.set(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p4ss";"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.sasl.username.as_deref(), Some("u"));
        assert_eq!(c.sasl.password.as_ref().map(Secret::expose), Some("p4ss"));
        assert!(!format!("{c:?}").contains("p4ss"));

        let mut c = SecurityConfig::default();
        c.set("security.protocol", "SASL_PLAINTEXT").unwrap();
        c.set("sasl.mechanism", "OAUTHBEARER").unwrap();
        assert!(c.validate().is_err(), "no token source");
        c.set(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice" unsecuredLoginExtension_traceId=t1;"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.sasl.oauth.unsecured_principal.as_deref(), Some("alice"));
        assert_eq!(
            c.sasl.oauth.extensions,
            vec![("traceId".into(), "t1".into())]
        );
    }

    #[test]
    fn errors_hide_secret_values() {
        let mut c = SecurityConfig::default();
        let e = c
            .set(
                "sasl.jaas.config",
                r#"com.sun.security.auth.module.Krb5LoginModule required password="pw-123";"#,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Krb5LoginModule") && !e.contains("pw-123"),
            "{e}"
        );
        c.set("security.protocol", "SASL_SSL").ok();
        let e = c.set("sasl.mechanism", "GSSAPI").unwrap_err().to_string();
        assert!(e.contains("GSSAPI"), "{e}");
    }

    #[test]
    fn ssl_needs_the_feature() {
        let mut c = SecurityConfig::default();
        let r = c.set("security.protocol", "SSL");
        if cfg!(feature = "tls") {
            r.unwrap();
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("`tls` feature"), "{e}");
        }
        let mut t = TlsSettings::default();
        t.set("ssl.endpoint.identification.algorithm", "").unwrap();
        assert!(!t.verify_hostname);
        assert!(t.set("ssl.truststore.type", "JKS").is_err());
        t.set("ssl.certificate.location", "/x.pem").unwrap();
        assert!(t.validate("").is_err(), "certificate without key");
    }
}
