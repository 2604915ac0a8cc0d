//! The figures of a run, printed as a table and written as JSON (`target/bench/latest.json`).

use std::{fmt::Write as _, path::Path};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::{
    error::Result,
    lag::ConsumerLag,
    settings::{Phase, Settings},
    sys::MachineFacts,
};

/// Webhook-ingest should reach this share of the minimal receiver's throughput.
pub const INGEST_TARGET_RATIO: f64 = 0.7;
/// End-to-end p99 target for the pipeline phase, in milliseconds.
pub const E2E_P99_TARGET_MS: f64 = 50.0;

#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": round(self.p50_ms),
            "p90_ms": round(self.p90_ms),
            "p99_ms": round(self.p99_ms),
            "p999_ms": round(self.p999_ms),
            "max_ms": round(self.max_ms),
        })
    }

    fn short(&self) -> String {
        format!(
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

#[derive(Debug, Clone)]
pub struct JetStreamFigures {
    pub window: usize,
    pub published: u64,
    pub secs: f64,
    pub msgs_per_sec: f64,
    pub errors: u64,
    pub ack_latency: Latency,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HttpFigures {
    pub connections: usize,
    pub connections_opened: usize,
    pub secs: f64,
    pub accepted: u64,
    pub accepted_per_sec: f64,
    pub non_200: u64,
    pub errors: u64,
    pub latency: Latency,
    pub receiver_cpu_us_per_req: Option<f64>,
    pub nats_cpu_us_per_req: Option<f64>,
    pub consumers: Vec<ConsumerLag>,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PipelineFigures {
    pub rate: u32,
    pub secs: f64,
    pub sent: u64,
    pub accepted: u64,
    pub non_200: u64,
    pub errors: u64,
    pub max_schedule_lag_ms: f64,
    pub http: Latency,
    pub e2e: Latency,
    pub seen: u64,
    pub never_seen: u64,
    pub duplicates: u64,
    pub watch_restarts: u64,
    pub watch_error: Option<String>,
    pub warmup_ms: f64,
    pub consumers: Vec<ConsumerLag>,
    /// CPU per delivery of each process over the load window, in µs.
    pub cpu_us_per_delivery: Vec<(String, Option<f64>)>,
    pub first_error: Option<String>,
}

/// Agent replies through the stack against direct calls to the simulator (see `phases::reply`).
#[derive(Debug, Clone)]
pub struct ReplyFigures {
    pub rate: u32,
    pub customers: usize,
    pub sends: u64,
    pub secs: f64,
    pub max_schedule_lag_ms: f64,
    /// Stored as SENT (Meta accepted them).
    pub sent: u64,
    /// Stored FAILED or still PENDING.
    pub failed: u64,
    pub refused: u64,
    pub rpc_errors: u64,
    /// SendMessage issued → the simulator has the Send API call.
    pub to_graph: Latency,
    /// Its median over the first and the last quarter of the schedule.
    pub to_graph_p50_first_quarter_ms: f64,
    pub to_graph_p50_last_quarter_ms: f64,
    /// SendMessage round trip (it returns after Meta answered).
    pub rpc: Latency,
    /// Replies whose Send API call reached the simulator.
    pub graph_received: u64,
    /// Replies in the simulator's record of accepted messages.
    pub sim_sent: u64,
    /// Send API calls for a reply beyond its first.
    pub duplicates: u64,
    /// Baseline: the bench's own Send API call to the simulator, round trip.
    pub direct: Latency,
    pub direct_errors: u64,
    pub direct_max_schedule_lag_ms: f64,
    /// CPU per reply of each process over the reply run, in µs.
    pub cpu_us_per_send: Vec<(String, Option<f64>)>,
    pub first_error: Option<String>,
}

impl ReplyFigures {
    /// Every reply went out exactly once and was stored as SENT.
    pub fn correct(&self) -> bool {
        self.sent == self.sends
            && self.graph_received == self.sends
            && self.sim_sent == self.sends
            && self.duplicates == 0
    }

    fn to_graph_ratio(&self) -> Option<f64> {
        ratio(
            self.to_graph.p99_ms,
            self.direct.p99_ms,
            self.to_graph.count,
            self.direct.count,
        )
    }

    fn rpc_ratio(&self) -> Option<f64> {
        ratio(
            self.rpc.p99_ms,
            self.direct.p99_ms,
            self.rpc.count,
            self.direct.count,
        )
    }
}

/// inbox draining a backlog into its store against a bare pull consumer (see `phases::inbox_consume`).
#[derive(Debug, Clone)]
pub struct ConsumeFigures {
    pub events: u64,
    pub batch: usize,
    pub linger_ms: f64,
    /// Filling the backlog (256 publishes in flight), for context.
    pub publish_per_sec: f64,
    pub raw_secs: f64,
    pub raw_per_sec: f64,
    pub inbox_secs: f64,
    pub inbox_per_sec: f64,
    /// Messages inbox holds afterwards (sum of its conversations' message counts).
    pub stored_messages: u64,
    pub redelivered: u64,
    /// The inbox process over its whole life (start, migrations, drain) per event.
    pub inbox_cpu_us_per_event: Option<f64>,
    pub nats_cpu_us_per_event: Option<f64>,
}

impl ConsumeFigures {
    pub fn correct(&self) -> bool {
        self.stored_messages == self.events
    }

    fn ratio(&self) -> Option<f64> {
        (self.raw_per_sec > 0.0).then(|| self.inbox_per_sec / self.raw_per_sec)
    }
}

fn ratio(value: f64, base: f64, value_n: u64, base_n: u64) -> Option<f64> {
    (value_n > 0 && base_n > 0 && base > 0.0).then(|| value / base)
}

#[derive(Debug, Clone)]
pub enum Figures {
    JetStream(JetStreamFigures),
    Http(HttpFigures),
    Pipeline(PipelineFigures),
    Reply(ReplyFigures),
    Consume(ConsumeFigures),
}

// A handful of these per run: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    Ran(Figures),
    Skipped(String),
    Failed(String),
}

pub struct Report {
    pub started_at: String,
    pub settings: Settings,
    pub machine: MachineFacts,
    pub body_bytes: (usize, usize),
    /// Every phase run in order: (phase, round, outcome).
    pub phases: Vec<(Phase, usize, Outcome)>,
}

/// Median, min, max and count of some figure over the rounds.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
            n,
        })
    }

    fn json(&self) -> Value {
        json!({ "median": round(self.median), "min": round(self.min), "max": round(self.max), "n": self.n })
    }
}

