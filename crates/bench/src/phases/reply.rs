//! Agent replies at a fixed rate: gateway `InboxApi.SendMessage` (native gRPC, signed-in agent)
//! → inbox (send gate, idempotency) → token-vault (Graph egress with the Page token) → the Meta
//! simulator's Send API, which runs in this process behind a layer that stamps when each Send API
//! call arrives. Each reply carries its index in its text, so its arrival is matched to its RPC.
//!
//! Figures: reply → Graph call (RPC issued → the simulator has the call) and the RPC round trip,
//! against the baseline measured just before on the same stack: the simulator's own answer time
//! for the same Send API call made directly by the bench (Page token, `appsecret_proof`, same
//! rate). Both are open loop; the simulator's echo, delivery and read webhooks flow back through
//! webhook-ingest and inbox during both runs, as Meta's would.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::{self, Next},
    response::Response,
    serve::ListenerExt,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use ring::hmac;
use scifer_events::Bus;
use scifer_meta_sim::{
    AppSecret,
    demo::{DEMO_APP_ID, DEMO_PAGE_ID, DEMO_USER_ID},
    graph::{DEFAULT_VERSION, DEMO_USER_SCOPES, GraphSim, GraphSimConfig},
    webhooks::Encoding,
};
use scifer_plumbing::service_identity::fingerprint;
use scifer_proto::{
    gateway::v1::{
        ListConversationsRequest, SendMessageRequest, channel_api_client::ChannelApiClient,
        inbox_api_client::InboxApiClient,
    },
    inbox::v1::{self as inbox, DeliveryStatus, send_message_response},
};
use scifer_test_support::TestDb;
use tokio::{sync::oneshot, task::JoinHandle};

use super::{Ctx, account::Authed, account::Session, loopback_addr, start_service};
use crate::{
    bodies::{APP_SECRET, VERIFY_TOKEN},
    driver::{self, Target, histogram, micros},
    error::{BenchError, Result},
    report::{Latency, ReplyFigures},
    sys::{self, CpuMeter},
};

/// Where Meta sends the browser back after Facebook Login (must be allowed by token-vault).
const REDIRECT_URI: &str = "http://localhost:5173/channels/callback";
/// Text prefixes that tell the Graph layer which run a Send API call belongs to; the index
/// follows as [`INDEX_DIGITS`] digits.
const REPLY_MARK: &str = "sfb-reply-";
const DIRECT_MARK: &str = "sfb-direct-";
const WARM_MARK: &str = "sfb-warm-";
const INDEX_DIGITS: usize = 10;
/// Sequential calls on each path before the measured runs.
const DIRECT_WARMUP: usize = 20;
/// How long the conversations may take to show up after the customers wrote.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lets the previous run's echo/delivery/read webhooks (≈ 250 ms per chain) finish.
const SETTLE: Duration = Duration::from_secs(1);
/// What a customer writes first, so the conversation exists and Messenger's window is open.
const OPENING: &str = "Hi! Is my order #48213 ready? I need it before Saturday.";
/// The reply's text after its marker: the length of a short agent answer.
const REPLY_TEXT: &str = "Thanks for waiting! Your order left the warehouse this morning; \
    the tracking link will be active tonight and it should arrive on Friday.";

