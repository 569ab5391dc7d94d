//! `--metrics-addr`: the client and pipeline metrics in Prometheus text
//! format (prometheus-client's OpenMetrics encoder), served by a small
//! HTTP endpoint on its own thread (tiny_http) at `/metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use kafka_ingest::metrics::Histogram;
use kafka_ingest::{Consumer, Error, Producer, Result};
use kafka_ingest_pipeline::PipelineHandle;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The flag every long-running command takes.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct MetricsArg {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
}

/// What a scrape reads; clients may be added while serving.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub producers: Vec<(String, Producer)>,
    pub consumers: Vec<(String, Consumer)>,
    pub pipelines: Vec<(String, PipelineHandle)>,
    /// The latest `lag` report of each watched group.
    pub groups: Vec<Arc<Mutex<Option<crate::lag::GroupLag>>>>,
}

pub(crate) type Shared = Arc<Mutex<Sources>>;

/// A running endpoint; stops when dropped.
pub(crate) struct Endpoint {
    server: Arc<tiny_http::Server>,
    pub sources: Shared,
    pub addr: SocketAddr,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Endpoint {
    pub fn add_producer(&self, name: &str, p: &Producer) {
        lock(&self.sources).producers.push((name.into(), p.clone()));
    }
    pub fn add_consumer(&self, name: &str, c: &Consumer) {
        lock(&self.sources).consumers.push((name.into(), c.clone()));
    }
    pub fn add_pipeline(&self, name: &str, h: &PipelineHandle) {
        lock(&self.sources).pipelines.push((name.into(), h.clone()));
    }
    /// A slot the caller fills with each new report of a group.
    pub fn add_group(&self) -> Arc<Mutex<Option<crate::lag::GroupLag>>> {
        let slot = Arc::new(Mutex::new(None));
        lock(&self.sources).groups.push(slot.clone());
        slot
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Sources> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetricsArg {
    /// Starts the endpoint if the flag was given.
    pub fn serve(&self) -> Result<Option<Endpoint>> {
        let e = self.metrics_addr.map(serve).transpose()?;
        if let Some(e) = &e {
            eprintln!("metrics: http://{}/metrics", e.addr);
        }
        Ok(e)
    }
}

/// Binds `addr` and serves `/metrics` until the endpoint is dropped.
pub(crate) fn serve(addr: SocketAddr) -> Result<Endpoint> {
    let server = tiny_http::Server::http(addr).map_err(|e| Error::InvalidArgument {
        message: format!("--metrics-addr {addr}: {e}"),
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::InvalidArgument {
            message: format!("--metrics-addr {addr}: not an IP address"),
        })?;
    let server = Arc::new(server);
    let sources: Shared = Arc::default();
    let (srv, src) = (server.clone(), sources.clone());
    std::thread::spawn(move || {
        for req in srv.incoming_requests() {
            let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                let body = render(&src);
                let ct = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                )
                .expect("a valid static header");
                tiny_http::Response::from_string(body).with_header(ct)
            } else {
                tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
            };
            let _ = req.respond(resp);
        }
    });
    Ok(Endpoint {
        server,
        sources,
        addr,
    })
}

/// The exposition of everything in `sources` now.
pub(crate) fn render(sources: &Shared) -> String {
    let mut registry = Registry::with_prefix("kafka_ingest");
    registry.register_collector(Box::new(Scrape(sources.clone())));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        out = format!("# encoding failed: {e}\n");
    }
    out
}

#[derive(Debug)]
struct Scrape(Shared);

type Labels = Vec<(String, String)>;

enum Value {
    Counter(f64),
    Gauge(f64),
    Hist(Histogram),
}

/// One metric family: its name (without prefix and `_total`), help and samples.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, Value)>,
}

fn encode_family(enc: &mut DescriptorEncoder, f: &Family) -> std::fmt::Result {
    let Some((_, first)) = f.samples.first() else {
        return Ok(());
    };
    let kind = match first {
        Value::Counter(_) => MetricType::Counter,
        Value::Gauge(_) => MetricType::Gauge,
        Value::Hist(_) => MetricType::Histogram,
    };
    let mut m = enc.encode_descriptor(f.name, f.help, None, kind)?;
    for (labels, v) in &f.samples {
        let mut s = m.encode_family(labels)?;
        match v {
            Value::Counter(x) => ConstCounter::new(*x).encode(s)?,
            Value::Gauge(x) => ConstGauge::new(*x).encode(s)?,
            Value::Hist(h) => {
                let mut buckets = h.buckets.clone();
                buckets.push((f64::MAX, h.count)); // the encoder writes f64::MAX as +Inf
                                                   // prometheus-client wants per-bucket counts and sums them itself.
                let mut prev = 0;
                for b in &mut buckets {
                    let cum = b.1;
                    b.1 = cum - prev;
                    prev = cum;
                }
                s.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)?
            }
        }
    }
    Ok(())
}