impl Report {
    /// The headline rate of every run of `phase`: msgs/s, accepted/s, for the pipeline the
    /// end-to-end p99 in ms, for replies the reply → Graph call p99 in ms, for inbox-consume the
    /// inbox's events/s.
    fn headline(&self, phase: Phase) -> Option<Spread> {
        self.spread(phase, |f| match f {
            Figures::JetStream(f) => Some(f.msgs_per_sec),
            Figures::Http(f) => Some(f.accepted_per_sec),
            Figures::Pipeline(f) => Some(f.e2e.p99_ms),
            Figures::Reply(f) => Some(f.to_graph.p99_ms),
            Figures::Consume(f) => Some(f.inbox_per_sec),
        })
    }

    /// `pick` over every run of `phase` that ran.
    fn spread(&self, phase: Phase, pick: impl Fn(&Figures) -> Option<f64>) -> Option<Spread> {
        let values = self
            .phases
            .iter()
            .filter(|(p, _, _)| *p == phase)
            .filter_map(|(_, _, o)| match o {
                Outcome::Ran(f) => pick(f),
                Outcome::Skipped(_) | Outcome::Failed(_) => None,
            })
            .collect();
        Spread::of(values)
    }

    /// Ratios to a baseline measured inside the same phase run: the median of the per-round
    /// ratios.
    fn in_phase_ratios(&self) -> Vec<(&'static str, Spread)> {
        let mut out = Vec::new();
        let reply = |pick: fn(&ReplyFigures) -> Option<f64>| {
            self.spread(Phase::Reply, move |f| match f {
                Figures::Reply(r) => pick(r),
                _ => None,
            })
        };
        if let Some(sp) = reply(ReplyFigures::to_graph_ratio) {
            out.push(("reply→Graph p99 / simulator answer p99", sp));
        }
        if let Some(sp) = reply(ReplyFigures::rpc_ratio) {
            out.push(("reply RPC p99 / simulator answer p99", sp));
        }
        let consume = self.spread(Phase::InboxConsume, |f| match f {
            Figures::Consume(c) => c.ratio(),
            _ => None,
        });
        if let Some(sp) = consume {
            out.push(("inbox consume / raw JetStream pull", sp));
        }
        out
    }

