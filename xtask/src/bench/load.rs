//! The load generator: N tasks, each owning one keep-alive HTTP/1.1 connection and sending
//! one request at a time (closed loop), so throughput is bounded by the server's latency
//! and every phase of a benchmark is driven identically.
//!
//! Only responses with the expected status count as completed; anything else is an error,
//! sampled for the report, because a fast stream of 401s would otherwise look like a win.
//!
//! A worker sends what its [`Requests`] says: the same [`Endpoint`] over and over, or a
//! sequence whose next request is built from the previous response (an OAuth2 refresh
//! chain, where each refresh token can be used only once).

use anyhow::{Context, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::http::response::Parts;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Error texts kept per worker; enough to diagnose, bounded under a flood of failures.
const SAMPLES_PER_WORKER: usize = 3;

/// One request, sent over and over.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    expect: StatusCode,
}

impl Endpoint {
    pub fn new(
        addr: SocketAddr,
        method: Method,
        path: &str,
        expect: StatusCode,
    ) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        Ok(Self {
            addr,
            method,
            uri: path.parse().with_context(|| format!("bad path {path:?}"))?,
            headers,
            body: Bytes::new(),
            expect,
        })
    }

    pub fn header(mut self, name: &'static str, value: &str) -> anyhow::Result<Self> {
        self.headers
            .insert(HeaderName::from_static(name), HeaderValue::from_str(value)?);
        Ok(self)
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Bytes::from(body.to_string());
        self
    }

    /// An `application/x-www-form-urlencoded` body (already encoded).
    pub fn form(mut self, body: String) -> Self {
        self.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.body = Bytes::from(body);
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same request sent to another server (the paths and headers stay; `Host` follows).
    pub fn at(mut self, addr: SocketAddr) -> anyhow::Result<Self> {
        self.headers
            .insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        self.addr = addr;
        Ok(self)
    }

    /// Sends the request once on a fresh connection (set-up steps and sanity checks).
    pub async fn once(&self) -> anyhow::Result<(StatusCode, Bytes)> {
        let (parts, body) = self.once_with_headers().await?;
        Ok((parts.status, body))
    }

    /// [`Endpoint::once`], keeping the response headers (a redirect's `Location`).
    pub async fn once_with_headers(&self) -> anyhow::Result<(Parts, Bytes)> {
        let mut sender = connect(self.addr).await?;
        exchange(&mut sender, self).await
    }
}

/// What one worker sends.
pub trait Requests: Send + 'static {
    /// The request to send next.
    fn next(&self) -> &Endpoint;

    /// Sees the body of every response that had the expected status, before the next
    /// request is taken; an error counts the request as failed (and, for a chain, leaves
    /// it where it was).
    fn accepted(&mut self, _body: &Bytes) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The same request every time.
impl Requests for Arc<Endpoint> {
    fn next(&self) -> &Endpoint {
        self
    }
}

/// How long a run lasts and which responses it counts.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// Run for `warmup + measure`; count only requests that start after the warm-up and
    /// finish inside the window, so connection set-up and cold caches stay out of the rate.
    Timed { warmup: Duration, measure: Duration },
    /// Send exactly this many requests across all connections and count them all.
    Count(u64),
}

/// What one endpoint's workers completed.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Latencies of counted requests in µs, sorted.
    latencies_us: Vec<u32>,
    pub error_samples: Vec<String>,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The `p`-th percentile latency in milliseconds (nearest rank).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let Some(last) = self.latencies_us.len().checked_sub(1) else {
            return 0.0;
        };
        let rank = ((p / 100.0) * last as f64).round() as usize;
        f64::from(self.latencies_us[rank.min(last)]) / 1000.0
    }

    fn finish(&mut self, seconds: f64) {
        self.seconds = seconds;
        self.latencies_us.sort_unstable();
    }

    fn merge(&mut self, other: WorkerStats) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        for s in other.error_samples {
            if self.error_samples.len() < 10 && !self.error_samples.contains(&s) {
                self.error_samples.push(s);
            }
        }
    }
}

/// The main endpoint's stats and, if one ran, the side load's.
#[derive(Debug)]
pub struct Outcome {
    pub main: Stats,
    pub side: Option<Stats>,
}

/// A concurrent side load: `concurrency` closed loops on another endpoint, running for the
/// whole of a timed plan (B2's password logins).
pub struct Side<'a> {
    pub endpoint: &'a Endpoint,
    pub concurrency: usize,
}

/// Shared by every worker of a run.
struct Window {
    measure_start: Instant,
    /// `None` for a counted plan.
    end: Option<Instant>,
    budget: Option<AtomicU64>,
}

impl Window {
    fn new(plan: Plan, start: Instant) -> Self {
        match plan {
            Plan::Timed { warmup, measure } => Window {
                measure_start: start + warmup,
                end: Some(start + warmup + measure),
                budget: None,
            },
            Plan::Count(n) => Window {
                measure_start: start,
                end: None,
                budget: Some(AtomicU64::new(n)),
            },
        }
    }
}

