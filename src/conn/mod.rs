//! One broker connection: framing, correlation ids, pipelining, timeouts.
//!
//! Depends on: codec.
//!
//! A [`Connection`] is a cheap handle. Behind it a writer task owns the socket's
//! write half and a reader task owns the read half; requests are matched to
//! responses through a correlation map. Any IO or framing failure poisons the
//! connection: every pending request fails with the same typed error and the
//! handle refuses new work, so the pool above reconnects.

mod error;
mod sasl;
mod secure;
mod task;
pub(crate) mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

pub use crate::codec::compression::Compression;
pub use crate::codec::ErrorCode;
use crate::codec::{self, ApiVersionRange, Request, Throttled};
pub(crate) use crate::codec::{api_name, codes, msg, versions, Versions};

/// Codec pieces the layers above need (record batches, group protocol,
/// compression), passed up so nothing above imports the codec directly.
pub(crate) mod wire {
    pub(crate) use crate::codec::batch::BatchBody;
    pub(crate) use crate::codec::group::*;
    pub(crate) use crate::codec::produce;
    pub(crate) use crate::codec::records::*;
    pub(crate) use crate::codec::CodecError;
}
pub(crate) use error::ConnError;
pub(crate) use sasl::reauthentication_count;
pub(crate) use secure::Security;

/// Settings a connection needs; built once by the client config.
#[derive(Debug, Clone)]
pub(crate) struct ConnConfig {
    pub client_id: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest response frame accepted (`receive.message.max.bytes`).
    pub max_response_size: usize,
    /// Counters shared by every connection of one client.
    pub stats: Arc<ConnStats>,
    /// TLS and SASL (`security.protocol`).
    pub security: Arc<Security>,
}

/// IO counters of one client's connections (read by the metrics).
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    /// Responses that asked the client to hold back (KIP-219).
    pub throttled_responses: AtomicU64,
    /// Sum of the throttle times the brokers asked for, in ms.
    pub throttle_ms_total: AtomicU64,
    /// In-flight requests and their latency.
    pub requests: crate::metrics::RequestStats,
}

type Reply = oneshot::Sender<Result<Bytes, ConnError>>;

struct State {
    pending: HashMap<i32, Reply>,
    poisoned: Option<ConnError>,
}

struct Outgoing {
    frame: Bytes,
    written: Option<oneshot::Sender<Result<(), ConnError>>>,
}

struct Inner {
    addr: String,
    cfg: Arc<ConnConfig>,
    state: Mutex<State>,
    /// The broker asked for nothing more on this connection until then (KIP-219).
    throttled_until: Mutex<Option<Instant>>,
    next_id: AtomicI32,
    versions: OnceLock<Versions>,
    tx: mpsc::Sender<Outgoing>,
    /// A written frame's buffer, kept for the next request: a fresh large
    /// allocation per produce request cost page faults (~6 % of its CPU).
    spare: Mutex<Option<BytesMut>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Requests start under its read lock; SASL re-authentication holds the
    /// write lock so nothing else is sent meanwhile (KIP-368).
    gate: Arc<tokio::sync::RwLock<()>>,
}

/// Handle to one live broker connection.
#[derive(Clone)]
pub(crate) struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .map(|v| v.drain(..))
            .into_iter()
            .flatten()
        {
            t.abort();
        }
    }
}