    fn median(&self, phase: Phase) -> Option<f64> {
        self.headline(phase).map(|s| s.median)
    }

    /// (name, value, target verdict) for each ratio both of whose phases ran.
    fn ratios(&self) -> Vec<(&'static str, f64, Option<bool>)> {
        let js = self.median(Phase::JetStream);
        let minimal = self.median(Phase::Minimal);
        let ingest = self.median(Phase::Ingest);
        let receiver = self.median(Phase::IngestReceiver);
        let mut out = Vec::new();
        if let (Some(i), Some(m)) = (ingest, minimal) {
            out.push(("ingest / minimal", i / m, Some(i / m >= INGEST_TARGET_RATIO)));
        }
        if let (Some(r), Some(m)) = (receiver, minimal) {
            out.push(("ingest-rx / minimal", r / m, None));
        }
        if let (Some(m), Some(j)) = (minimal, js) {
            out.push(("minimal / raw JetStream", m / j, None));
        }
        if let (Some(i), Some(j)) = (ingest, js) {
            out.push(("ingest / raw JetStream", i / j, None));
        }
        out
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let st = &self.settings;
        let _ = writeln!(s, "\n== scifer-bench  {}", self.started_at);
        let _ = writeln!(
            s,
            "machine   nproc {} | {} | {}\nnats      {} ({})\nbuild     services: {} | bench: {} | {} | commit {}",
            m.nproc,
            m.cpu_model,
            m.kernel,
            m.nats_server,
            m.nats_server_path,
            m.bin_profile,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            m.rustc,
            m.git_commit
        );
        let _ = writeln!(
            s,
            "load      {:.1} s per phase (+{:.1} s warm-up), {} connections, JetStream window {}, \
             pipeline {} deliveries/s, bodies {}–{} B",
            st.duration.as_secs_f64(),
            st.warmup.as_secs_f64(),
            st.connections,
            st.window,
            st.rate,
            self.body_bytes.0,
            self.body_bytes.1
        );
        if cfg!(debug_assertions) {
            let _ = writeln!(
                s,
                "WARNING   the driver is a debug build: use --release for figures"
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<16} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11}",
            "phase", "per second", "p50 ms", "p99 ms", "max ms", "n", "non-200", "recv µs/req", "nats µs/req"
        );
        for (phase, round, outcome) in &self.phases {
            let name = run_name(*phase, *round, self.settings.rounds);
            match outcome {
                Outcome::Ran(Figures::JetStream(f)) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>8} {:>11} {:>11}",
                        name,
                        f.msgs_per_sec,
                        f.ack_latency.p50_ms,
                        f.ack_latency.p99_ms,
                        f.ack_latency.max_ms,
                        f.published,
                        f.errors,
                        "-",
                        "-"
                    );
                }
                Outcome::Ran(Figures::Http(f)) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>8} {:>11} {:>11}",
                        name,
                        f.accepted_per_sec,
                        f.latency.p50_ms,
                        f.latency.p99_ms,
                        f.latency.max_ms,
                        f.accepted,
                        f.non_200 + f.errors,
                        opt(f.receiver_cpu_us_per_req),
                        opt(f.nats_cpu_us_per_req)
                    );
                }
                Outcome::Ran(Figures::Pipeline(f)) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>8} {:>11} {:>11}",
                        name,
                        f.accepted as f64 / f.secs.max(1e-9),
                        f.e2e.p50_ms,
                        f.e2e.p99_ms,
                        f.e2e.max_ms,
                        f.seen,
                        f.non_200 + f.errors,
                        "-",
                        "-"
                    );
                }
                Outcome::Ran(Figures::Reply(f)) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>8} {:>11} {:>11}",
                        name,
                        f.sent as f64 / f.secs.max(1e-9),
                        f.to_graph.p50_ms,
                        f.to_graph.p99_ms,
                        f.to_graph.max_ms,
                        f.sent,
                        f.failed + f.refused + f.rpc_errors,
                        "-",
                        "-"
                    );
                }
                Outcome::Ran(Figures::Consume(f)) => {
                    let _ = writeln!(
                        s,
                        "{:<16} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11}",
                        name,
                        f.inbox_per_sec,
                        "-",
                        "-",
                        "-",
                        f.stored_messages,
                        f.events.saturating_sub(f.stored_messages),
                        "-",
                        "-"
                    );
                }
                Outcome::Skipped(reason) => {
                    let _ = writeln!(s, "{name:<16} skipped: {reason}");
                }
                Outcome::Failed(reason) => {
                    let _ = writeln!(s, "{name:<16} FAILED: {reason}");
                }
            }
        }
        let _ = writeln!(
            s,
            "(jetstream: PubAck latency, {} in flight | minimal, ingest, ingest-rx: HTTP latency, closed loop; \
             ingest-rx = webhook-ingest with SPLITTER_ENABLED=false | pipeline: POST → MessageCreated \
             on WatchInbox, open loop | reply: SendMessage issued → Graph call at the simulator, open loop | \
             inbox-consume: MetaEvents stored per second)",
            st.window
        );

        for (phase, round, outcome) in &self.phases {
            let name = run_name(*phase, *round, self.settings.rounds);
            match outcome {
                Outcome::Ran(Figures::JetStream(f)) => {
                    let _ = writeln!(
                        s,
                        "\n-- {}: raw JetStream publish, {} in flight",
                        phase.name(),
                        f.window
                    );
                    let _ = writeln!(
                        s,
                        "   {} msgs in {:.2} s = {:.0} msgs/s; PubAck {}",
                        f.published,
                        f.secs,
                        f.msgs_per_sec,
                        f.ack_latency.short()
                    );
                    if let Some(e) = &f.first_error {
                        let _ = writeln!(s, "   errors: {} (first: {e})", f.errors);
                    }
                }
                Outcome::Ran(Figures::Http(f)) => {
                    let _ = writeln!(
                        s,
                        "\n-- {name}: {} connections, closed loop ({} opened)",
                        f.connections, f.connections_opened
                    );
                    let _ = writeln!(
                        s,
                        "   {} accepted in {:.2} s = {:.0} /s; non-200 {}, errors {}",
                        f.accepted, f.secs, f.accepted_per_sec, f.non_200, f.errors
                    );
                    let _ = writeln!(s, "   latency {}", f.latency.short());
                    let _ = writeln!(
                        s,
                        "   CPU per accepted request: receiver {} µs, nats-server {} µs",
                        opt(f.receiver_cpu_us_per_req),
                        opt(f.nats_cpu_us_per_req)
                    );
                    if let Some(e) = &f.first_error {
                        let _ = writeln!(s, "   first error: {e}");
                    }
                    render_consumers(&mut s, &f.consumers);
                }
                Outcome::Ran(Figures::Pipeline(f)) => {
                    let _ = writeln!(
                        s,
                        "\n-- {name}: webhook-ingest → inbox → gateway WatchInbox, open loop at {} /s",
                        f.rate
                    );
                    let _ = writeln!(
                        s,
                        "   sent {} in {:.2} s (max {:.1} ms behind schedule); accepted {}, non-200 {}, errors {}",
                        f.sent, f.secs, f.max_schedule_lag_ms, f.accepted, f.non_200, f.errors
                    );
                    let _ = writeln!(s, "   HTTP    {}", f.http.short());
                    let _ = writeln!(
                        s,
                        "   e2e     {}  [target p99 ≤ {E2E_P99_TARGET_MS} ms: {}]",
                        f.e2e.short(),
                        verdict(f.e2e.count > 0 && f.e2e.p99_ms <= E2E_P99_TARGET_MS)
                    );
                    let _ = writeln!(
                        s,
                        "   seen {} / {}, never seen within {:.1} s: {}, duplicates {}, watch restarts {}",
                        f.seen,
                        f.sent,
                        st.e2e_timeout.as_secs_f64(),
                        f.never_seen,
                        f.duplicates,
                        f.watch_restarts
                    );
                    let _ = writeln!(
                        s,
                        "   first delivery through the empty pipeline took {:.0} ms",
                        f.warmup_ms
                    );
                    if let Some(e) = &f.watch_error {
                        let _ = writeln!(s, "   watch stream error: {e}");
                    }
                    if let Some(e) = &f.first_error {
                        let _ = writeln!(s, "   first HTTP error: {e}");
                    }
                    let cpu: Vec<String> = f
                        .cpu_us_per_delivery
                        .iter()
                        .map(|(name, v)| format!("{name} {}", opt(*v)))
                        .collect();
                    let _ = writeln!(s, "   CPU µs per delivery: {}", cpu.join(", "));
                    render_consumers(&mut s, &f.consumers);
                }
                Outcome::Ran(Figures::Reply(f)) => render_reply(&mut s, &name, f),
                Outcome::Ran(Figures::Consume(f)) => render_consume(&mut s, &name, f),
                Outcome::Skipped(_) | Outcome::Failed(_) => {}
            }
        }

        if self.settings.rounds > 1 {
            let _ = writeln!(
                s,
                "\n-- median [min–max] over {} interleaved rounds",
                self.settings.rounds
            );
            for phase in &self.settings.phases {
                if let Some(sp) = self.headline(*phase) {
                    let unit = match phase {
                        Phase::Pipeline => "ms e2e p99",
                        Phase::Reply => "ms reply→Graph p99",
                        Phase::InboxConsume => "events/s stored",
                        _ => "/s",
                    };
                    let _ = writeln!(
                        s,
                        "   {:<16} {:.1} [{:.1}–{:.1}] {unit} (n={})",
                        phase.name(),
                        sp.median,
                        sp.min,
                        sp.max,
                        sp.n
                    );
                }
            }
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            let basis = if self.settings.rounds > 1 {
                "medians, same run"
            } else {
                "same run"
            };
            let _ = writeln!(s, "\n-- ratios ({basis})");
            for (name, value, ok) in ratios {
                let target = match ok {
                    Some(ok) => format!("  [target ≥ {INGEST_TARGET_RATIO}: {}]", verdict(ok)),
                    None => String::new(),
                };
                let _ = writeln!(s, "   {name:<40} {value:.2}{target}");
            }
        }
        let in_phase = self.in_phase_ratios();
        if !in_phase.is_empty() {
            let _ = writeln!(
                s,
                "\n-- ratios to a baseline measured in the same phase run (median [min–max] of the rounds)"
            );
            for (name, sp) in in_phase {
                let _ = writeln!(
                    s,
                    "   {name:<40} {:.2} [{:.2}–{:.2}] (n={})",
                    sp.median, sp.min, sp.max, sp.n
                );
            }
        }
        s
    }

    pub fn json(&self) -> Value {
        let m = &self.machine;
        let st = &self.settings;
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|(phase, run, outcome)| {
                let mut v = match outcome {
                    Outcome::Ran(Figures::JetStream(f)) => json!({
                        "status": "ran",
                        "window": f.window,
                        "published": f.published,
                        "secs": round(f.secs),
                        "msgs_per_sec": f.msgs_per_sec.round(),
                        "errors": f.errors,
                        "ack_latency": f.ack_latency.json(),
                        "first_error": f.first_error,
                    }),
                    Outcome::Ran(Figures::Http(f)) => json!({
                        "status": "ran",
                        "connections": f.connections,
                        "connections_opened": f.connections_opened,
                        "secs": round(f.secs),
                        "accepted": f.accepted,
                        "accepted_per_sec": f.accepted_per_sec.round(),
                        "non_200": f.non_200,
                        "errors": f.errors,
                        "latency": f.latency.json(),
                        "receiver_cpu_us_per_req": f.receiver_cpu_us_per_req.map(round),
                        "nats_cpu_us_per_req": f.nats_cpu_us_per_req.map(round),
                        "consumers": consumers_json(&f.consumers),
                        "first_error": f.first_error,
                    }),
                    Outcome::Ran(Figures::Pipeline(f)) => json!({
                        "status": "ran",
                        "rate": f.rate,
                        "secs": round(f.secs),
                        "sent": f.sent,
                        "accepted": f.accepted,
                        "non_200": f.non_200,
                        "errors": f.errors,
                        "max_schedule_lag_ms": round(f.max_schedule_lag_ms),
                        "http_latency": f.http.json(),
                        "e2e_latency": f.e2e.json(),
                        "e2e_p99_target_ms": E2E_P99_TARGET_MS,
                        "e2e_p99_met": f.e2e.count > 0 && f.e2e.p99_ms <= E2E_P99_TARGET_MS,
                        "seen": f.seen,
                        "never_seen": f.never_seen,
                        "duplicates": f.duplicates,
                        "watch_restarts": f.watch_restarts,
                        "watch_error": f.watch_error,
                        "warmup_ms": round(f.warmup_ms),
                        "consumers": consumers_json(&f.consumers),
                        "cpu_us_per_delivery": f.cpu_us_per_delivery.iter()
                            .map(|(n, v)| (n.clone(), json!(v.map(round))))
                            .collect::<serde_json::Map<_, _>>(),
                        "first_error": f.first_error,
                    }),
                    Outcome::Ran(Figures::Reply(f)) => json!({
                        "status": "ran",
                        "rate": f.rate,
                        "customers": f.customers,
                        "sends": f.sends,
                        "secs": round(f.secs),
                        "max_schedule_lag_ms": round(f.max_schedule_lag_ms),
                        "sent": f.sent,
                        "failed": f.failed,
                        "refused": f.refused,
                        "rpc_errors": f.rpc_errors,
                        "reply_to_graph_latency": f.to_graph.json(),
                        "reply_to_graph_p50_first_quarter_ms": round(f.to_graph_p50_first_quarter_ms),
                        "reply_to_graph_p50_last_quarter_ms": round(f.to_graph_p50_last_quarter_ms),
                        "reply_rpc_latency": f.rpc.json(),
                        "sim_answer_latency": f.direct.json(),
                        "sim_answer_errors": f.direct_errors,
                        "sim_answer_max_schedule_lag_ms": round(f.direct_max_schedule_lag_ms),
                        "graph_received": f.graph_received,
                        "sim_sent": f.sim_sent,
                        "duplicates": f.duplicates,
                        "correct": f.correct(),
                        "reply_to_graph_p99_over_sim_answer_p99": f.to_graph_ratio().map(round),
                        "reply_rpc_p99_over_sim_answer_p99": f.rpc_ratio().map(round),
                        "cpu_us_per_send": f.cpu_us_per_send.iter()
                            .map(|(n, v)| (n.clone(), json!(v.map(round))))
                            .collect::<serde_json::Map<_, _>>(),
                        "first_error": f.first_error,
                    }),
                    Outcome::Ran(Figures::Consume(f)) => json!({
                        "status": "ran",
                        "events": f.events,
                        "batch": f.batch,
                        "linger_ms": round(f.linger_ms),
                        "publish_per_sec": f.publish_per_sec.round(),
                        "raw_secs": round(f.raw_secs),
                        "raw_per_sec": f.raw_per_sec.round(),
                        "inbox_secs": round(f.inbox_secs),
                        "inbox_per_sec": f.inbox_per_sec.round(),
                        "inbox_over_raw": f.ratio().map(round),
                        "stored_messages": f.stored_messages,
                        "redelivered": f.redelivered,
                        "correct": f.correct(),
                        "inbox_cpu_us_per_event": f.inbox_cpu_us_per_event.map(round),
                        "nats_cpu_us_per_event": f.nats_cpu_us_per_event.map(round),
                    }),
                    Outcome::Skipped(reason) => json!({ "status": "skipped", "reason": reason }),
                    Outcome::Failed(reason) => json!({ "status": "failed", "reason": reason }),
                };
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("phase".into(), json!(phase.name()));
                    obj.insert("round".into(), json!(run));
                }
                v
            })
            .collect();
        let mut ratios: serde_json::Map<String, Value> = self
            .ratios()
            .into_iter()
            .map(|(name, value, ok)| (json_key(name), json!({ "value": round(value), "target_met": ok })))
            .collect();
        for (name, sp) in self.in_phase_ratios() {
            ratios.insert(
                json_key(name),
                json!({
                    "value": round(sp.median),
                    "min": round(sp.min),
                    "max": round(sp.max),
                    "n": sp.n,
                    "target_met": null,
                }),
            );
        }
        json!({
            "started_at": self.started_at,
            "machine": {
                "nproc": m.nproc,
                "cpu_model": m.cpu_model,
                "kernel": m.kernel,
                "rustc": m.rustc,
                "nats_server": m.nats_server,
                "nats_server_path": m.nats_server_path,
                "service_profile": m.bin_profile,
                "driver_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
                "git_commit": m.git_commit,
            },
            "settings": {
                "rounds": st.rounds,
                "duration_secs": st.duration.as_secs_f64(),
                "warmup_secs": st.warmup.as_secs_f64(),
                "connections": st.connections,
                "jetstream_window": st.window,
                "pipeline_rate": st.rate,
                "reply_rate": st.reply_rate,
                "reply_customers": st.customers,
                "inbox_consume_events": st.events,
                "consumer_batch": st.consumer_batch,
                "e2e_timeout_secs": st.e2e_timeout.as_secs_f64(),
                "body_bytes_min": self.body_bytes.0,
                "body_bytes_max": self.body_bytes.1,
            },
            "targets": {
                "ingest_over_minimal_min": INGEST_TARGET_RATIO,
                "e2e_p99_max_ms": E2E_P99_TARGET_MS,
            },
            "phases": phases,
            "summary": self.settings.phases.iter()
                .filter_map(|p| self.headline(*p).map(|sp| (p.name().to_string(), sp.json())))
                .collect::<serde_json::Map<_, _>>(),
            "ratios": ratios,
        })
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&self.json())?;
        std::fs::write(path, text + "\n")?;
        Ok(())
    }
}