fn with(base: &Labels, extra: &[(&str, String)]) -> Labels {
    let mut l = base.clone();
    l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    l
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        for f in families(&lock(&self.0)) {
            encode_family(&mut enc, &f)?;
        }
        Ok(())
    }
}

macro_rules! fam {
    ($name:literal, $help:literal) => {
        Family {
            name: $name,
            help: $help,
            samples: Vec::new(),
        }
    };
}

fn families(s: &Sources) -> Vec<Family> {
    let mut out = Vec::new();
    out.extend(producer_families(&s.producers));
    out.extend(consumer_families(
        s.consumers
            .iter()
            .cloned()
            .chain(
                s.pipelines
                    .iter()
                    .filter_map(|(n, h)| h.consumer().map(|c| (n.clone(), c))),
            )
            .collect(),
    ));
    out.extend(pipeline_families(&s.pipelines));
    out.extend(group_families(&s.groups));
    out
}

/// Burrow's status as a number (its enum: NOTFOUND 0, OK 1 ... REWIND 6).
fn status_number(s: crate::lag::burrow::Status) -> f64 {
    use crate::lag::burrow::Status::*;
    match s {
        NotFound => 0.0,
        Ok => 1.0,
        Warn => 2.0,
        Err => 3.0,
        Stop => 4.0,
        Stall => 5.0,
        Rewind => 6.0,
    }
}

fn group_families(gs: &[Arc<Mutex<Option<crate::lag::GroupLag>>>]) -> Vec<Family> {
    let mut f = [
        fam!("group_lag", "Log end minus committed offset, per partition."),
        fam!("group_time_lag_seconds", "Age of the next record to read (a lower bound when beyond the sampled window)."),
        fam!("group_partition_status", "Burrow status per partition (0 NOTFOUND, 1 OK, 2 WARN, 3 ERR, 4 STOP, 5 STALL, 6 REWIND)."),
        fam!("group_status", "Burrow status of the group (same numbers)."),
        fam!("group_total_lag", "Sum of the partitions' lag."),
    ];
    for slot in gs {
        let Some(g) = slot.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            continue;
        };
        let l: Labels = vec![("group".into(), g.group.clone())];
        for r in &g.partitions {
            let pl = with(
                &l,
                &[
                    ("topic", r.topic.clone()),
                    ("partition", r.partition.to_string()),
                ],
            );
            if let Some(lag) = r.lag {
                f[0].samples.push((pl.clone(), Value::Gauge(lag as f64)));
            }
            if let Some(t) = r.time_lag_s {
                f[1].samples.push((pl.clone(), Value::Gauge(t)));
            }
            f[2].samples
                .push((pl, Value::Gauge(status_number(r.status))));
        }
        f[3].samples
            .push((l.clone(), Value::Gauge(status_number(g.status))));
        f[4].samples.push((l, Value::Gauge(g.total_lag as f64)));
    }
    f.into()
}

fn ms_to_s(ms: u64) -> f64 {
    Duration::from_millis(ms).as_secs_f64()
}