pub async fn run(ctx: &Ctx, bus: &Bus) -> Result<ReplyFigures> {
    let st = &ctx.settings;
    let total = (f64::from(st.reply_rate) * st.duration.as_secs_f64())
        .round()
        .max(1.0) as usize;
    let arrivals = Arc::new(Arrivals::new(total));

    // Meta: the simulator with the demo world, answering Graph calls in this process.
    let sim = GraphSim::with_demo_world(GraphSimConfig::new(
        DEMO_APP_ID.to_string(),
        AppSecret::new(APP_SECRET),
    ));
    let graph = GraphServer::start(sim.clone(), arrivals.clone()).await?;
    let stack = Stack::start(ctx, bus, &graph.url).await?;
    sim.set_webhook_target(stack.webhook_url.clone(), AppSecret::new(APP_SECRET))
        .map_err(|e| BenchError::msg(format!("simulator webhook target: {e}")))?;

    let session = Session::sign_up(&stack.gateway_url).await?;
    connect_demo_page(&session).await?;
    let webhooks = Target::new(&stack.webhook_url, 16)?;
    let customers: Vec<String> = (0..st.customers)
        .map(|i| (6_130_000_000_000_000_u64 + i as u64 * 7_919).to_string())
        .collect();
    for psid in &customers {
        let body = Bytes::from(
            sim.inbound_text(DEMO_PAGE_ID, psid, OPENING)
                .encode(Encoding::META),
        );
        let signature = ctx.factory.signature(&body);
        match webhooks.post(body, &signature).await? {
            StatusCode::OK => {}
            status => {
                return Err(BenchError::msg(format!(
                    "webhook-ingest answered {status} to a customer's message"
                )));
            }
        }
    }
    let mut api = InboxApiClient::new(session.authed()?);
    let conversations = wait_for_conversations(&mut api, &session.workspace, customers.len()).await?;

    // Warm both paths: one reply per conversation (token-vault's Page token, inbox's pools), a
    // few direct calls.
    for (i, conversation) in conversations.iter().enumerate() {
        let text = format!("{WARM_MARK}{i:0INDEX_DIGITS$} {REPLY_TEXT}");
        let (_, outcome) = reply(
            api.clone(),
            &session.workspace,
            conversation,
            format!("warm-{i}"),
            text,
        )
        .await;
        let why = match outcome {
            ReplyOutcome::Sent => continue,
            ReplyOutcome::NotSent(why) | ReplyOutcome::Refused(why) | ReplyOutcome::Error(why) => why,
        };
        return Err(BenchError::msg(format!(
            "a warm-up reply did not go out: {why}\n{}",
            stack.logs()
        )));
    }
    let direct = DirectSend::new(&sim, &graph.url).await?;
    for i in 0..DIRECT_WARMUP {
        let psid = &customers[i % customers.len()];
        let text = format!("{WARM_MARK}{i:0INDEX_DIGITS$} {REPLY_TEXT}");
        direct.send(psid, &text).await?;
    }
    tokio::time::sleep(SETTLE).await;

    // Baseline: the simulator's own answer time, same call, same rate, same stack around it.
    let direct = Arc::new(direct);
    let customers = Arc::new(customers);
    let direct_run = driver::paced(total, st.reply_rate, |i| {
        let (direct, customers) = (direct.clone(), customers.clone());
        async move {
            let text = format!("{DIRECT_MARK}{i:0INDEX_DIGITS$} {REPLY_TEXT}");
            let started = Instant::now();
            let result = direct.send(&customers[i % customers.len()], &text).await;
            (micros(started.elapsed()), result.err().map(|e| e.to_string()))
        }
    })
    .await;
    tokio::time::sleep(SETTLE).await;

    // The measured replies.
    let meters = [
        ("gateway", CpuMeter::process(stack.gateway.pid())),
        ("inbox", CpuMeter::process(stack.inbox.pid())),
        ("token-vault", CpuMeter::process(stack.vault.pid())),
        ("webhook-ingest", CpuMeter::process(stack.ingest.pid())),
        ("nats-server", CpuMeter::process(sys::child_pid("nats-server"))),
        ("bench+simulator", CpuMeter::process(Some(std::process::id()))),
    ];
    let conversations = Arc::new(conversations);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let workspace: Arc<str> = session.workspace.clone().into();
    let reply_run = driver::paced(total, st.reply_rate, |i| {
        let (api, conversations, arrivals) = (api.clone(), conversations.clone(), arrivals.clone());
        let (workspace, key) = (workspace.clone(), format!("bench-{tag}-{i}"));
        async move {
            let text = format!("{REPLY_MARK}{i:0INDEX_DIGITS$} {REPLY_TEXT}");
            arrivals.issued[i].store(arrivals.now(), Ordering::Release);
            reply(
                api,
                &workspace,
                &conversations[i % conversations.len()],
                key,
                text,
            )
            .await
        }
    })
    .await;
    let cpu_us_per_send = meters
        .iter()
        .map(|(name, meter)| (name.to_string(), meter.micros_per(total as u64)))
        .collect();

    let figures = tally(
        st.reply_rate,
        st.customers,
        total,
        &arrivals,
        &direct_run,
        &reply_run,
        &sim,
        cpu_us_per_send,
    )?;
    graph.stop().await;
    drop(stack);
    Ok(figures)
}