/// `reply RPC p99 / simulator answer p99` → `reply_rpc_p99_over_simulator_answer_p99`.
fn json_key(name: &str) -> String {
    name.replace(" / ", "_over_")
        .replace('→', "_to_")
        .replace([' ', '-'], "_")
        .to_lowercase()
}

fn render_reply(s: &mut String, name: &str, f: &ReplyFigures) {
    let _ = writeln!(
        s,
        "\n-- {name}: gateway SendMessage → inbox → token-vault → simulator Send API, open loop at {} /s \
         over {} conversations",
        f.rate, f.customers
    );
    let _ = writeln!(
        s,
        "   {} replies in {:.2} s (max {:.1} ms behind schedule): SENT {}, failed {}, refused {}, RPC errors {}",
        f.sends, f.secs, f.max_schedule_lag_ms, f.sent, f.failed, f.refused, f.rpc_errors
    );
    let _ = writeln!(s, "   reply → Graph call  {}", f.to_graph.short());
    let _ = writeln!(
        s,
        "   (reply → Graph p50 {:.2} ms over the first quarter of the run, {:.2} ms over the last: \
         growth means the stack falls behind the rate)",
        f.to_graph_p50_first_quarter_ms, f.to_graph_p50_last_quarter_ms
    );
    let _ = writeln!(s, "   reply RPC           {}", f.rpc.short());
    let _ = writeln!(
        s,
        "   simulator answer    {}  (baseline: the bench's own Send API calls, same rate; {} errors, max {:.1} ms behind schedule)",
        f.direct.short(),
        f.direct_errors,
        f.direct_max_schedule_lag_ms
    );
    let _ = writeln!(
        s,
        "   at the simulator: {} of {} replies arrived, {} accepted, {} duplicates [{}]",
        f.graph_received,
        f.sends,
        f.sim_sent,
        f.duplicates,
        if f.correct() {
            "each reply SENT exactly once"
        } else {
            "NOT each reply exactly once"
        }
    );
    let _ = writeln!(
        s,
        "   p99 ratios to the simulator's answer: reply→Graph {}, reply RPC {}",
        opt2(f.to_graph_ratio()),
        opt2(f.rpc_ratio())
    );
    let cpu: Vec<String> = f
        .cpu_us_per_send
        .iter()
        .map(|(name, v)| format!("{name} {}", opt(*v)))
        .collect();
    let _ = writeln!(s, "   CPU µs per reply: {}", cpu.join(", "));
    if let Some(e) = &f.first_error {
        let _ = writeln!(s, "   first error: {e}");
    }
}

