//! What `security.protocol` adds to a connection: TLS around the socket
//! before any Kafka bytes, SASL after the ApiVersions handshake.

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::sasl::{self, Sasl};
use super::tls::{self, BuildError};
use super::{ConnError, Connection};
use crate::security::SecurityConfig;

pub(super) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub(super) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The security settings of every connection of one client, built once.
#[derive(Debug, Default)]
pub(crate) struct Security {
    tls: Option<tls::TlsConfig>,
    sasl: Option<Arc<Sasl>>,
    /// Why the settings could not be built (validate() reports it first).
    error: Option<BuildError>,
}

impl Security {
    pub(crate) fn new(cfg: &SecurityConfig) -> Security {
        match Security::build(cfg) {
            Ok(s) => s,
            Err(e) => Security {
                error: Some(e),
                ..Default::default()
            },
        }
    }

    fn build(cfg: &SecurityConfig) -> Result<Security, BuildError> {
        let tls = match cfg.protocol.uses_tls() {
            true => Some(tls::client_config(&cfg.tls)?),
            false => None,
        };
        Ok(Security {
            tls,
            sasl: Sasl::new(cfg)?.map(Arc::new),
            error: None,
        })
    }

    /// Loads the certificates and keys `cfg` names, reporting the first problem.
    pub(crate) fn check(cfg: &SecurityConfig) -> Result<(), BuildError> {
        Security::build(cfg).map(|_| ())
    }

    fn mechanism(&self) -> &'static str {
        if self.tls.is_some() {
            "SSL"
        } else {
            "SASL"
        }
    }
}

/// Wraps a fresh TCP stream in TLS if configured; returns its two halves.
pub(super) async fn wrap(
    addr: &str,
    tcp: TcpStream,
    sec: &Security,
) -> Result<(ReadHalf, WriteHalf), ConnError> {
    if let Some((key, message)) = &sec.error {
        return Err(ConnError::Authentication {
            addr: addr.to_owned(),
            mechanism: sec.mechanism(),
            message: format!("invalid `{key}`: {message}"),
        });
    }
    #[cfg(feature = "tls")]
    if let Some(cfg) = &sec.tls {
        let stream = tls::connect(tcp, addr, cfg).await?;
        let (r, w) = tokio::io::split(stream);
        return Ok((Box::new(r), Box::new(w)));
    }
    let (r, w) = tcp.into_split();
    Ok((Box::new(r), Box::new(w)))
}

/// Authenticates a connection that just finished ApiVersions, by
/// `deadline`, and keeps it authenticated (KIP-368).
pub(super) async fn authenticate(
    conn: &Connection,
    deadline: tokio::time::Instant,
) -> Result<(), ConnError> {
    let cfg = conn.inner.cfg.clone();
    let Some(sasl) = &cfg.security.sasl else {
        return Ok(());
    };
    let timeout = cfg.connect_timeout;
    let lifetime = tokio::time::timeout_at(deadline, sasl::authenticate(conn, sasl))
        .await
        .map_err(|_| ConnError::Authentication {
            addr: conn.addr().to_owned(),
            mechanism: "SASL",
            message: format!("no answer within {timeout:?} (socket.connection.setup.timeout.ms)"),
        })??;
    if let Some(lifetime) = lifetime {
        let task = tokio::spawn(sasl::reauth_loop(
            Arc::downgrade(&conn.inner),
            sasl.clone(),
            lifetime,
            timeout,
        ));
        conn.add_task(task.abort_handle());
    }
    Ok(())
}