type DirectOutput = (u64, Option<String>);
type ReplyOutput = (u64, ReplyOutcome);

#[allow(clippy::too_many_arguments)]
fn tally(
    rate: u32,
    customers: usize,
    total: usize,
    arrivals: &Arrivals,
    direct_run: &driver::Paced<DirectOutput>,
    reply_run: &driver::Paced<ReplyOutput>,
    sim: &GraphSim,
    cpu_us_per_send: Vec<(String, Option<f64>)>,
) -> Result<ReplyFigures> {
    let mut direct = histogram()?;
    let mut direct_errors = (total - direct_run.outputs.len()) as u64;
    let mut direct_first_error = None;
    for (us, error) in &direct_run.outputs {
        match error {
            None => direct.saturating_record(*us),
            Some(e) => {
                direct_errors += 1;
                direct_first_error.get_or_insert_with(|| e.clone());
            }
        }
    }

    let mut rpc = histogram()?;
    let (mut sent, mut failed, mut refused) = (0u64, 0u64, 0u64);
    let mut rpc_errors = (total - reply_run.outputs.len()) as u64;
    let mut first_error = None;
    for (us, outcome) in &reply_run.outputs {
        rpc.saturating_record(*us);
        match outcome {
            ReplyOutcome::Sent => sent += 1,
            ReplyOutcome::NotSent(why) => {
                failed += 1;
                first_error.get_or_insert_with(|| why.clone());
            }
            ReplyOutcome::Refused(why) => {
                refused += 1;
                first_error.get_or_insert_with(|| why.clone());
            }
            ReplyOutcome::Error(e) => {
                rpc_errors += 1;
                first_error.get_or_insert_with(|| e.clone());
            }
        }
    }

    // Reply → Graph call, overall and in the first and last quarter of the schedule: a latency
    // that grows from one to the other means the stack falls behind the rate.
    let mut to_graph = histogram()?;
    let (mut first_quarter, mut last_quarter) = (histogram()?, histogram()?);
    let mut received = 0u64;
    for (index, (issued, arrived)) in arrivals.issued.iter().zip(&arrivals.reply).enumerate() {
        let (i, a) = (issued.load(Ordering::Acquire), arrived.load(Ordering::Acquire));
        if a != 0 {
            received += 1;
        }
        if i != 0 && a != 0 {
            let us = micros(Duration::from_nanos(a.saturating_sub(i)));
            to_graph.saturating_record(us);
            if index < total / 4 {
                first_quarter.saturating_record(us);
            } else if index >= total - total / 4 {
                last_quarter.saturating_record(us);
            }
        }
    }

    // What the simulator accepted, from its own record: each reply exactly once.
    let mut sim_sent = 0u64;
    let mut distinct = HashSet::new();
    for message in sim.sent_messages() {
        let text = message.body["message"]["text"].as_str().unwrap_or_default();
        if let Some(index) = index_after(text.as_bytes(), REPLY_MARK) {
            sim_sent += 1;
            distinct.insert(index);
        }
    }
    let sim_duplicates = sim_sent - distinct.len() as u64;

    Ok(ReplyFigures {
        rate,
        customers,
        sends: total as u64,
        secs: reply_run.elapsed.as_secs_f64(),
        max_schedule_lag_ms: reply_run.max_schedule_lag.as_secs_f64() * 1000.0,
        sent,
        failed,
        refused,
        rpc_errors,
        to_graph: Latency::from_micros(&to_graph),
        to_graph_p50_first_quarter_ms: Latency::from_micros(&first_quarter).p50_ms,
        to_graph_p50_last_quarter_ms: Latency::from_micros(&last_quarter).p50_ms,
        rpc: Latency::from_micros(&rpc),
        graph_received: received,
        sim_sent,
        duplicates: sim_duplicates + arrivals.duplicates.load(Ordering::Acquire),
        direct: Latency::from_micros(&direct),
        direct_errors,
        direct_max_schedule_lag_ms: direct_run.max_schedule_lag.as_secs_f64() * 1000.0,
        cpu_us_per_send,
        first_error: first_error.or(direct_first_error.map(|e| format!("direct call: {e}"))),
    })
}

