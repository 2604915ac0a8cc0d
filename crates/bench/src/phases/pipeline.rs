//! The whole path at a fixed arrival rate: webhook-ingest (receive + split) → inbox (store, emit
//! InboxEvents) → gateway WatchInbox. Each delivery's latency runs from its POST to the
//! `MessageCreated` carrying its `mid`, read by a native gRPC client on the gateway, signed in as
//! the owner of the workspace the channel belongs to.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use scifer_events::{Bus, Publisher, StreamKind};
use scifer_proto::{
    events::v1::{ChannelEvent, ChannelKind, ChannelState, InboxEvent, inbox_event::Kind},
    gateway::v1::{WatchInboxRequest, inbox_api_client::InboxApiClient},
};
use scifer_test_support::TestDb;
use tokio::{sync::oneshot, task::JoinHandle};

use super::{
    Ctx,
    account::{Authed, Session},
    loopback_addr, start_service,
};
use crate::{
    bodies::{APP_SECRET, PAGE_ID, VERIFY_TOKEN, seq_of_mid},
    driver::{self, SendLog, Target, histogram, micros},
    error::{BenchError, Result},
    lag::LagSampler,
    report::{Latency, PipelineFigures},
    settings::Phase,
    sys::{self, CpuMeter},
};

/// Warm-up deliveries use sequence numbers from here on (relative to the phase's base).
const WARMUP_OFFSET: u64 = 1 << 40;
/// How long the empty pipeline may take to deliver its first message.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the consumers may take to catch up after the arrivals are in.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Ctx, bus: &Bus) -> Result<PipelineFigures> {
    let st = &ctx.settings;
    let client = scifer_events::connect(&ctx.nats_url).await?;
    let js = async_nats::jetstream::new(client);
    bus.ensure_default_stream(&js, StreamKind::Channels).await?;

    let common = |extra: Vec<(&'static str, String)>| {
        let mut env = vec![
            ("NATS_URL", ctx.nats_url.clone()),
            ("BUS_PREFIX", bus.prefix().to_string()),
            ("RUST_LOG", "warn".to_string()),
        ];
        env.extend(extra);
        env
    };
    let db = TestDb::sqlite();
    let gateway_db = TestDb::sqlite();
    let inbox_addr = loopback_addr();
    let inbox = start_service(
        "inbox",
        common(vec![
            ("GRPC_ADDR", inbox_addr.clone()),
            ("DATABASE_URL", db.url().to_string()),
        ]),
        format!("http://{inbox_addr}/readyz"),
    )
    .await?;
    let listen = loopback_addr();
    let ingest = start_service(
        "webhook-ingest",
        common(vec![
            ("LISTEN_ADDR", listen.clone()),
            ("ADMIN_ADDR", loopback_addr()),
            ("META_APP_SECRET", APP_SECRET.to_string()),
            ("META_VERIFY_TOKEN", VERIFY_TOKEN.to_string()),
        ]),
        format!("http://{listen}/readyz"),
    )
    .await?;
    let gateway_addr = loopback_addr();
    let gateway = start_service(
        "gateway",
        common(vec![
            ("LISTEN_ADDR", gateway_addr.clone()),
            ("INBOX_URL", format!("http://{inbox_addr}")),
            ("DATABASE_URL", gateway_db.url().to_string()),
        ]),
        format!("http://{gateway_addr}/readyz"),
    )
    .await?;
    // The gateway serves a workspace's inbox to its members only: sign up, create the workspace,
    // and connect the channel there. Deliveries that beat the channel to inbox wait for it.
    let session = Session::sign_up(&format!("http://{gateway_addr}")).await?;
    seed_channel(&js, bus, &session.workspace).await?;

    let total = (f64::from(st.rate) * st.duration.as_secs_f64()).round().max(1.0) as usize;
    let log = Arc::new(SendLog::new(Phase::Pipeline.seq_base(), total));
    let arrivals = Arc::new(Arrivals::new(total));
    let watch = Watch::start(
        InboxApiClient::new(session.authed()?),
        session.workspace.clone(),
        log.clone(),
        arrivals.clone(),
    )
    .await?;

    // Open loop: the pool grows to whatever concurrency the rate and latency need.
    let target = Arc::new(Target::new(&format!("http://{listen}/webhooks/meta"), 1024)?);
    let warmup_ms = warm_up(ctx, &target, &arrivals).await?;

    let sampler = LagSampler::start(
        js.clone(),
        vec![
            bus.stream_name(StreamKind::Ingest),
            bus.stream_name(StreamKind::Meta),
        ],
    );
    let meters = [
        ("webhook-ingest", CpuMeter::process(ingest.pid())),
        ("inbox", CpuMeter::process(inbox.pid())),
        ("gateway", CpuMeter::process(gateway.pid())),
        ("nats-server", CpuMeter::process(sys::child_pid("nats-server"))),
    ];
    let sent = driver::open_loop(target, ctx.factory.clone(), log.clone(), st.rate).await?;
    let end_of_load = sampler.mark_end_of_load().await;
    let cpu_us_per_delivery = meters
        .iter()
        .map(|(name, meter)| (name.to_string(), meter.micros_per(sent.sent)))
        .collect();

    // Wait for every accepted delivery to show up (or the timeout), then for the consumers.
    let deadline = Instant::now() + st.e2e_timeout;
    while arrivals.seen.load(Ordering::Acquire) < sent.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sampler.wait_drained(DRAIN_TIMEOUT).await;
    let consumers = sampler.finish(end_of_load).await;
    watch.stop();

    let mut e2e = histogram()?;
    let mut never_seen = 0u64;
    for (sent_at, arrived_at) in log.sent_at.iter().zip(&arrivals.arrived_at) {
        let (s, a) = (
            sent_at.load(Ordering::Acquire),
            arrived_at.load(Ordering::Acquire),
        );
        match (s, a) {
            (0, _) => {}
            (_, 0) => never_seen += 1,
            (s, a) => e2e.saturating_record(micros(Duration::from_nanos(a.saturating_sub(s)))),
        }
    }
    drop((gateway, ingest, inbox, db, gateway_db));
    Ok(PipelineFigures {
        rate: st.rate,
        secs: sent.elapsed.as_secs_f64(),
        sent: sent.sent,
        accepted: sent.ok,
        non_200: sent.non_200,
        errors: sent.errors,
        max_schedule_lag_ms: sent.max_schedule_lag.as_secs_f64() * 1000.0,
        http: Latency::from_micros(&sent.http_latency_us),
        e2e: Latency::from_micros(&e2e),
        seen: arrivals.seen.load(Ordering::Acquire),
        never_seen,
        duplicates: arrivals.duplicates.load(Ordering::Acquire),
        watch_restarts: arrivals.restarts.load(Ordering::Acquire),
        watch_error: arrivals.error.lock().ok().and_then(|e| e.clone()),
        warmup_ms,
        consumers,
        cpu_us_per_delivery,
        first_error: sent.first_error,
    })
}