fn render_consume(s: &mut String, name: &str, f: &ConsumeFigures) {
    let _ = writeln!(
        s,
        "\n-- {name}: a backlog of {} inbound-message MetaEvents, batches of {}, linger {:.0} ms (published at {:.0} /s)",
        f.events, f.batch, f.linger_ms, f.publish_per_sec
    );
    let _ = writeln!(
        s,
        "   raw JetStream pull (inbox's consume loop, ack only): {:.0} events/s ({:.2} s)",
        f.raw_per_sec, f.raw_secs
    );
    let _ = writeln!(
        s,
        "   inbox → SQLite store:                               {:.0} events/s ({:.2} s)",
        f.inbox_per_sec, f.inbox_secs
    );
    let _ = writeln!(
        s,
        "   ratio inbox / raw {}; stored messages {} of {}, redelivered {} [{}]",
        opt2(f.ratio()),
        f.stored_messages,
        f.events,
        f.redelivered,
        if f.correct() {
            "all stored"
        } else {
            "NOT all stored"
        }
    );
    let _ = writeln!(
        s,
        "   CPU µs per event: inbox {} (whole process: start, migrations, drain), nats-server {}",
        opt(f.inbox_cpu_us_per_event),
        opt(f.nats_cpu_us_per_event)
    );
}

fn run_name(phase: Phase, round: usize, rounds: usize) -> String {
    if rounds > 1 {
        format!("{}#{round}", phase.name())
    } else {
        phase.name().to_string()
    }
}

fn render_consumers(s: &mut String, consumers: &[ConsumerLag]) {
    for c in consumers {
        let _ = writeln!(
            s,
            "   lag {}/{}: max {}, at end of load {}, after drain {} ({} samples, every 500 ms)",
            c.stream,
            c.consumer,
            c.max,
            c.at_end_of_load.map_or("-".into(), |v| v.to_string()),
            c.after_drain.map_or("-".into(), |v| v.to_string()),
            c.samples
        );
    }
}

fn consumers_json(consumers: &[ConsumerLag]) -> Value {
    consumers
        .iter()
        .map(|c| {
            json!({
                "stream": c.stream,
                "consumer": c.consumer,
                "samples": c.samples,
                "max": c.max,
                "at_end_of_load": c.at_end_of_load,
                "after_drain": c.after_drain,
            })
        })
        .collect()
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn opt2(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