/// What became of one SendMessage.
enum ReplyOutcome {
    /// Stored as SENT: Meta accepted it.
    Sent,
    /// Stored in another state (FAILED, still PENDING).
    NotSent(String),
    /// The send gate refused it.
    Refused(String),
    /// The RPC failed.
    Error(String),
}

/// One SendMessage through the gateway; returns its round trip in µs and what became of it.
async fn reply(
    mut api: InboxApiClient<Authed>,
    workspace: &str,
    conversation: &str,
    key: String,
    text: String,
) -> (u64, ReplyOutcome) {
    let request = SendMessageRequest {
        workspace_id: workspace.to_string(),
        message: Some(inbox::SendMessageRequest {
            conversation_id: conversation.to_string(),
            idempotency_key: key,
            text,
            ..Default::default()
        }),
    };
    let started = Instant::now();
    let result = api.send_message(request).await;
    let us = micros(started.elapsed());
    let outcome = match result.map(|r| r.into_inner().result) {
        Ok(Some(send_message_response::Result::Message(m))) if m.status == DeliveryStatus::Sent as i32 => {
            ReplyOutcome::Sent
        }
        Ok(Some(send_message_response::Result::Message(m))) => ReplyOutcome::NotSent(format!(
            "message stored as {:?}: {} {}",
            DeliveryStatus::try_from(m.status).unwrap_or(DeliveryStatus::Unspecified),
            m.error_code,
            m.error_message
        )),
        Ok(Some(send_message_response::Result::Refusal(r))) => {
            ReplyOutcome::Refused(format!("refused: {r:?}"))
        }
        Ok(None) => ReplyOutcome::Error("empty SendMessageResponse".into()),
        Err(status) => ReplyOutcome::Error(format!("SendMessage: {status}")),
    };
    (us, outcome)
}

/// When each reply was issued and when its Send API call reached the simulator: nanoseconds since
/// `base`, plus one (zero = not yet).
struct Arrivals {
    base: Instant,
    issued: Vec<AtomicU64>,
    reply: Vec<AtomicU64>,
    /// Send API calls for a reply that had already arrived.
    duplicates: AtomicU64,
}

