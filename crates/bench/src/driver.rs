//! The load driver: HTTP/1.1 POSTs of signed deliveries over a hyper client, closed-loop (N
//! connections each looping for a duration) or open-loop (a fixed arrival rate).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::http::{Request, StatusCode, Uri, header};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::task::JoinSet;

use crate::{
    bodies::BodyFactory,
    error::{BenchError, Result},
};

/// One request never waits longer than this; a stuck receiver shows up as errors, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A latency histogram in microseconds, 1 µs to 100 s at 3 significant digits.
pub fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 100_000_000, 3)?)
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// An `HttpConnector` that counts the connections it opens, so the report can show that the
/// closed-loop driver really used N connections.
#[derive(Clone)]
struct CountingConnector {
    inner: HttpConnector,
    opened: Arc<AtomicUsize>,
}

impl tower::Service<Uri> for CountingConnector {
    type Response = <HttpConnector as tower::Service<Uri>>::Response;
    type Error = <HttpConnector as tower::Service<Uri>>::Error;
    type Future = <HttpConnector as tower::Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.inner.call(uri)
    }
}

/// Where the load goes: one URL, one client with its own connection pool.
pub struct Target {
    client: Client<CountingConnector, Full<Bytes>>,
    uri: Uri,
    opened: Arc<AtomicUsize>,
}

impl Target {
    /// A client for `url` that keeps up to `pool` idle connections (HTTP/1.1 only).
    pub fn new(url: &str, pool: usize) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| BenchError::msg(format!("bad target URL {url:?}: {e}")))?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let opened = Arc::new(AtomicUsize::new(0));
        let connector = CountingConnector {
            inner: http,
            opened: opened.clone(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self { client, uri, opened })
    }

    /// The POST Meta would send: JSON body, Meta's user agent, the signature header.
    fn request(&self, body: Bytes, signature: &str) -> Result<Request<Full<Bytes>>> {
        Request::post(self.uri.clone())
            .header(header::HOST, self.uri.authority().map_or("", |a| a.as_str()))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "facebookexternalua")
            .header("x-hub-signature-256", signature)
            .body(Full::new(body))
            .map_err(|e| BenchError::msg(format!("cannot build request: {e}")))
    }

    /// POSTs one signed delivery over the shared pool and reads the whole response.
    pub async fn post(&self, body: Bytes, signature: &str) -> Result<StatusCode> {
        let request = self.request(body, signature)?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Drain the body so the connection goes back to the pool.
            response.into_body().collect().await?;
            Ok::<_, BenchError>(status)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| BenchError::msg("request timed out"))?
    }

    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }
}

/// One HTTP/1.1 connection owned by one closed-loop worker: exactly N workers means exactly N
/// connections (a shared pool opens extra ones when a request races a connection's return).
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(target: &Target) -> Result<Self> {
        let authority = target
            .uri
            .authority()
            .ok_or_else(|| BenchError::msg("target URL has no host:port"))?
            .as_str()
            .to_string();
        let stream = tokio::net::TcpStream::connect(&authority).await?;
        stream.set_nodelay(true)?;
        target.opened.fetch_add(1, Ordering::Relaxed);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    async fn post(&mut self, target: &Target, body: Bytes, signature: &str) -> Result<StatusCode> {
        let request = target.request(body, signature)?;
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, BenchError>(status)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| BenchError::msg("request timed out"))?
    }
}

/// Figures of one closed-loop run (measured window only).
pub struct ClosedLoopResult {
    pub ok: u64,
    pub non_200: u64,
    pub errors: u64,
    pub measured: Duration,
    pub latency_us: Histogram<u64>,
    pub connections_opened: usize,
    pub first_error: Option<String>,
}

impl ClosedLoopResult {
    pub fn accepted_per_sec(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64().max(1e-9)
    }
}