fn producer_families(ps: &[(String, Producer)]) -> Vec<Family> {
    let mut f = [
        fam!(
            "producer_records_sent",
            "Records acknowledged by the broker."
        ),
        fam!("producer_bytes_sent", "Key and value bytes acknowledged."),
        fam!("producer_batches_sent", "Record batches acknowledged."),
        fam!("producer_records_failed", "Records failed for good."),
        fam!("producer_retries", "Batch resends."),
        fam!(
            "producer_errors",
            "Failed records and retried batches by error kind."
        ),
        fam!("producer_buffer_bytes", "Buffer memory in use (bytes)."),
        fam!("producer_buffer_limit_bytes", "buffer.memory (bytes)."),
        fam!(
            "producer_waiting_senders",
            "Sends waiting for buffer memory (backpressure)."
        ),
        fam!(
            "producer_in_flight_requests",
            "Requests awaiting a response."
        ),
        fam!("producer_request_latency_seconds", "Request round trips."),
        fam!(
            "producer_throttled_responses",
            "Responses carrying a broker throttle time (KIP-219)."
        ),
        fam!(
            "producer_throttle_seconds",
            "Broker throttle time honoured."
        ),
    ];
    for (name, p) in ps {
        let m = p.metrics();
        let l: Labels = vec![("client".into(), name.clone())];
        let c = |x: u64| (l.clone(), Value::Counter(x as f64));
        let g = |x: u64| (l.clone(), Value::Gauge(x as f64));
        f[0].samples.push(c(m.records_sent));
        f[1].samples.push(c(m.bytes_sent));
        f[2].samples.push(c(m.batches_sent));
        f[3].samples.push(c(m.records_failed));
        f[4].samples.push(c(m.retries));
        for (kind, n) in &m.errors {
            f[5].samples.push((
                with(&l, &[("kind", kind.clone())]),
                Value::Counter(*n as f64),
            ));
        }
        f[6].samples.push(g(m.buffer_bytes_used));
        f[7].samples.push(g(m.buffer_bytes_total));
        f[8].samples.push(g(m.waiting_senders));
        f[9].samples.push(g(m.in_flight_requests));
        f[10]
            .samples
            .push((l.clone(), Value::Hist(m.request_latency.clone())));
        f[11].samples.push(c(m.throttle.throttled_responses));
        f[12].samples.push((
            l.clone(),
            Value::Counter(ms_to_s(m.throttle.throttle_time_ms_total)),
        ));
    }
    f.into()
}

fn consumer_families(cs: Vec<(String, Consumer)>) -> Vec<Family> {
    let mut f = [
        fam!("consumer_records_fetched", "Records returned by poll."),
        fam!(
            "consumer_bytes_fetched",
            "Key and value bytes returned by poll."
        ),
        fam!("consumer_fetch_requests", "Fetch requests answered."),
        fam!("consumer_errors", "Fetch and commit errors by kind."),
        fam!(
            "consumer_in_flight_requests",
            "Requests awaiting a response."
        ),
        fam!("consumer_request_latency_seconds", "Request round trips."),
        fam!("consumer_rebalances", "Assignments applied."),
        fam!("consumer_commits", "Successful offset commits."),
        fam!("consumer_commit_failures", "Failed offset commits."),
        fam!(
            "consumer_commit_latency_seconds",
            "Offset commit round trips."
        ),
        fam!(
            "consumer_lag",
            "High watermark minus position, per assigned partition."
        ),
        fam!(
            "consumer_high_watermark",
            "High watermark of the latest fetch."
        ),
        fam!(
            "consumer_throttled_responses",
            "Responses carrying a broker throttle time (KIP-219)."
        ),
        fam!(
            "consumer_throttle_seconds",
            "Broker throttle time honoured."
        ),
        fam!(
            "consumer_incremental_fetches",
            "Fetch requests sent as fetch-session updates (KIP-227)."
        ),
        fam!(
            "consumer_fetch_partitions_sent",
            "Partitions named in fetch requests."
        ),
    ];
    for (name, cons) in &cs {
        let m = cons.metrics();
        let l: Labels = vec![("client".into(), name.clone())];
        let c = |x: u64| (l.clone(), Value::Counter(x as f64));
        f[0].samples.push(c(m.records_fetched));
        f[1].samples.push(c(m.bytes_fetched));
        f[2].samples.push(c(m.fetch_requests));
        for (kind, n) in &m.errors {
            f[3].samples.push((
                with(&l, &[("kind", kind.clone())]),
                Value::Counter(*n as f64),
            ));
        }
        f[4].samples
            .push((l.clone(), Value::Gauge(m.in_flight_requests as f64)));
        f[5].samples
            .push((l.clone(), Value::Hist(m.request_latency.clone())));
        f[6].samples.push(c(m.rebalances));
        f[7].samples.push(c(m.commits));
        f[8].samples.push(c(m.commit_failures));
        f[9].samples
            .push((l.clone(), Value::Hist(m.commit_latency.clone())));
        for p in &m.lag {
            let pl = with(
                &l,
                &[
                    ("topic", p.partition.topic.clone()),
                    ("partition", p.partition.partition.to_string()),
                ],
            );
            f[10].samples.push((pl.clone(), Value::Gauge(p.lag as f64)));
            f[11]
                .samples
                .push((pl, Value::Gauge(p.high_watermark as f64)));
        }
        f[12].samples.push(c(m.throttle.throttled_responses));
        f[13].samples.push((
            l.clone(),
            Value::Counter(ms_to_s(m.throttle.throttle_time_ms_total)),
        ));
        f[14].samples.push(c(m.incremental_fetches));
        f[15].samples.push(c(m.fetch_partitions_sent));
    }
    f.into()
}