#[derive(Debug, Default)]
struct WorkerStats {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    error_samples: Vec<String>,
}

impl WorkerStats {
    fn error(&mut self, text: String) {
        self.errors += 1;
        if self.error_samples.len() < SAMPLES_PER_WORKER && !self.error_samples.contains(&text) {
            self.error_samples.push(text);
        }
    }
}

pub async fn run(
    endpoint: &Endpoint,
    connections: usize,
    plan: Plan,
    side: Option<Side<'_>>,
) -> anyhow::Result<Outcome> {
    ensure!(connections > 0, "at least one connection is needed");
    ensure!(
        side.is_none() || matches!(plan, Plan::Timed { .. }),
        "a side load needs a timed plan"
    );
    let start = Instant::now();
    let window = Arc::new(Window::new(plan, start));
    let spawn = |endpoint: &Endpoint, n: usize| {
        let shared = Arc::new(endpoint.clone());
        (0..n)
            .map(|_| tokio::spawn(worker(shared.clone(), window.clone())))
            .collect::<Vec<_>>()
    };
    let main_workers = spawn(endpoint, connections);
    let side_workers = side.as_ref().map(|s| spawn(s.endpoint, s.concurrency));

    let (mut main, _) = collect(main_workers).await?;
    let mut side_stats = match side_workers {
        Some(workers) => Some(collect(workers).await?.0),
        None => None,
    };
    let seconds = plan_seconds(plan, start);
    for stats in std::iter::once(&mut main).chain(side_stats.as_mut()) {
        stats.finish(seconds);
    }
    Ok(Outcome {
        main,
        side: side_stats,
    })
}

/// One worker, on its own connection, per element of `sources`; each worker sends what its
/// source says (see [`Requests`]). The sources come back with the figures, so a chain can be
/// continued by a later run.
pub async fn run_each<R: Requests>(sources: Vec<R>, plan: Plan) -> anyhow::Result<(Stats, Vec<R>)> {
    ensure!(!sources.is_empty(), "at least one connection is needed");
    let start = Instant::now();
    let window = Arc::new(Window::new(plan, start));
    let workers = sources
        .into_iter()
        .map(|source| tokio::spawn(worker(source, window.clone())))
        .collect::<Vec<_>>();
    let (mut stats, sources) = collect(workers).await?;
    stats.finish(plan_seconds(plan, start));
    Ok((stats, sources))
}

async fn collect<R>(
    workers: Vec<tokio::task::JoinHandle<(WorkerStats, R)>>,
) -> anyhow::Result<(Stats, Vec<R>)> {
    let mut stats = Stats::default();
    let mut sources = Vec::with_capacity(workers.len());
    for w in workers {
        let (worker_stats, source) = w.await.context("load worker panicked")?;
        stats.merge(worker_stats);
        sources.push(source);
    }
    Ok((stats, sources))
}

fn plan_seconds(plan: Plan, start: Instant) -> f64 {
    match plan {
        Plan::Timed { measure, .. } => measure.as_secs_f64(),
        Plan::Count(_) => start.elapsed().as_secs_f64(),
    }
}

async fn worker<R: Requests>(mut source: R, window: Arc<Window>) -> (WorkerStats, R) {
    let mut stats = WorkerStats::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        if window.end.is_some_and(|end| Instant::now() >= end) {
            break;
        }
        if let Some(budget) = &window.budget
            && budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        {
            break;
        }
        if conn.is_none() {
            match connect(source.next().addr).await {
                Ok(sender) => conn = Some(sender),
                Err(e) => {
                    stats.error(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };
        let endpoint = source.next();
        let sent = Instant::now();
        let result = exchange(sender, endpoint).await;
        let done = Instant::now();
        let counted = sent >= window.measure_start && window.end.is_none_or(|end| done <= end);
        let what = || format!("{} {}", endpoint.method, endpoint.uri);
        match result {
            Ok((parts, body)) if parts.status == endpoint.expect => {
                let what = what();
                // Always, counted or not: a chain must follow every response it got.
                match source.accepted(&body) {
                    Ok(()) if counted => {
                        stats.ok += 1;
                        let us = done.duration_since(sent).as_micros();
                        stats
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Ok(()) => {}
                    Err(e) => stats.error(format!("{what}: {e:#}")),
                }
            }
            Ok((parts, body)) => {
                let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                stats.error(format!("{}: {} {body}", what(), parts.status));
            }
            Err(e) => {
                // The connection is in an unknown state; start a new one.
                conn = None;
                stats.error(format!("{}: {e:#}", what()));
            }
        }
    }
    (stats, source)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes the connection; the worker
        // sees the latter as a failed request and reconnects.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    endpoint: &Endpoint,
) -> anyhow::Result<(Parts, Bytes)> {
    sender.ready().await?;
    let mut req = Request::new(Full::new(endpoint.body.clone()));
    *req.method_mut() = endpoint.method.clone();
    *req.uri_mut() = endpoint.uri.clone();
    *req.headers_mut() = endpoint.headers.clone();
    let res = sender.send_request(req).await?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts, body))
}
