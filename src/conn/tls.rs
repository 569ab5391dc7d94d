//! TLS for broker connections (and the rustls config the schema registry and
//! token endpoints reuse): rustls with the ring provider, behind the `tls`
//! feature. PEM only: CAs, client certificate chains, keys (PKCS#8, SEC1,
//! PKCS#1; encrypted PKCS#8 with `ssl.key.password`).

use crate::security::TlsSettings;

/// Error of building a TLS config: the property to blame and why.
pub(crate) type BuildError = (&'static str, String);

#[cfg(not(feature = "tls"))]
pub(crate) use disabled::*;
#[cfg(feature = "tls")]
pub(crate) use enabled::*;

#[cfg(not(feature = "tls"))]
mod disabled {
    use super::*;

    /// Stands in for the rustls config when TLS is compiled out.
    #[derive(Debug, Clone)]
    pub(crate) struct TlsConfig;

    pub(crate) fn client_config(_: &TlsSettings) -> Result<TlsConfig, BuildError> {
        Err((
            "security.protocol",
            "TLS needs kafka-ingest built with the `tls` feature".into(),
        ))
    }

    pub(crate) fn refusal(_: &std::io::Error) -> Option<String> {
        None
    }
}

#[cfg(feature = "tls")]
mod enabled {
    use std::io;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{
        CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
    };
    use tokio::net::TcpStream;

    use super::*;
    use crate::conn::ConnError;
    use crate::security::{Pem, Secret};

    /// A built rustls client config, shared by every connection of a client.
    pub(crate) type TlsConfig = Arc<rustls::ClientConfig>;

    /// Builds the rustls config for `t`, loading every file now.
    pub(crate) fn client_config(t: &TlsSettings) -> Result<TlsConfig, BuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &t.ca {
            Some(ca) => {
                let certs = certificates(ca, "ssl.ca.location")?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(("ssl.ca.location", "no usable CA certificate".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ("ssl.ca.location", e.to_string()))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ("security.protocol", e.to_string()))?;
        let builder = if t.verify_hostname {
            builder.with_webpki_verifier(verifier)
        } else {
            tracing::warn!("ssl.endpoint.identification.algorithm is empty: broker host names are not checked against their certificates");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
        };
        let config = match (&t.certificate, &t.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "ssl.certificate.location")?;
                let key = private_key(key, t.key_password.as_ref())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    (
                        "ssl.key.location",
                        format!("certificate and key do not fit: {e}"),
                    )
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    fn read(pem: &Pem, key: &'static str) -> Result<Vec<u8>, BuildError> {
        match pem {
            Pem::File(path) => std::fs::read(path)
                .map_err(|e| (key, format!("cannot read {}: {e}", path.display()))),
            Pem::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
        }
    }

    fn certificates(
        pem: &Pem,
        key: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, BuildError> {
        let bytes = read(pem, key)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (key, format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err((key, "no PEM certificate found".into()));
        }
        Ok(certs)
    }

    fn private_key(
        pem: &Pem,
        password: Option<&Secret>,
    ) -> Result<PrivateKeyDer<'static>, BuildError> {
        const KEY: &str = "ssl.key.location";
        let bytes = read(pem, KEY)?;
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err((
                KEY,
                "legacy encrypted PEM keys are not supported; convert with `openssl pkcs8 -topk8`"
                    .into(),
            ));
        }
        const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
        const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
        if let Some(start) = text.find(BEGIN) {
            let Some(password) = password else {
                return Err((
                    "ssl.key.password",
                    "the private key is encrypted; set ssl.key.password".into(),
                ));
            };
            let body = &text[start + BEGIN.len()..];
            let body = &body[..body
                .find(END)
                .ok_or((KEY, "unterminated encrypted key".to_owned()))?];
            let der: Vec<u8> = {
                use base64::Engine;
                let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| (KEY, "encrypted key is not base64".to_owned()))?
            };
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|e| (KEY, format!("bad encrypted key: {e}")))?;
            let doc = info.decrypt(password.expose()).map_err(|_| {
                (
                    "ssl.key.password",
                    "cannot decrypt the private key (wrong password or unsupported cipher)"
                        .to_owned(),
                )
            })?;
            return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                doc.as_bytes().to_vec(),
            )));
        }
        PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| (KEY, format!("no usable private key: {e}")))
    }

    /// Opens TLS over `tcp` to `host` (a name or an IP address).
    pub(crate) async fn connect(
        tcp: TcpStream,
        addr: &str,
        config: &TlsConfig,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnError> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| ConnError::Authentication {
                addr: addr.to_owned(),
                mechanism: "SSL",
                message: format!("`{host}` is not a valid TLS server name: {e}"),
            })?;
        tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| match tls_failure(&e) {
                Some(message) => ConnError::Authentication {
                    addr: addr.to_owned(),
                    mechanism: "SSL",
                    message,
                },
                None => ConnError::Io {
                    addr: addr.to_owned(),
                    source: Arc::new(e),
                },
            })
    }

    /// The TLS failure inside an IO error (handshake refused, bad certificate,
    /// or the broker's alert after the handshake, e.g. a missing client certificate).
    pub(crate) fn tls_failure(e: &io::Error) -> Option<String> {
        let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(format!("TLS handshake failed: {inner}"))
    }

    /// A broker's TLS alert after the handshake that means "you are not let
    /// in" (TLS 1.3 reports a missing or bad client certificate this way).
    pub(crate) fn refusal(e: &io::Error) -> Option<String> {
        use rustls::AlertDescription as A;
        match e.get_ref()?.downcast_ref::<rustls::Error>()? {
            rustls::Error::AlertReceived(
                a @ (A::CertificateRequired
                | A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::HandshakeFailure),
            ) => Some(format!("the broker refused the TLS session: {a:?} (is a valid client certificate configured?)")),
            _ => None,
        }
    }

    /// Verifies the chain but accepts any host name
    /// (`ssl.endpoint.identification.algorithm=`).
    #[derive(Debug)]
    struct AnyName(Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            // webpki checks the chain before the name, so a name error means the chain is good.
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}