impl Connection {
    /// Opens a TCP connection and negotiates API versions.
    pub(crate) async fn connect(addr: &str, cfg: Arc<ConnConfig>) -> Result<Connection, ConnError> {
        let span = tracing::debug_span!("connect", broker = addr);
        async {
            // TCP, TLS and SASL together get socket.connection.setup.timeout.ms.
            let deadline = tokio::time::Instant::now() + cfg.connect_timeout;
            let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| ConnError::ConnectTimeout {
                    addr: addr.to_owned(),
                    after: cfg.connect_timeout,
                })?
                .map_err(|e| ConnError::Connect {
                    addr: addr.to_owned(),
                    source: Arc::new(e),
                })?;
            // Small requests (heartbeats, commits) must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let (read, write) =
                tokio::time::timeout_at(deadline, secure::wrap(addr, stream, &cfg.security))
                    .await
                    .map_err(|_| ConnError::ConnectTimeout {
                        addr: addr.to_owned(),
                        after: cfg.connect_timeout,
                    })??;
            let conn = Connection::from_stream(addr, read, write, cfg);
            conn.handshake().await?;
            secure::authenticate(&conn, deadline).await?;
            tracing::debug!("connected");
            Ok(conn)
        }
        .instrument(span)
        .await
    }

    fn from_stream(
        addr: &str,
        read: secure::ReadHalf,
        write: secure::WriteHalf,
        cfg: Arc<ConnConfig>,
    ) -> Connection {
        let (tx, rx) = mpsc::channel(64);
        let inner = Arc::new(Inner {
            addr: addr.to_owned(),
            cfg,
            state: Mutex::new(State {
                pending: HashMap::new(),
                poisoned: None,
            }),
            throttled_until: Mutex::new(None),
            next_id: AtomicI32::new(1),
            versions: OnceLock::new(),
            tx,
            spare: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            gate: Default::default(),
        });
        let weak = Arc::downgrade(&inner);
        let r = tokio::spawn(task::read_loop(
            read,
            weak.clone(),
            inner.cfg.max_response_size,
        ));
        let w = tokio::spawn(task::write_loop(write, rx, weak));
        if let Ok(mut t) = inner.tasks.lock() {
            t.push(r.abort_handle());
            t.push(w.abort_handle());
        }
        Connection { inner }
    }

    async fn handshake(&self) -> Result<(), ConnError> {
        let req = msg::ApiVersionsRequest::default()
            .with_client_software_name(codec::s("kafka-ingest"))
            .with_client_software_version(codec::s(env!("CARGO_PKG_VERSION")));
        let mut version = codec::versions::API_VERSIONS.max;
        let codec_err = |e| ConnError::Codec {
            addr: self.inner.addr.clone(),
            source: e,
        };
        for _ in 0..2 {
            let frame = self.roundtrip(&req, version, None).await?;
            // A broker that does not know our version answers in v0 with
            // UNSUPPORTED_VERSION; the error code leads the body in every version.
            if codec::api_versions_error(&frame) == Some(codec::codes::UNSUPPORTED_VERSION)
                && version > 0
            {
                let v0 = codec::decode_response::<msg::ApiVersionsRequest>(frame, 0)
                    .map_err(codec_err)?;
                let theirs = v0
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == codec::versions::API_VERSIONS.key);
                version = theirs.map_or(0, |k| k.max_version.min(version - 1));
                continue;
            }
            let resp = codec::decode_response::<msg::ApiVersionsRequest>(frame, version)
                .map_err(codec_err)?;
            if let Some(code) = codec::ErrorCode::check(resp.error_code) {
                return Err(ConnError::Handshake {
                    addr: self.inner.addr.clone(),
                    code,
                });
            }
            let versions = Versions::from_advertised(
                resp.api_keys
                    .iter()
                    .map(|k| (k.api_key, k.min_version, k.max_version)),
            );
            let _ = self.inner.versions.set(versions);
            return Ok(());
        }
        Err(ConnError::Handshake {
            addr: self.inner.addr.clone(),
            code: codec::ErrorCode(codec::codes::UNSUPPORTED_VERSION),
        })
    }

    /// Ends `task` with the connection.
    fn add_task(&self, task: tokio::task::AbortHandle) {
        if let Ok(mut t) = self.inner.tasks.lock() {
            t.push(task);
        }
    }

    /// Sends past the re-authentication gate (the SASL exchange itself).
    async fn send_ungated<R: Request>(
        &self,
        req: &R,
        api: ApiVersionRange,
    ) -> Result<(R::Response, i16), ConnError> {
        let version = self.version(api)?;
        let (id, frame) = self.frame::<R>(version, |b, v| codec::write_request(req, b, v))?;
        let frame = self
            .begin_ungated::<R>(id, frame, None)
            .await?
            .wait()
            .await?;
        let resp = codec::decode_response::<R>(frame, version).map_err(|e| ConnError::Codec {
            addr: self.inner.addr.clone(),
            source: e,
        })?;
        Ok((resp, version))
    }

    /// The broker address this connection was opened to.
    pub(crate) fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether the connection has failed and must be replaced.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner
            .state
            .lock()
            .map(|s| s.poisoned.is_some())
            .unwrap_or(true)
    }

    /// The versions the broker advertised.
    pub(crate) fn versions(&self) -> Versions {
        self.inner.versions.get().cloned().unwrap_or_default()
    }

    /// Highest version of `api` both sides support.
    pub(crate) fn version(&self, api: ApiVersionRange) -> Result<i16, ConnError> {
        let versions = self.inner.versions.get();
        versions
            .and_then(|v| v.pick(api))
            .ok_or_else(|| ConnError::UnsupportedVersion {
                addr: self.inner.addr.clone(),
                api: codec::api_name(api.key),
                broker: versions.and_then(|v| v.broker_range(api.key)),
                min: api.min,
                max: api.max,
            })
    }

    /// Sends `req` at the best common version and waits for its response.
    pub(crate) async fn send<R: Request>(
        &self,
        req: &R,
        api: ApiVersionRange,
    ) -> Result<(R::Response, i16), ConnError> {
        let version = self.version(api)?;
        Ok((self.send_at(req, version, None).await?, version))
    }

    /// Like [`send`](Self::send) with extra time on top of `request.timeout.ms`
    /// (for requests the broker may legitimately hold, such as a long-poll Fetch).
    pub(crate) async fn send_long<R: Request>(
        &self,
        req: &R,
        api: ApiVersionRange,
        extra: Duration,
    ) -> Result<(R::Response, i16), ConnError> {
        let version = self.version(api)?;
        Ok((self.send_at(req, version, Some(extra)).await?, version))
    }

    /// Sends a request the broker will not answer (Produce with acks=0),
    /// its body written by `body`; resolves once it is written.
    pub(crate) async fn send_no_response_with<R: Request>(
        &self,
        api: ApiVersionRange,
        body: impl FnOnce(&mut BytesMut, i16) -> Result<(), codec::CodecError>,
    ) -> Result<i16, ConnError> {
        let version = self.version(api)?;
        let (_, frame) = self.frame::<R>(version, body)?;
        let gate = self.inner.gate.clone();
        let _open = gate.read().await;
        self.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.enqueue(Outgoing {
            frame,
            written: Some(tx),
        })
        .await?;
        match rx.await {
            Ok(r) => r.map(|_| version),
            Err(_) => Err(self.closed_error()),
        }
    }

    async fn send_at<R: Request>(
        &self,
        req: &R,
        version: i16,
        extra: Option<Duration>,
    ) -> Result<R::Response, ConnError> {
        let frame = self.roundtrip(req, version, extra).await?;
        let resp = codec::decode_response::<R>(frame, version).map_err(|e| ConnError::Codec {
            addr: self.inner.addr.clone(),
            source: e,
        })?;
        self.inner.throttle(resp.throttle_time_ms());
        Ok(resp)
    }

    /// Sends a request and returns the raw response frame (after the size prefix).
    async fn roundtrip<R: Request>(
        &self,
        req: &R,
        version: i16,
        extra: Option<Duration>,
    ) -> Result<Bytes, ConnError> {
        let span = tracing::trace_span!("request", api = codec::api_name(R::KEY), version, broker = %self.inner.addr);
        async { self.begin_raw(req, version, extra).await?.wait().await }
            .instrument(span)
            .await
    }

    /// Queues a request for writing and returns a handle to its response.
    /// Requests begun one after another by one task reach the broker in that
    /// order, which idempotent produce relies on.
    async fn begin_raw<R: Request>(
        &self,
        req: &R,
        version: i16,
        extra: Option<Duration>,
    ) -> Result<Pending, ConnError> {
        let (id, frame) = self.frame::<R>(version, |b, v| codec::write_request(req, b, v))?;
        self.begin_framed::<R>(id, frame, extra).await
    }

    /// Queues an encoded frame once no re-authentication holds the gate.
    async fn begin_framed<R: Request>(
        &self,
        id: i32,
        frame: Bytes,
        extra: Option<Duration>,
    ) -> Result<Pending, ConnError> {
        let gate = self.inner.gate.clone();
        let _open = gate.read().await;
        self.begin_ungated::<R>(id, frame, extra).await
    }

    async fn begin_ungated<R: Request>(
        &self,
        id: i32,
        frame: Bytes,
        extra: Option<Duration>,
    ) -> Result<Pending, ConnError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.state.lock().map_err(|_| self.closed_error())?;
            if let Some(e) = &st.poisoned {
                return Err(e.clone());
            }
            st.pending.insert(id, tx);
        }
        let pending = Pending {
            conn: self.clone(),
            id,
            rx: Some(rx),
            api: codec::api_name(R::KEY),
            timeout: self.inner.cfg.request_timeout + extra.unwrap_or_default(),
            started: Instant::now(),
        };
        self.inner
            .cfg
            .stats
            .requests
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        self.enqueue(Outgoing {
            frame,
            written: None,
        })
        .await?;
        Ok(pending)
    }

    /// Like [`send`](Self::send), split in two (the returned future only
    /// waits), for a request of type `R` whose body `body` writes (Produce:
    /// batches copied once, straight into the frame).
    pub(crate) async fn begin_with<R: Request>(
        &self,
        api: ApiVersionRange,
        body: impl FnOnce(&mut BytesMut, i16) -> Result<(), codec::CodecError>,
    ) -> Result<PendingResponse<R>, ConnError> {
        let version = self.version(api)?;
        let (id, frame) = self.frame::<R>(version, body)?;
        let pending = self.begin_framed::<R>(id, frame, None).await?;
        Ok(PendingResponse {
            pending,
            version,
            _r: std::marker::PhantomData,
        })
    }

    /// A correlation id and the frame, encoded into the spare buffer.
    fn frame<R: Request>(
        &self,
        version: i16,
        body: impl FnOnce(&mut BytesMut, i16) -> Result<(), codec::CodecError>,
    ) -> Result<(i32, Bytes), ConnError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let buf = self
            .inner
            .spare
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_default();
        let frame =
            codec::encode_frame_with::<R>(version, id, &self.inner.cfg.client_id, buf, body)
                .map_err(|e| ConnError::Codec {
                    addr: self.inner.addr.clone(),
                    source: e,
                })?;
        Ok((id, frame))
    }

    async fn enqueue(&self, out: Outgoing) -> Result<(), ConnError> {
        self.inner
            .tx
            .send(out)
            .await
            .map_err(|_| self.closed_error())
    }

    fn check_open(&self) -> Result<(), ConnError> {
        match self.inner.state.lock() {
            Ok(st) => st.poisoned.clone().map_or(Ok(()), Err),
            Err(_) => Err(self.closed_error()),
        }
    }

    fn closed_error(&self) -> ConnError {
        self.inner
            .state
            .lock()
            .ok()
            .and_then(|s| s.poisoned.clone())
            .unwrap_or_else(|| ConnError::Closed {
                addr: self.inner.addr.clone(),
            })
    }

    /// Fails every pending request with `err` and closes the socket.
    pub(crate) fn poison(&self, err: ConnError) {
        poison(&self.inner, err);
    }
}