fn pipeline_families(ps: &[(String, PipelineHandle)]) -> Vec<Family> {
    let mut f = [
        fam!("pipeline_received", "Records received (every delivery)."),
        fam!("pipeline_processed", "Records whose handler succeeded."),
        fam!("pipeline_attempts", "Handler calls."),
        fam!("pipeline_retried", "In-place retries scheduled."),
        fam!(
            "pipeline_tier_forwarded",
            "Records forwarded into a retry tier."
        ),
        fam!(
            "pipeline_tier_attempted",
            "Records read back from a retry tier and attempted."
        ),
        fam!("pipeline_dead_lettered", "Records forwarded to the DLQ."),
        fam!("pipeline_fatal", "Dead-lettered after a fatal error."),
        fam!("pipeline_in_flight", "Handlers and forwards running."),
        fam!(
            "pipeline_buffered_bytes",
            "Bytes received and not finished."
        ),
        fam!(
            "pipeline_buffered_records",
            "Records received and not finished."
        ),
        fam!("pipeline_paused_partitions", "Paused partitions by reason."),
        fam!(
            "pipeline_breaker_open_partitions",
            "Partitions held by an open DLQ breaker."
        ),
        fam!(
            "pipeline_rate_limited_seconds",
            "Time partitions waited for rate-limit tokens."
        ),
        fam!(
            "pipeline_commit_lag",
            "Records delivered but not yet committed."
        ),
        fam!("pipeline_commits", "Successful commits."),
        fam!(
            "pipeline_assigned_partitions",
            "Assigned partitions (source and tiers)."
        ),
    ];
    for (name, h) in ps {
        let m = h.metrics();
        let l: Labels = vec![("pipeline".into(), name.clone())];
        let c = |x: u64| (l.clone(), Value::Counter(x as f64));
        let g = |x: f64| (l.clone(), Value::Gauge(x));
        f[0].samples.push(c(m.received));
        f[1].samples.push(c(m.processed));
        f[2].samples.push(c(m.attempts));
        f[3].samples.push(c(m.retried));
        for t in &m.tiers {
            let tl = with(&l, &[("tier", t.topic.clone())]);
            f[4].samples
                .push((tl.clone(), Value::Counter(t.forwarded as f64)));
            f[5].samples.push((tl, Value::Counter(t.attempted as f64)));
        }
        f[6].samples.push(c(m.dead_lettered));
        f[7].samples.push(c(m.fatal));
        f[8].samples.push(g(m.in_flight as f64));
        f[9].samples.push(g(m.buffered_bytes as f64));
        f[10].samples.push(g(m.buffered_records as f64));
        for (reason, n) in &m.paused {
            let rl = with(&l, &[("reason", reason.to_string())]);
            f[11].samples.push((rl, Value::Gauge(*n as f64)));
        }
        f[12].samples.push(g(m.breaker_open as f64));
        f[13]
            .samples
            .push((l.clone(), Value::Counter(ms_to_s(m.throttled_ms))));
        f[14].samples.push(g(m.commit_lag as f64));
        f[15].samples.push(c(m.commits));
        f[16].samples.push(g(m.assigned as f64));
    }
    f.into()
}

/// Fetches `http://addr/metrics` and parses it (for `lag` and `lab`).
pub(crate) async fn scrape(addr: &str) -> Result<prometheus_parse::Scrape> {
    let url = if addr.starts_with("http") {
        addr.to_owned()
    } else {
        format!("http://{addr}/metrics")
    };
    let err = |e: String| Error::InvalidArgument {
        message: format!("scraping {url}: {e}"),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let body = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| err(e.to_string()))?
        .text()
        .await
        .map_err(|e| err(e.to_string()))?;
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| err(e.to_string()))
}