/// Connects a Messenger channel for [`PAGE_ID`] in `workspace`, as token-vault would.
pub async fn seed_channel(js: &async_nats::jetstream::Context, bus: &Bus, workspace: &str) -> Result<()> {
    let now = chrono::Utc::now();
    let event = ChannelEvent {
        state_reason: String::new(),
        parent_account_id: String::new(),
        event_id: uuid::Uuid::new_v4().to_string(),
        workspace_id: workspace.into(),
        channel_id: "ch-bench-messenger".into(),
        kind: ChannelKind::Messenger as i32,
        account_id: PAGE_ID.into(),
        display_name: "Bench Page".into(),
        state: ChannelState::Connected as i32,
        version: 1,
        at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
    };
    Publisher::new(js.clone())
        .publish(
            bus.channel_event(ChannelState::Connected),
            &event.event_id,
            &event,
        )
        .await?;
    Ok(())
}

/// Sends single deliveries until one comes back on the watch stream: proves the channel is known
/// and every hop is live before the measured load starts. Returns how long the first took.
async fn warm_up(ctx: &Ctx, target: &Target, arrivals: &Arrivals) -> Result<f64> {
    let start = Instant::now();
    let mut seq = Phase::Pipeline.seq_base() + WARMUP_OFFSET;
    while start.elapsed() < WARMUP_TIMEOUT {
        let body = ctx.factory.make(seq);
        seq += 1;
        target.post(body.body, &body.signature).await?;
        let resend_at = Instant::now() + Duration::from_secs(1);
        while Instant::now() < resend_at {
            if arrivals.warmed_up.load(Ordering::Acquire) {
                // A few more at a gentle pace so the first measured requests find warm pools.
                for _ in 0..20 {
                    let body = ctx.factory.make(seq);
                    seq += 1;
                    target.post(body.body, &body.signature).await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                return Ok(start.elapsed().as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let why = arrivals
        .error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_default();
    Err(BenchError::msg(format!(
        "no MessageCreated on WatchInbox within {WARMUP_TIMEOUT:?} of the first delivery {why}"
    )))
}

/// What the watch stream saw, indexed like the [`SendLog`].
struct Arrivals {
    arrived_at: Vec<AtomicU64>,
    seen: AtomicU64,
    duplicates: AtomicU64,
    restarts: AtomicU64,
    warmed_up: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Arrivals {
    fn new(count: usize) -> Self {
        Self {
            arrived_at: (0..count).map(|_| AtomicU64::new(0)).collect(),
            seen: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            warmed_up: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    fn record(&self, log: &SendLog, event: InboxEvent) {
        let Some(Kind::MessageCreated(created)) = event.kind else {
            return;
        };
        let Some(seq) = created.message.as_ref().and_then(|m| seq_of_mid(&m.external_id)) else {
            return;
        };
        match log.index_of(seq) {
            Some(index) => {
                let nanos = u64::try_from(log.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
                let first = self.arrived_at[index]
                    .compare_exchange(0, nanos + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                let counter = if first { &self.seen } else { &self.duplicates };
                counter.fetch_add(1, Ordering::AcqRel);
            }
            None if seq >= log.seq_base + WARMUP_OFFSET => self.warmed_up.store(true, Ordering::Release),
            None => {}
        }
    }

    fn note_error(&self, error: String) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(error);
        }
    }
}

/// The WatchInbox reader. It reopens the stream if the gateway ends it (e.g. RESOURCE_EXHAUSTED
/// when the reader falls behind), counting restarts; events sent meanwhile show up as never seen.
struct Watch {
    task: JoinHandle<()>,
}

impl Watch {
    /// Returns once the first stream is open.
    async fn start(
        mut client: InboxApiClient<Authed>,
        workspace: String,
        log: Arc<SendLog>,
        arrivals: Arc<Arrivals>,
    ) -> Result<Self> {
        let (opened_tx, opened_rx) = oneshot::channel::<std::result::Result<(), String>>();
        let task = tokio::spawn(async move {
            let mut opened = Some(opened_tx);
            loop {
                let request = WatchInboxRequest {
                    workspace_id: workspace.clone(),
                    conversation_id: String::new(),
                };
                match client.watch_inbox(request).await {
                    Ok(response) => {
                        if let Some(tx) = opened.take() {
                            let _ = tx.send(Ok(()));
                        }
                        let mut stream = response.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(event)) => arrivals.record(&log, event),
                                Ok(None) => {
                                    arrivals.note_error("the gateway ended the watch stream".into());
                                    break;
                                }
                                Err(status) => {
                                    arrivals.note_error(format!("watch stream: {status}"));
                                    break;
                                }
                            }
                        }
                    }
                    Err(status) => {
                        if let Some(tx) = opened.take() {
                            let _ = tx.send(Err(status.to_string()));
                            return;
                        }
                        arrivals.note_error(format!("WatchInbox: {status}"));
                    }
                }
                arrivals.restarts.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        match opened_rx.await {
            Ok(Ok(())) => Ok(Self { task }),
            Ok(Err(e)) => Err(BenchError::msg(format!("WatchInbox refused: {e}"))),
            Err(_) => Err(BenchError::msg("the watch task ended before the stream opened")),
        }
    }

    fn stop(self) {
        self.task.abort();
    }
}