/// `connections` workers, each with its own connection and one request at a time, for `warmup` (not recorded) and
/// then `duration`. Sequence numbers start at `seq_base`.
pub async fn closed_loop(
    target: Arc<Target>,
    factory: Arc<BodyFactory>,
    seq_base: u64,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<ClosedLoopResult> {
    let seq = Arc::new(AtomicU64::new(seq_base));
    let opened_before = target.connections_opened();
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (target, factory, seq) = (target.clone(), factory.clone(), seq.clone());
        workers.spawn(async move {
            let mut latency = histogram()?;
            let (mut ok, mut non_200, mut errors, mut first_error) = (0u64, 0u64, 0u64, None);
            let mut connection: Option<Connection> = None;
            loop {
                let body = factory.make(seq.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let result = match connection.as_mut() {
                    Some(c) => c.post(&target, body.body, &body.signature).await,
                    None => match Connection::open(&target).await {
                        Ok(mut c) => {
                            let result = c.post(&target, body.body, &body.signature).await;
                            connection = Some(c);
                            result
                        }
                        Err(e) => Err(e),
                    },
                };
                // A broken connection is replaced on the next request (and counted as opened).
                if result.is_err() {
                    connection = None;
                }
                if sent < measure_from {
                    continue;
                }
                latency.saturating_record(micros(sent.elapsed()));
                match result {
                    Ok(StatusCode::OK) => ok += 1,
                    Ok(status) => {
                        non_200 += 1;
                        first_error.get_or_insert_with(|| format!("HTTP {status}"));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            Ok::<_, BenchError>((latency, ok, non_200, errors, first_error))
        });
    }
    let mut result = ClosedLoopResult {
        ok: 0,
        non_200: 0,
        errors: 0,
        measured: duration,
        latency_us: histogram()?,
        connections_opened: 0,
        first_error: None,
    };
    while let Some(joined) = workers.join_next().await {
        let (latency, ok, non_200, errors, first_error) =
            joined.map_err(|e| BenchError::msg(format!("driver worker failed: {e}")))??;
        result.latency_us.add(&latency)?;
        result.ok += ok;
        result.non_200 += non_200;
        result.errors += errors;
        if result.first_error.is_none() {
            result.first_error = first_error;
        }
    }
    // Requests still in flight at `stop_at` finish a little later; divide by the real window.
    result.measured = measure_from.elapsed().max(duration);
    result.connections_opened = target.connections_opened() - opened_before;
    Ok(result)
}

/// Figures of one open-loop run.
pub struct OpenLoopResult {
    pub sent: u64,
    pub ok: u64,
    pub non_200: u64,
    pub errors: u64,
    pub http_latency_us: Histogram<u64>,
    /// How far behind schedule the driver sent its most delayed request.
    pub max_schedule_lag: Duration,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

/// Send times of an open-loop run, indexed by `seq - seq_base`: nanoseconds since `base`, plus one
/// (zero means "not sent").
pub struct SendLog {
    pub base: Instant,
    pub seq_base: u64,
    pub sent_at: Vec<AtomicU64>,
}

impl SendLog {
    pub fn new(seq_base: u64, count: usize) -> Self {
        Self {
            base: Instant::now(),
            seq_base,
            sent_at: (0..count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn stamp(&self, index: usize) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        if let Some(cell) = self.sent_at.get(index) {
            cell.store(nanos + 1, Ordering::Release);
        }
    }

    pub fn index_of(&self, seq: u64) -> Option<usize> {
        let index = usize::try_from(seq.checked_sub(self.seq_base)?).ok()?;
        (index < self.sent_at.len()).then_some(index)
    }
}

/// Sends `log.sent_at.len()` deliveries at `rate` per second, each in its own task, stamping each
/// one's send time in `log` just before its request goes out.
pub async fn open_loop(
    target: Arc<Target>,
    factory: Arc<BodyFactory>,
    log: Arc<SendLog>,
    rate: u32,
) -> Result<OpenLoopResult> {
    let total = log.sent_at.len();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let latency = Arc::new(Mutex::new(histogram()?));
    let mut tasks = JoinSet::new();
    let mut result = OpenLoopResult {
        sent: total as u64,
        ok: 0,
        non_200: 0,
        errors: 0,
        http_latency_us: histogram()?,
        max_schedule_lag: Duration::ZERO,
        elapsed: Duration::ZERO,
        first_error: None,
    };
    let start = Instant::now();
    for index in 0..total {
        let due = start + interval.mul_f64(index as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else {
            result.max_schedule_lag = result.max_schedule_lag.max(now - due);
        }
        let (target, factory, log, latency) = (target.clone(), factory.clone(), log.clone(), latency.clone());
        tasks.spawn(async move {
            let body = factory.make(log.seq_base + index as u64);
            let sent = Instant::now();
            log.stamp(index);
            let outcome = target.post(body.body, &body.signature).await;
            if let Ok(mut h) = latency.lock() {
                h.saturating_record(micros(sent.elapsed()));
            }
            outcome
        });
        // Reap finished tasks as we go so the set does not grow with the run.
        while let Some(done) = tasks.try_join_next() {
            result.count(done);
        }
    }
    result.elapsed = start.elapsed();
    while let Some(done) = tasks.join_next().await {
        result.count(done);
    }
    if let Ok(h) = latency.lock() {
        result.http_latency_us = h.clone();
    }
    Ok(result)
}

impl OpenLoopResult {
    fn count(&mut self, done: std::result::Result<Result<StatusCode>, tokio::task::JoinError>) {
        match done {
            Ok(Ok(StatusCode::OK)) => self.ok += 1,
            Ok(Ok(status)) => {
                self.non_200 += 1;
                self.first_error.get_or_insert_with(|| format!("HTTP {status}"));
            }
            Ok(Err(e)) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// What [`paced`] returns: every task's output (in completion order) and how well the schedule held.
pub struct Paced<T> {
    pub outputs: Vec<T>,
    /// How far behind schedule the most delayed task started.
    pub max_schedule_lag: Duration,
    /// From the first start to the last (the arrival window, without the tail of the last tasks).
    pub elapsed: Duration,
}

/// Open loop for anything: starts `task(i)` for `i` in `0..total` at `rate` per second, each in its
/// own tokio task, whatever the earlier ones are doing, then waits for all of them.
pub async fn paced<F, Fut, T>(total: usize, rate: u32, mut task: F) -> Paced<T>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = JoinSet::new();
    let mut outputs = Vec::with_capacity(total);
    let mut max_schedule_lag = Duration::ZERO;
    let start = Instant::now();
    for index in 0..total {
        let due = start + interval.mul_f64(index as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else {
            max_schedule_lag = max_schedule_lag.max(now - due);
        }
        tasks.spawn(task(index));
        while let Some(done) = tasks.try_join_next() {
            outputs.extend(done.ok());
        }
    }
    let elapsed = start.elapsed();
    while let Some(done) = tasks.join_next().await {
        outputs.extend(done.ok());
    }
    Paced {
        outputs,
        max_schedule_lag,
        elapsed,
    }
}