/// A request written (or queued to be written) whose response is awaited.
struct Pending {
    conn: Connection,
    id: i32,
    rx: Option<oneshot::Receiver<Result<Bytes, ConnError>>>,
    api: &'static str,
    timeout: Duration,
    started: Instant,
}

impl Pending {
    async fn wait(mut self) -> Result<Bytes, ConnError> {
        let Some(rx) = self.rx.take() else {
            return Err(self.conn.closed_error());
        };
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => {
                if r.is_ok() {
                    let stats = &self.conn.inner.cfg.stats.requests;
                    stats.latency.record(self.started.elapsed());
                }
                r
            }
            Ok(Err(_)) => Err(self.conn.closed_error()),
            Err(_) => {
                // The stream is out of step now; Java closes it too.
                let e = ConnError::RequestTimeout {
                    addr: self.conn.inner.addr.clone(),
                    api: self.api,
                    after: self.timeout,
                };
                self.conn.poison(e.clone());
                Err(e)
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let stats = &self.conn.inner.cfg.stats.requests;
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        // Abandoned before the response: forget the id (a late response then
        // poisons the connection, as an unknown correlation id must).
        if self.rx.is_some() {
            if let Ok(mut st) = self.conn.inner.state.lock() {
                st.pending.remove(&self.id);
            }
        }
    }
}

/// The typed response of a request begun with [`Connection::begin`].
pub(crate) struct PendingResponse<R: Request> {
    pending: Pending,
    version: i16,
    _r: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    pub(crate) async fn response(self) -> Result<(R::Response, i16), ConnError> {
        let inner = self.pending.conn.inner.clone();
        let addr = inner.addr.clone();
        let frame = self.pending.wait().await?;
        let resp = codec::decode_response::<R>(frame, self.version)
            .map_err(|e| ConnError::Codec { addr, source: e })?;
        inner.throttle(resp.throttle_time_ms());
        Ok((resp, self.version))
    }
}

impl Inner {
    /// Holds back further writes for `ms` (KIP-219: the broker answered at
    /// once and muted the connection; sending more would only queue).
    fn throttle(&self, ms: i32) {
        if ms <= 0 {
            return;
        }
        let stats = &self.cfg.stats;
        stats.throttled_responses.fetch_add(1, Ordering::Relaxed);
        stats
            .throttle_ms_total
            .fetch_add(ms as u64, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_millis(ms as u64);
        let mut t = self
            .throttled_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if t.is_none_or(|cur| cur < until) {
            *t = Some(until);
        }
        tracing::debug!(broker = %self.addr, throttle_ms = ms, "throttled by the broker");
    }

    /// How long writes must still wait, if at all.
    fn throttle_left(&self) -> Option<Duration> {
        let t = self
            .throttled_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.and_then(|u| u.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

fn poison(inner: &Inner, err: ConnError) {
    let pending = match inner.state.lock() {
        Ok(mut st) => {
            if st.poisoned.is_some() {
                return;
            }
            tracing::debug!(broker = %inner.addr, error = %err, "connection poisoned");
            st.poisoned = Some(err.clone());
            std::mem::take(&mut st.pending)
        }
        Err(_) => return,
    };
    for (_, reply) in pending {
        let _ = reply.send(Err(err.clone()));
    }
    if let Ok(tasks) = inner.tasks.lock() {
        for t in tasks.iter() {
            t.abort();
        }
    }
}