impl Arrivals {
    fn new(count: usize) -> Self {
        Self {
            base: Instant::now(),
            issued: (0..count).map(|_| AtomicU64::new(0)).collect(),
            reply: (0..count).map(|_| AtomicU64::new(0)).collect(),
            duplicates: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// A Send API call's body has arrived: stamp the reply it carries, if any.
    fn record(&self, body: &[u8]) {
        let now = self.now();
        let Some(cell) = index_after(body, REPLY_MARK).and_then(|i| self.reply.get(i)) else {
            return;
        };
        if cell
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.duplicates.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The index written after `mark` in `haystack`.
fn index_after(haystack: &[u8], mark: &str) -> Option<usize> {
    let mark = mark.as_bytes();
    let at = haystack.windows(mark.len()).position(|w| w == mark)? + mark.len();
    let digits = haystack.get(at..at + INDEX_DIGITS)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The simulator's Graph API on a loopback port, with the arrival stamp in front of it.
struct GraphServer {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GraphServer {
    async fn start(sim: GraphSim, arrivals: Arc<Arrivals>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        // As a production HTTP server would: no Nagle delay on small answers.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let routes = sim
            .router()
            .layer(middleware::from_fn_with_state(arrivals, stamp_send_calls));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, routes)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            url,
            stop: Some(stop),
            task,
        })
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Connections the services keep open would hold a graceful shutdown; they die with them.
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Stamps a Send API call (`POST …/messages`) as soon as its body is in, before the simulator
/// handles it.
async fn stamp_send_calls(State(arrivals): State<Arc<Arrivals>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.uri().path().ends_with("/messages") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .body(Body::empty())
                .unwrap_or_default();
        }
    };
    arrivals.record(&bytes);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The bench as a Graph client of its own: the Send API call token-vault makes, with a Page token
/// the bench got from the simulator like any app (user token → `/me/accounts`).
struct DirectSend {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    authorization: String,
}

impl DirectSend {
    async fn new(sim: &GraphSim, graph_url: &str) -> Result<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(http);
        let user_token = sim.issue_user_token(DEMO_USER_ID, DEMO_USER_SCOPES, true);
        let accounts_url = format!(
            "{graph_url}/{DEFAULT_VERSION}/me/accounts?fields=id,access_token&appsecret_proof={}",
            appsecret_proof(&user_token)
        );
        let request = axum::http::Request::get(accounts_url)
            .header(header::AUTHORIZATION, format!("Bearer {user_token}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| BenchError::msg(format!("cannot build request: {e}")))?;
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let accounts: serde_json::Value = serde_json::from_slice(&body)?;
        let page_token = accounts["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|page| page["id"] == DEMO_PAGE_ID)
            .and_then(|page| page["access_token"].as_str())
            .ok_or_else(|| {
                BenchError::msg(format!(
                    "no Page token for the demo Page in /me/accounts ({status})"
                ))
            })?
            .to_string();
        Ok(Self {
            client,
            url: format!(
                "{graph_url}/{DEFAULT_VERSION}/me/messages?appsecret_proof={}",
                appsecret_proof(&page_token)
            ),
            authorization: format!("Bearer {page_token}"),
        })
    }

    /// One Messenger text reply, as token-vault sends it; Ok only for Meta's 200.
    async fn send(&self, psid: &str, text: &str) -> Result<()> {
        let body = serde_json::json!({
            "recipient": { "id": psid },
            "messaging_type": "RESPONSE",
            "message": { "text": text },
        });
        let request = axum::http::Request::post(self.url.as_str())
            .header(header::AUTHORIZATION, self.authorization.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))
            .map_err(|e| BenchError::msg(format!("cannot build request: {e}")))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(BenchError::msg(format!(
                "the simulator answered {status}: {}",
                String::from_utf8_lossy(&answer)
            )))
        }
    }
}

/// `appsecret_proof`: HMAC-SHA256 of the token under the app secret, hex.
fn appsecret_proof(token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes());
    hex::encode(hmac::sign(&key, token.as_bytes()).as_ref())
}

/// What a workspace admin does in the frontend: Facebook Login, then connect the demo Page.
async fn connect_demo_page(session: &Session) -> Result<()> {
    let mut api = ChannelApiClient::new(session.authed()?);
    scifer_devstack::connect::connect_demo_channels(&mut api, &session.workspace, None)
        .await
        .map_err(|e| BenchError::msg(format!("connecting the demo Page: {e}")))?;
    Ok(())
}

/// The ids of the workspace's conversations, once there are `count`.
async fn wait_for_conversations(
    api: &mut InboxApiClient<Authed>,
    workspace: &str,
    count: usize,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let mut ids = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = api
                .list_conversations(ListConversationsRequest {
                    workspace_id: workspace.to_string(),
                    query: Some(inbox::ListConversationsRequest {
                        page_size: 200,
                        page_token: page_token.clone(),
                        ..Default::default()
                    }),
                })
                .await
                .map_err(|s| BenchError::msg(format!("ListConversations: {s}")))?
                .into_inner();
            ids.extend(page.conversations.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        if ids.len() >= count {
            return Ok(ids);
        }
        if Instant::now() > deadline {
            return Err(BenchError::msg(format!(
                "{} of {count} conversations after {SETUP_TIMEOUT:?}",
                ids.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// webhook-ingest, inbox, token-vault and gateway, each on its own SQLite store where it has one.
struct Stack {
    webhook_url: String,
    gateway_url: String,
    ingest: scifer_test_support::ServiceProcess,
    inbox: scifer_test_support::ServiceProcess,
    vault: scifer_test_support::ServiceProcess,
    gateway: scifer_test_support::ServiceProcess,
    _dbs: [TestDb; 3],
}

impl Stack {
    async fn start(ctx: &Ctx, bus: &Bus, graph_url: &str) -> Result<Self> {
        let common = |extra: Vec<(&'static str, String)>| {
            let mut env = vec![
                ("NATS_URL", ctx.nats_url.clone()),
                ("BUS_PREFIX", bus.prefix().to_string()),
                ("RUST_LOG", "warn".to_string()),
            ];
            env.extend(extra);
            env
        };
        let (inbox_db, vault_db, gateway_db) = (TestDb::sqlite(), TestDb::sqlite(), TestDb::sqlite());
        let gateway_credential = format!("gateway-{}", uuid::Uuid::new_v4().simple());
        let inbox_credential = format!("inbox-{}", uuid::Uuid::new_v4().simple());
        let (vault_addr, inbox_addr, listen, gateway_addr) =
            (loopback_addr(), loopback_addr(), loopback_addr(), loopback_addr());

        let inbox = start_service(
            "inbox",
            common(vec![
                ("GRPC_ADDR", inbox_addr.clone()),
                ("DATABASE_URL", inbox_db.url().to_string()),
                ("TOKEN_VAULT_URL", format!("http://{vault_addr}")),
                ("TOKEN_VAULT_CREDENTIAL", inbox_credential.clone()),
            ]),
            format!("http://{inbox_addr}/readyz"),
        )
        .await?;
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
        let vault = start_service(
            "token-vault",
            common(vec![
                ("GRPC_ADDR", vault_addr.clone()),
                ("DATABASE_URL", vault_db.url().to_string()),
                ("VAULT_KEKS", format!("1:{}", kek())),
                (
                    "SERVICE_CREDENTIALS",
                    format!(
                        "gateway:{},inbox:{}",
                        fingerprint(&gateway_credential),
                        fingerprint(&inbox_credential)
                    ),
                ),
                ("META_GRAPH_URL", graph_url.to_string()),
                ("META_DIALOG_URL", graph_url.to_string()),
                ("META_APP_ID", DEMO_APP_ID.to_string()),
                ("META_APP_SECRET", APP_SECRET.to_string()),
                ("CONNECT_REDIRECT_URIS", REDIRECT_URI.to_string()),
            ]),
            format!("http://{vault_addr}/readyz"),
        )
        .await?;
        let gateway = start_service(
            "gateway",
            common(vec![
                ("LISTEN_ADDR", gateway_addr.clone()),
                ("INBOX_URL", format!("http://{inbox_addr}")),
                ("DATABASE_URL", gateway_db.url().to_string()),
                ("TOKEN_VAULT_URL", format!("http://{vault_addr}")),
                ("TOKEN_VAULT_CREDENTIAL", gateway_credential),
                ("META_OAUTH_REDIRECT_URI", REDIRECT_URI.to_string()),
            ]),
            format!("http://{gateway_addr}/readyz"),
        )
        .await?;
        Ok(Self {
            webhook_url: format!("http://{listen}/webhooks/meta"),
            gateway_url: format!("http://{gateway_addr}"),
            ingest,
            inbox,
            vault,
            gateway,
            _dbs: [inbox_db, vault_db, gateway_db],
        })
    }

    /// The end of each service's log, for failure messages.
    fn logs(&self) -> String {
        [
            ("webhook-ingest", &self.ingest),
            ("inbox", &self.inbox),
            ("token-vault", &self.vault),
            ("gateway", &self.gateway),
        ]
        .iter()
        .map(|(name, p)| format!("--- {name} ---\n{}", super::tail(&p.log_text(), 1500)))
        .collect::<Vec<_>>()
        .join("\n")
    }
}

/// A fresh 32-byte key-encryption key for the vault, base64.
fn kek() -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_read_after_its_mark() {
        let body = br#"{"message":{"text":"sfb-reply-0000000042 Thanks"}}"#;
        assert_eq!(index_after(body, REPLY_MARK), Some(42));
        assert_eq!(index_after(body, DIRECT_MARK), None);
        assert_eq!(index_after(b"sfb-reply-12", REPLY_MARK), None);
    }

    #[test]
    fn a_second_call_for_the_same_reply_is_a_duplicate() {
        let arrivals = Arrivals::new(3);
        arrivals.record(b"sfb-reply-0000000001");
        arrivals.record(b"sfb-reply-0000000001");
        arrivals.record(b"sfb-direct-0000000001");
        assert_ne!(arrivals.reply[1].load(Ordering::Acquire), 0);
        assert_eq!(arrivals.reply[0].load(Ordering::Acquire), 0);
        assert_eq!(arrivals.duplicates.load(Ordering::Acquire), 1);
    }
}
