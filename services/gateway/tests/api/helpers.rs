//! `spawn_app()`: a gateway on port 0 with its own nats-server, bus prefix, database, adjustable
//! clock and test doubles of inbox and token-vault, plus typed clients: gRPC-web (what browsers
//! speak), native gRPC and plain HTTP, each with or without a session token.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use gateway::{ActiveWatches, Application, Clock, Config, StartupError};
use scifer_events::{Bus, Publisher, async_nats};
use scifer_plumbing::CancellationToken;
use scifer_plumbing::service_identity::{ServiceAuthenticator, fingerprint};
use scifer_proto::{
    events::v1::{ChannelEvent, ChannelKind, ChannelState, InboxEvent},
    gateway::v1::{
        AddMemberRequest, CreateWorkspaceRequest, LoginRequest, Role, SignUpRequest,
        account_api_client::AccountApiClient, audit_api_client::AuditApiClient,
        channel_api_client::ChannelApiClient, inbox_api_client::InboxApiClient,
        workspace_api_client::WorkspaceApiClient,
    },
    inbox::v1::{
        AddNoteRequest, AgentAvailability, AssignmentSettings, CannedResponse, CheckSendRequest, Contact,
        ContactProfile, Conversation, CreateCannedResponseRequest, DeleteCannedResponseRequest,
        DeleteCannedResponseResponse, DeliveryStatus, GetAssignmentSettingsRequest, GetContactRequest,
        GetConversationRequest, GetConversationResponse, ListCannedResponsesRequest,
        ListCannedResponsesResponse, ListConversationsRequest, ListConversationsResponse, MarkReadRequest,
        MarkReadResponse, MergeContactsRequest, Message, MessageDirection, RenderCannedResponseRequest,
        RenderCannedResponseResponse, RetryMessageRequest, SearchHit, SearchMessagesRequest,
        SearchMessagesResponse, SendCheck, SendMessageRequest, SendMessageResponse, SendRefusal,
        SetAgentAvailabilityRequest, SuggestReplyRequest, SuggestReplyResponse,
        UpdateAssignmentSettingsRequest, UpdateCannedResponseRequest, UpdateContactRequest,
        UpdateConversationRequest, UpdateLabelsRequest,
        inbox_service_server::{InboxService, InboxServiceServer},
        send_message_response,
    },
    tokenvault::v1::{
        self as vault,
        token_vault_service_server::{TokenVaultService, TokenVaultServiceServer},
    },
};
use scifer_test_support::{GrpcWebChannel, NatsServer, TestDb, free_port, grpc_web_channel, unique_prefix};
use tokio::task::JoinHandle;
use tokio_util::sync::DropGuard;
use tonic::{
    Request, Response, Status,
    metadata::{MetadataMap, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// The browser origin the test gateway allows.
pub const ALLOWED_ORIGIN: &str = "http://app.scifer.test";
/// How long the test gateway waits for inbox: short enough for the timeout test, long enough for a
/// loaded 2-core machine.
pub const INBOX_TIMEOUT_MS: u64 = 1_500;
/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The gateway's service credential for token-vault in tests; the vault double accepts only it.
pub const VAULT_CREDENTIAL: &str = "test-gateway-credential-for-token-vault";
/// The test gateway's `META_OAUTH_REDIRECT_URI`.
pub const REDIRECT_URI: &str = "http://app.scifer.test/channels/callback";
/// The test gateway's `PUBLIC_APP_URL`.
pub const APP_URL: &str = "http://app.scifer.test";

/// What the gateway's inbox should be in a test.
pub enum InboxMode {
    /// The test double below.
    Double,
    /// Nothing listens at INBOX_URL.
    Down,
}

/// A password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: SocketAddr,
    /// The clock session expiry and login limits read; tests move it forward.
    pub clock: Clock,
    pub bus: Bus,
    /// A NATS connection of the test's own, for publishing.
    pub nats: async_nats::Client,
    pub inbox: InboxDouble,
    pub vault: VaultDouble,
    pub active_watches: ActiveWatches,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<Result<(), StartupError>>,
    /// The gateway's database, for tests that read or tamper with it directly.
    pub db_url: String,
    _inbox_server: Option<DropGuard>,
    _vault_server: DropGuard,
    _nats_server: NatsServer,
    _db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(InboxMode::Double).await
}

pub async fn spawn_app_with(mode: InboxMode) -> TestApp {
    spawn_app_configured(mode, &[]).await
}

/// A gateway with extra settings (they override the defaults below).
pub async fn spawn_app_configured(mode: InboxMode, extra: &[(&str, &str)]) -> TestApp {
    scifer_plumbing::install_crypto_provider();
    init_tracing();
    let nats_server = NatsServer::start().await;
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let inbox = InboxDouble::default();
    let (inbox_url, inbox_server) = match mode {
        InboxMode::Double => {
            let (addr, stop) = inbox.serve().await;
            (format!("http://{addr}"), Some(stop))
        }
        // A port that was free a moment ago: connecting is refused.
        InboxMode::Down => (format!("http://127.0.0.1:{}", free_port()), None),
    };
    // Tests of a vault that is down or misconfigured override these through `extra`.
    let vault = VaultDouble::default();
    let (vault_addr, vault_server) = serve(TokenVaultServiceServer::new(vault.clone())).await;
    let vars = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
        ("NATS_URL", nats_server.url()),
        ("BUS_PREFIX", prefix.clone()),
        ("INBOX_URL", inbox_url),
        ("INBOX_TIMEOUT_MS", INBOX_TIMEOUT_MS.to_string()),
        (
            "CORS_ALLOWED_ORIGINS",
            format!("{ALLOWED_ORIGIN},http://other.scifer.test"),
        ),
        // Long, so that a prompt stop can only come from the streams ending, not from the grace
        // period running out.
        ("SHUTDOWN_GRACE_SECS", "60".to_string()),
        ("DATABASE_URL", db.url().to_string()),
        // The smallest re-check period, so that revocation tests end open watches quickly.
        ("WATCH_RECHECK_SECS", "1".to_string()),
        ("TOKEN_VAULT_URL", format!("http://{vault_addr}")),
        ("TOKEN_VAULT_CREDENTIAL", VAULT_CREDENTIAL.to_string()),
        ("META_OAUTH_REDIRECT_URI", REDIRECT_URI.to_string()),
        ("PUBLIC_APP_URL", APP_URL.to_string()),
    ];
    let vars = vars
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config: Config = scifer_plumbing::config::load_from(None, vars).expect("test config");
    let clock = Clock::adjustable();
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("build the gateway");
    let addr = app.local_addr().expect("gateway address");
    let active_watches = app.active_watches();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let nats = scifer_events::connect(&nats_server.url())
        .await
        .expect("test NATS client");
    let test_app = TestApp {
        addr,
        clock,
        bus: Bus::new(&prefix).expect("bus prefix"),
        nats,
        inbox,
        vault,
        active_watches,
        shutdown,
        server,
        db_url: db.url().to_string(),
        _inbox_server: inbox_server,
        _vault_server: vault_server,
        _nats_server: nats_server,
        _db: db,
    };
    test_app.wait_ready().await;
    test_app
}

impl TestApp {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// InboxApi over gRPC-web, with `token` (if any) as the bearer.
    pub fn inbox_client(&self, token: Option<&str>) -> InboxApiClient<Authed> {
        InboxApiClient::with_origin(self.authed(token), self.origin())
    }

    pub fn accounts(&self, token: Option<&str>) -> AccountApiClient<Authed> {
        AccountApiClient::with_origin(self.authed(token), self.origin())
    }

    pub fn workspaces(&self, token: Option<&str>) -> WorkspaceApiClient<Authed> {
        WorkspaceApiClient::with_origin(self.authed(token), self.origin())
    }

    pub fn audit(&self, token: Option<&str>) -> AuditApiClient<Authed> {
        AuditApiClient::with_origin(self.authed(token), self.origin())
    }

    pub fn channels(&self, token: Option<&str>) -> ChannelApiClient<Authed> {
        ChannelApiClient::with_origin(self.authed(token), self.origin())
    }

    /// A gRPC-web transport that sends `token` as the bearer on every call.
    pub fn authed(&self, token: Option<&str>) -> Authed {
        InterceptedService::new(grpc_web_channel(), Bearer::new(token))
    }

    pub fn origin(&self) -> http::Uri {
        self.url().parse().expect("gateway uri")
    }

    /// Signs up a new account (a unique email derived from `name`) and returns it with its
    /// first session.
    pub async fn sign_up(&self, name: &str) -> User {
        let email = format!(
            "{name}-{}@example.test",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let response = self
            .accounts(None)
            .sign_up(SignUpRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                name: name.into(),
            })
            .await
            .expect("sign up")
            .into_inner();
        User {
            user_id: response.account.expect("account").user_id,
            email,
            token: response.session_token,
        }
    }

    /// A new session for `user`.
    pub async fn login(&self, user: &User) -> String {
        self.accounts(None)
            .login(LoginRequest {
                email: user.email.clone(),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .session_token
    }

    pub async fn create_workspace(&self, owner: &User, name: &str) -> String {
        self.workspaces(Some(&owner.token))
            .create_workspace(CreateWorkspaceRequest { name: name.into() })
            .await
            .expect("create workspace")
            .into_inner()
            .workspace_id
    }

    /// A new account that owns a new workspace.
    pub async fn owner_with_workspace(&self) -> (User, String) {
        let owner = self.sign_up("owner").await;
        let workspace = self.create_workspace(&owner, "Acme").await;
        (owner, workspace)
    }

    /// Adds `user` to `workspace` with `role`, acting as `by`.
    pub async fn add_member(&self, by: &User, workspace: &str, user: &User, role: Role) {
        self.workspaces(Some(&by.token))
            .add_member(AddMemberRequest {
                workspace_id: workspace.into(),
                email: user.email.clone(),
                role: role as i32,
                can_approve_posts: false,
            })
            .await
            .expect("add member");
    }

    /// The same port over native gRPC (HTTP/2 without TLS).
    pub async fn native_channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect over native gRPC")
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.url());
        scifer_test_support::wait_until(PATIENCE, || {
            let url = url.clone();
            async move {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
            }
        })
        .await
        .expect("the gateway did not become ready");
    }

    /// Publishes an inbox event for `workspace` through JetStream, as inbox does.
    pub async fn publish_inbox_event(&self, workspace: &str, event_id: &str) {
        let event = InboxEvent {
            event_id: event_id.into(),
            workspace_id: workspace.into(),
            ..Default::default()
        };
        self.publish_full_inbox_event(event).await;
    }

    /// Publishes `event` as inbox does, under its workspace's subject.
    pub async fn publish_full_inbox_event(&self, event: InboxEvent) {
        let (workspace, event_id) = (event.workspace_id.clone(), event.event_id.clone());
        let js = async_nats::jetstream::new(self.nats.clone());
        self.bus
            .ensure_default_stream(&js, scifer_events::StreamKind::Inbox)
            .await
            .expect("inbox stream");
        Publisher::new(js)
            .publish(
                self.bus.inbox_event(&workspace, "message_created"),
                &event_id,
                &event,
            )
            .await
            .expect("publish inbox event");
    }
}

impl TestApp {
    /// Publishes a channel event with `msg_id` as token-vault does, and returns its stream
    /// sequence. A `msg_id` not used before stores the event again even when its event_id was
    /// published already, as a replay or a republishing vault would.
    pub async fn publish_channel_event(&self, event: &ChannelEvent, msg_id: &str) -> u64 {
        let js = async_nats::jetstream::new(self.nats.clone());
        self.bus
            .ensure_default_stream(&js, scifer_events::StreamKind::Channels)
            .await
            .expect("channels stream");
        let ack = Publisher::new(js)
            .send(self.bus.channel_event(event.state()), msg_id, event)
            .await
            .expect("publish channel event")
            .await
            .expect("channel event stored");
        assert!(
            !ack.duplicate,
            "{msg_id} was dropped as a duplicate by the stream"
        );
        ack.sequence
    }

    /// The gateway's channel alerts consumer, once it exists. It starts at new events, so tests
    /// wait for it before publishing.
    pub async fn channel_alerts_consumer(&self) -> async_nats::jetstream::consumer::Info {
        let js = async_nats::jetstream::new(self.nats.clone());
        let stream = self.bus.stream_name(scifer_events::StreamKind::Channels);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(stream) = js.get_stream(&stream).await
                && let Ok(info) = stream.consumer_info(gateway::CHANNEL_ALERTS_CONSUMER).await
            {
                return info;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the channel alerts consumer was not created"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the channel alerts consumer has acknowledged every event up to stream sequence
    /// `sequence`: whatever the gateway does for them is done.
    pub async fn channel_alerts_acked_through(&self, sequence: u64) {
        let acked = scifer_test_support::wait_until(PATIENCE, || async {
            self.channel_alerts_consumer().await.ack_floor.stream_sequence >= sequence
        })
        .await;
        acked.unwrap_or_else(|e| panic!("channel event {sequence} not acknowledged: {e}"));
    }
}

/// A needs-reauth event for `channel_id` of `workspace`, as token-vault publishes it.
pub fn needs_reauth(workspace: &str, channel_id: &str, event_id: &str, reason: &str) -> ChannelEvent {
    ChannelEvent {
        event_id: event_id.into(),
        workspace_id: workspace.into(),
        channel_id: channel_id.into(),
        kind: ChannelKind::Instagram as i32,
        account_id: "17841400000000001".into(),
        display_name: "Acme Shop".into(),
        state: ChannelState::NeedsReauth as i32,
        version: 2,
        at: None,
        state_reason: reason.into(),
        parent_account_id: "100000000000001".into(),
    }
}

pub struct User {
    pub user_id: String,
    pub email: String,
    /// The session opened at sign-up.
    pub token: String,
}

/// The gRPC-web transport with a bearer token on every call.
pub type Authed = InterceptedService<GrpcWebChannel, Bearer>;

/// Adds `authorization: Bearer <token>` to every call (none without a token).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| format!("Bearer {t}").parse().expect("token as metadata")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Installs, once per test binary, what production's telemetry installs for propagation: the W3C
/// propagator and an OpenTelemetry layer, so the gateway really has a trace context to pass on.
/// Log lines go to the test writer (shown for failing tests), filtered by `RUST_LOG` (default
/// warn); the filter applies to logs only, so spans exist whatever `RUST_LOG` says.
fn init_tracing() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("gateway-tests");
        opentelemetry::global::set_tracer_provider(provider);
        let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(logs),
            )
            .try_init();
    });
}

/// A stand-in for the inbox service: records every call and answers canned data, chosen by id:
///
/// - reads: conversation `c1` exists; `hang` never answers; anything else is NOT_FOUND;
/// - SendMessage, by conversation: `c1` is sent (SENT, id [`SENT_ID`], the request's text and
///   author); `failing` fails at Meta (FAILED, [`FAILED_ID`], [`FAILURE_REASON`]); `closed` is
///   refused by the gate ([`window_closed`]); `archived` is FAILED_PRECONDITION; an empty id is
///   INVALID_ARGUMENT; `slow` answers as `c1` after [`SLOW`]; `hang` never answers; anything else
///   is NOT_FOUND;
/// - RetryMessage, by message: [`FAILED_ID`] is sent this time; `closed` is refused by the gate;
///   anything else is NOT_FOUND;
/// - CheckSend, by conversation: `c1` and `slow` (after [`SLOW`]) allow free text; `closed`
///   does not ([`window_closed`]); anything else is NOT_FOUND;
/// - UpdateConversation: `c1` answers as updated (assignee and team as asked, the status when one
///   is asked); anything else is NOT_FOUND. Assignment settings and availability echo the request;
/// - UpdateLabels and AddNote: `c1` answers with the labels added or the note; else NOT_FOUND;
/// - canned responses: one is listed (`hours`); create and update echo; deleting or rendering
///   `missing` is NOT_FOUND; rendering answers `Hi, <agent_name> here.`;
/// - MarkRead: `c1` has 0 unread left; SearchMessages finds `c1` with the query as the text;
/// - contacts: `k1` exists (GetContact, UpdateContact answering with the name asked for,
///   MergeContacts linking the other id); anything else is NOT_FOUND;
/// - SuggestReply, by conversation: `c1` gets a draft; `disabled` is FAILED_PRECONDITION (no
///   provider); `down` is UNAVAILABLE (the provider); anything else is NOT_FOUND.
#[derive(Clone, Default)]
pub struct InboxDouble {
    seen: Arc<Mutex<Vec<InboxCall>>>,
}

/// What reached the inbox double: the request message, and the metadata it came with.
#[derive(Debug, Clone)]
pub struct InboxCall {
    pub request: InboxRequest,
    pub metadata: MetadataMap,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InboxRequest {
    ListConversations(ListConversationsRequest),
    GetConversation(GetConversationRequest),
    SendMessage(SendMessageRequest),
    CheckSend(CheckSendRequest),
    RetryMessage(RetryMessageRequest),
    UpdateConversation(UpdateConversationRequest),
    GetAssignmentSettings(GetAssignmentSettingsRequest),
    UpdateAssignmentSettings(UpdateAssignmentSettingsRequest),
    SetAgentAvailability(SetAgentAvailabilityRequest),
    UpdateLabels(UpdateLabelsRequest),
    AddNote(AddNoteRequest),
    ListCannedResponses(ListCannedResponsesRequest),
    CreateCannedResponse(CreateCannedResponseRequest),
    UpdateCannedResponse(UpdateCannedResponseRequest),
    DeleteCannedResponse(DeleteCannedResponseRequest),
    RenderCannedResponse(RenderCannedResponseRequest),
    MarkRead(MarkReadRequest),
    SearchMessages(SearchMessagesRequest),
    // Issue 5: WhatsApp template sync, inbox analytics.
    ListTemplates(scifer_proto::inbox::v1::ListTemplatesRequest),
    GetInboxAnalytics(scifer_proto::inbox::v1::GetInboxAnalyticsRequest),
    GetContact(GetContactRequest),
    UpdateContact(UpdateContactRequest),
    MergeContacts(MergeContactsRequest),
    SuggestReply(SuggestReplyRequest),
    // Automation and handoff (issue 5).
    ListRules,
    CreateRule(scifer_proto::inbox::v1::CreateRuleRequest),
    UpdateRule(scifer_proto::inbox::v1::UpdateRuleRequest),
    DeleteRule(scifer_proto::inbox::v1::DeleteRuleRequest),
    GetAutomationSettings,
    UpdateAutomationSettings(scifer_proto::inbox::v1::UpdateAutomationSettingsRequest),
    HandOff(scifer_proto::inbox::v1::HandOffRequest),
    HandBack(scifer_proto::inbox::v1::HandBackRequest),
    // History, gaps and media.
    GetChannelSync(scifer_proto::inbox::v1::GetChannelSyncRequest),
    GetMedia(scifer_proto::inbox::v1::GetMediaRequest),
}

/// History, gaps and media: the bytes the double serves for message `m1`'s first attachment.
pub const MEDIA_BYTES: &[u8] = b"\x89PNG the double's picture";

/// The id of the message the double sends.
pub const SENT_ID: &str = "m-sent";
/// The id of the message that fails at Meta (and is sent when retried).
pub const FAILED_ID: &str = "m-failed";
/// Inbox's reason for [`FAILED_ID`].
pub const FAILURE_REASON: &str = "recipient_unavailable";
/// How long the double's `slow` conversation takes: longer than [`INBOX_TIMEOUT_MS`].
pub const SLOW: Duration = Duration::from_millis(INBOX_TIMEOUT_MS + 500);

/// The gate's refusal the double answers for conversation (and message) `closed`.
pub fn window_closed() -> SendRefusal {
    SendRefusal {
        reason: "window_closed".into(),
        explanation: "The customer last wrote more than 24 hours ago.".into(),
        last_customer_message_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        human_agent_until: Some(prost_types::Timestamp {
            seconds: 1_700_604_800,
            nanos: 0,
        }),
        template_required: false,
    }
}

fn refused() -> SendMessageResponse {
    SendMessageResponse {
        result: Some(send_message_response::Result::Refusal(window_closed())),
        replayed: false,
    }
}

fn sent(message: Message) -> SendMessageResponse {
    SendMessageResponse {
        result: Some(send_message_response::Result::Message(message)),
        replayed: false,
    }
}

impl InboxDouble {
    /// The metadata of every call so far.
    pub fn seen(&self) -> Vec<MetadataMap> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.metadata.clone())
            .collect()
    }

    /// Every call so far.
    pub fn requests(&self) -> Vec<InboxCall> {
        self.seen.lock().unwrap().clone()
    }

    /// How many calls reached the double.
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Serves the double on a port of its own until the returned guard is dropped.
    async fn serve(&self) -> (SocketAddr, DropGuard) {
        serve(InboxServiceServer::new(self.clone())).await
    }

    fn record<T>(&self, request: &Request<T>, what: InboxRequest) {
        self.seen.lock().unwrap().push(InboxCall {
            request: what,
            metadata: request.metadata().clone(),
        });
    }
}

/// Serves one gRPC service on a port of its own until the returned guard is dropped.
async fn serve<S>(service: S) -> (SocketAddr, DropGuard)
where
    S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::service::Routes::new(service).prepare().into_axum_router();
    let stop = CancellationToken::new();
    tokio::spawn(scifer_plumbing::serve::serve(
        listener,
        router,
        stop.clone(),
        Duration::from_secs(1),
    ));
    (addr, stop.drop_guard())
}

pub fn conversation(id: &str) -> Conversation {
    Conversation {
        id: id.into(),
        channel_id: "ch1".into(),
        last_message_preview: "hello".into(),
        message_count: 2,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl InboxService for InboxDouble {
    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        self.record(
            &request,
            InboxRequest::ListConversations(request.get_ref().clone()),
        );
        Ok(Response::new(ListConversationsResponse {
            conversations: vec![conversation("c1"), conversation("c2")],
            next_page_token: format!("after-{}", request.get_ref().page_size),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        self.record(&request, InboxRequest::GetConversation(request.get_ref().clone()));
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(GetConversationResponse {
                conversation: Some(conversation("c1")),
                messages: vec![Message {
                    id: "m1".into(),
                    conversation_id: "c1".into(),
                    text: "hello".into(),
                    ..Default::default()
                }],
                next_page_token: String::new(),
            })),
            "hang" => std::future::pending().await,
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        self.record(&request, InboxRequest::SendMessage(request.get_ref().clone()));
        let message = request.into_inner();
        let stored = |id: &str, status: DeliveryStatus| Message {
            id: id.into(),
            conversation_id: message.conversation_id.clone(),
            direction: MessageDirection::Outbound as i32,
            text: message.text.clone(),
            status: status as i32,
            author: message.author.clone(),
            ..Default::default()
        };
        match message.conversation_id.as_str() {
            "c1" => Ok(Response::new(sent(stored(SENT_ID, DeliveryStatus::Sent)))),
            "slow" => {
                tokio::time::sleep(SLOW).await;
                Ok(Response::new(sent(stored(SENT_ID, DeliveryStatus::Sent))))
            }
            "failing" => Ok(Response::new(sent(Message {
                error_code: 551,
                error_message: "This person isn't available right now.".into(),
                failure_reason: FAILURE_REASON.into(),
                retryable: true,
                ..stored(FAILED_ID, DeliveryStatus::Failed)
            }))),
            "closed" => Ok(Response::new(refused())),
            "archived" => Err(Status::failed_precondition(
                "the conversation's channel is disconnected",
            )),
            "" => Err(Status::invalid_argument("conversation_id is required")),
            "hang" => std::future::pending().await,
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    async fn check_send(&self, request: Request<CheckSendRequest>) -> Result<Response<SendCheck>, Status> {
        self.record(&request, InboxRequest::CheckSend(request.get_ref().clone()));
        let allowed = SendCheck {
            allowed: true,
            until: Some(prost_types::Timestamp {
                seconds: 1_700_086_400,
                nanos: 0,
            }),
            messaging_type: "RESPONSE".into(),
            refusal: None,
        };
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(allowed)),
            "slow" => {
                tokio::time::sleep(SLOW).await;
                Ok(Response::new(allowed))
            }
            "closed" => Ok(Response::new(SendCheck {
                allowed: false,
                until: None,
                messaging_type: String::new(),
                refusal: Some(window_closed()),
            })),
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    async fn retry_message(
        &self,
        request: Request<RetryMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        self.record(&request, InboxRequest::RetryMessage(request.get_ref().clone()));
        let retry = request.into_inner();
        match retry.message_id.as_str() {
            FAILED_ID => Ok(Response::new(sent(Message {
                id: FAILED_ID.into(),
                conversation_id: "failing".into(),
                direction: MessageDirection::Outbound as i32,
                status: DeliveryStatus::Sent as i32,
                author: retry.author,
                ..Default::default()
            }))),
            "closed" => Ok(Response::new(refused())),
            _ => Err(Status::not_found("message not found")),
        }
    }

    async fn update_conversation(
        &self,
        request: Request<UpdateConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        self.record(
            &request,
            InboxRequest::UpdateConversation(request.get_ref().clone()),
        );
        let update = request.into_inner();
        if update.conversation_id != "c1" {
            return Err(Status::not_found("conversation not found"));
        }
        let mut updated = conversation("c1");
        if let Some(assignee) = update.assignee_id {
            updated.assignee_id = assignee;
        }
        if let Some(team) = update.team_id {
            updated.team_id = team;
        }
        if update.status != 0 {
            updated.status = update.status;
        }
        Ok(Response::new(updated))
    }

    async fn get_assignment_settings(
        &self,
        request: Request<GetAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        self.record(&request, InboxRequest::GetAssignmentSettings(*request.get_ref()));
        Ok(Response::new(AssignmentSettings {
            auto_assign: true,
            max_open_per_agent: 3,
            agents: vec![AgentAvailability {
                agent_id: "agent-1".into(),
                available: true,
                open_assigned: 2,
            }],
        }))
    }

    async fn update_assignment_settings(
        &self,
        request: Request<UpdateAssignmentSettingsRequest>,
    ) -> Result<Response<AssignmentSettings>, Status> {
        self.record(
            &request,
            InboxRequest::UpdateAssignmentSettings(*request.get_ref()),
        );
        let asked = request.into_inner();
        Ok(Response::new(AssignmentSettings {
            auto_assign: asked.auto_assign,
            max_open_per_agent: asked.max_open_per_agent,
            agents: vec![],
        }))
    }

    async fn set_agent_availability(
        &self,
        request: Request<SetAgentAvailabilityRequest>,
    ) -> Result<Response<AgentAvailability>, Status> {
        self.record(
            &request,
            InboxRequest::SetAgentAvailability(request.get_ref().clone()),
        );
        let asked = request.into_inner();
        Ok(Response::new(AgentAvailability {
            agent_id: asked.agent_id,
            available: asked.available,
            open_assigned: 0,
        }))
    }

    async fn update_labels(
        &self,
        request: Request<UpdateLabelsRequest>,
    ) -> Result<Response<Conversation>, Status> {
        self.record(&request, InboxRequest::UpdateLabels(request.get_ref().clone()));
        let asked = request.into_inner();
        if asked.conversation_id != "c1" {
            return Err(Status::not_found("conversation not found"));
        }
        Ok(Response::new(Conversation {
            labels: asked.add,
            ..conversation("c1")
        }))
    }

    async fn add_note(&self, request: Request<AddNoteRequest>) -> Result<Response<Message>, Status> {
        self.record(&request, InboxRequest::AddNote(request.get_ref().clone()));
        let asked = request.into_inner();
        if asked.conversation_id != "c1" {
            return Err(Status::not_found("conversation not found"));
        }
        Ok(Response::new(Message {
            id: "note-1".into(),
            conversation_id: "c1".into(),
            direction: MessageDirection::Note as i32,
            text: asked.text,
            ..Default::default()
        }))
    }

    async fn list_canned_responses(
        &self,
        request: Request<ListCannedResponsesRequest>,
    ) -> Result<Response<ListCannedResponsesResponse>, Status> {
        self.record(
            &request,
            InboxRequest::ListCannedResponses(request.get_ref().clone()),
        );
        Ok(Response::new(ListCannedResponsesResponse {
            canned_responses: vec![CannedResponse {
                id: "cr-1".into(),
                short_code: "hours".into(),
                content: "We open at 8.".into(),
                updated_at: None,
            }],
        }))
    }

    async fn create_canned_response(
        &self,
        request: Request<CreateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        self.record(
            &request,
            InboxRequest::CreateCannedResponse(request.get_ref().clone()),
        );
        let asked = request.into_inner();
        Ok(Response::new(CannedResponse {
            id: "cr-new".into(),
            short_code: asked.short_code,
            content: asked.content,
            updated_at: None,
        }))
    }

    async fn update_canned_response(
        &self,
        request: Request<UpdateCannedResponseRequest>,
    ) -> Result<Response<CannedResponse>, Status> {
        self.record(
            &request,
            InboxRequest::UpdateCannedResponse(request.get_ref().clone()),
        );
        let asked = request.into_inner();
        Ok(Response::new(CannedResponse {
            id: asked.id,
            short_code: asked.short_code,
            content: asked.content,
            updated_at: None,
        }))
    }

    async fn delete_canned_response(
        &self,
        request: Request<DeleteCannedResponseRequest>,
    ) -> Result<Response<DeleteCannedResponseResponse>, Status> {
        self.record(
            &request,
            InboxRequest::DeleteCannedResponse(request.get_ref().clone()),
        );
        match request.get_ref().id.as_str() {
            "missing" => Err(Status::not_found("canned response not found")),
            _ => Ok(Response::new(DeleteCannedResponseResponse {})),
        }
    }

    async fn render_canned_response(
        &self,
        request: Request<RenderCannedResponseRequest>,
    ) -> Result<Response<RenderCannedResponseResponse>, Status> {
        self.record(
            &request,
            InboxRequest::RenderCannedResponse(request.get_ref().clone()),
        );
        let asked = request.into_inner();
        if asked.canned_response_id == "missing" {
            return Err(Status::not_found("canned response not found"));
        }
        Ok(Response::new(RenderCannedResponseResponse {
            text: format!("Hi, {} here.", asked.agent_name),
            missing: vec![],
        }))
    }

    async fn mark_read(
        &self,
        request: Request<MarkReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        self.record(&request, InboxRequest::MarkRead(request.get_ref().clone()));
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(MarkReadResponse { unread_count: 0 })),
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    async fn search_messages(
        &self,
        request: Request<SearchMessagesRequest>,
    ) -> Result<Response<SearchMessagesResponse>, Status> {
        self.record(&request, InboxRequest::SearchMessages(request.get_ref().clone()));
        Ok(Response::new(SearchMessagesResponse {
            hits: vec![SearchHit {
                conversation: Some(conversation("c1")),
                message: Some(Message {
                    id: "m1".into(),
                    conversation_id: "c1".into(),
                    text: request.into_inner().query,
                    ..Default::default()
                }),
            }],
        }))
    }

    async fn get_contact(
        &self,
        request: Request<GetContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        self.record(&request, InboxRequest::GetContact(request.get_ref().clone()));
        contact_profile(&request.get_ref().contact_id).map(Response::new)
    }

    async fn update_contact(
        &self,
        request: Request<UpdateContactRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        self.record(&request, InboxRequest::UpdateContact(request.get_ref().clone()));
        let asked = request.into_inner();
        let mut profile = contact_profile(&asked.contact_id)?;
        if let (Some(contact), Some(name)) = (profile.contact.as_mut(), asked.display_name) {
            contact.display_name = name;
        }
        Ok(Response::new(profile))
    }

    async fn merge_contacts(
        &self,
        request: Request<MergeContactsRequest>,
    ) -> Result<Response<ContactProfile>, Status> {
        self.record(&request, InboxRequest::MergeContacts(request.get_ref().clone()));
        let asked = request.into_inner();
        let mut profile = contact_profile(&asked.contact_id)?;
        profile.linked.push(Contact {
            id: asked.other_contact_id,
            person_id: "k1".into(),
            ..Default::default()
        });
        Ok(Response::new(profile))
    }

    async fn suggest_reply(
        &self,
        request: Request<SuggestReplyRequest>,
    ) -> Result<Response<SuggestReplyResponse>, Status> {
        self.record(&request, InboxRequest::SuggestReply(request.get_ref().clone()));
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(SuggestReplyResponse {
                text: DRAFT.into(),
                confidence: 0.75,
                wants_human: false,
                model: "gpt-test".into(),
                truncated: false,
            })),
            "disabled" => Err(Status::failed_precondition("AI suggestions are not configured")),
            "down" => Err(Status::unavailable(
                "the AI provider is unavailable; try again later",
            )),
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    // Automation and handoff (issue 5): the double echoes what it was given; conversation "c1"
    // exists, any other is NOT_FOUND.
    async fn list_rules(
        &self,
        request: Request<scifer_proto::inbox::v1::ListRulesRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::ListRulesResponse>, Status> {
        self.record(&request, InboxRequest::ListRules);
        Ok(Response::new(scifer_proto::inbox::v1::ListRulesResponse {
            rules: vec![],
        }))
    }

    async fn create_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::CreateRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationRule>, Status> {
        self.record(&request, InboxRequest::CreateRule(request.get_ref().clone()));
        Ok(Response::new(scifer_proto::inbox::v1::AutomationRule {
            id: "rule-1".into(),
            rule_json: request.get_ref().rule_json.clone(),
            ..Default::default()
        }))
    }

    async fn update_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::UpdateRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationRule>, Status> {
        self.record(&request, InboxRequest::UpdateRule(request.get_ref().clone()));
        Ok(Response::new(scifer_proto::inbox::v1::AutomationRule {
            id: request.get_ref().id.clone(),
            rule_json: request.get_ref().rule_json.clone(),
            ..Default::default()
        }))
    }

    async fn delete_rule(
        &self,
        request: Request<scifer_proto::inbox::v1::DeleteRuleRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::DeleteRuleResponse>, Status> {
        self.record(&request, InboxRequest::DeleteRule(request.get_ref().clone()));
        Ok(Response::new(scifer_proto::inbox::v1::DeleteRuleResponse {}))
    }

    async fn get_automation_settings(
        &self,
        request: Request<scifer_proto::inbox::v1::GetAutomationSettingsRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationSettings>, Status> {
        self.record(&request, InboxRequest::GetAutomationSettings);
        Ok(Response::new(Default::default()))
    }

    async fn update_automation_settings(
        &self,
        request: Request<scifer_proto::inbox::v1::UpdateAutomationSettingsRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::AutomationSettings>, Status> {
        self.record(
            &request,
            InboxRequest::UpdateAutomationSettings(request.get_ref().clone()),
        );
        Ok(Response::new(scifer_proto::inbox::v1::AutomationSettings {
            max_replies_per_conversation: request.get_ref().max_replies_per_conversation,
            ..Default::default()
        }))
    }

    async fn hand_off(
        &self,
        request: Request<scifer_proto::inbox::v1::HandOffRequest>,
    ) -> Result<Response<Conversation>, Status> {
        self.record(&request, InboxRequest::HandOff(request.get_ref().clone()));
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(Conversation {
                handler: scifer_proto::inbox::v1::HandlerKind::Human as i32,
                ..conversation("c1")
            })),
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    async fn hand_back(
        &self,
        request: Request<scifer_proto::inbox::v1::HandBackRequest>,
    ) -> Result<Response<Conversation>, Status> {
        self.record(&request, InboxRequest::HandBack(request.get_ref().clone()));
        match request.get_ref().conversation_id.as_str() {
            "c1" => Ok(Response::new(Conversation {
                handler: scifer_proto::inbox::v1::HandlerKind::Automation as i32,
                ..conversation("c1")
            })),
            _ => Err(Status::not_found("conversation not found")),
        }
    }

    // --- History, gaps and media ---

    async fn get_channel_sync(
        &self,
        request: Request<scifer_proto::inbox::v1::GetChannelSyncRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::ChannelSync>, Status> {
        self.record(&request, InboxRequest::GetChannelSync(request.get_ref().clone()));
        match request.get_ref().channel_id.as_str() {
            "ch-ig" => Ok(Response::new(scifer_proto::inbox::v1::ChannelSync {
                channel_id: "ch-ig".into(),
                supported: true,
                limits: "Instagram returns only the 20 most recent messages of a conversation".into(),
                messages_seen: 20,
                reconciled_messages: 20,
                last_run_kind: "backfill".into(),
                runs: 1,
                ..Default::default()
            })),
            _ => Err(Status::not_found("channel not found")),
        }
    }

    type GetMediaStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<scifer_proto::inbox::v1::MediaChunk, Status>> + Send + 'static>,
    >;

    async fn get_media(
        &self,
        request: Request<scifer_proto::inbox::v1::GetMediaRequest>,
    ) -> Result<Response<Self::GetMediaStream>, Status> {
        use scifer_proto::inbox::v1::{MediaChunk, MediaInfo, media_chunk::Part};
        self.record(&request, InboxRequest::GetMedia(request.get_ref().clone()));
        let r = request.get_ref();
        match (r.message_id.as_str(), r.attachment_index) {
            ("m1", 0) => {
                let (head, tail) = MEDIA_BYTES.split_at(5);
                let parts = vec![
                    Ok(MediaChunk {
                        part: Some(Part::Info(MediaInfo {
                            content_type: "image/png".into(),
                            sha256: "ab".into(),
                            size_bytes: MEDIA_BYTES.len() as u64,
                            filename: "p.png".into(),
                        })),
                    }),
                    Ok(MediaChunk {
                        part: Some(Part::Data(head.to_vec())),
                    }),
                    Ok(MediaChunk {
                        part: Some(Part::Data(tail.to_vec())),
                    }),
                ];
                Ok(Response::new(Box::pin(futures::stream::iter(parts))))
            }
            ("pending", _) => Err(Status::failed_precondition(
                "the attachment is still being fetched",
            )),
            _ => Err(Status::not_found("message not found")),
        }
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    async fn list_templates(
        &self,
        request: Request<scifer_proto::inbox::v1::ListTemplatesRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::ListTemplatesResponse>, Status> {
        self.record(&request, InboxRequest::ListTemplates(request.get_ref().clone()));
        if request.get_ref().channel_id != "wa1" {
            return Err(Status::not_found("channel not found"));
        }
        Ok(Response::new(scifer_proto::inbox::v1::ListTemplatesResponse {
            templates: vec![scifer_proto::inbox::v1::WhatsAppTemplate {
                id: "t1".into(),
                name: "order_update".into(),
                language: "en_US".into(),
                status: "APPROVED".into(),
                category: "UTILITY".into(),
                components_json: "[]".into(),
                ..Default::default()
            }],
            synced_at: None,
        }))
    }

    async fn get_inbox_analytics(
        &self,
        request: Request<scifer_proto::inbox::v1::GetInboxAnalyticsRequest>,
    ) -> Result<Response<scifer_proto::inbox::v1::GetInboxAnalyticsResponse>, Status> {
        self.record(
            &request,
            InboxRequest::GetInboxAnalytics(request.get_ref().clone()),
        );
        Ok(Response::new(
            scifer_proto::inbox::v1::GetInboxAnalyticsResponse {
                rows: vec![scifer_proto::inbox::v1::InboxAnalyticsRow {
                    day: request.get_ref().from_day.clone(),
                    conversations_opened: 3,
                    ..Default::default()
                }],
                time_zone: request.get_ref().time_zone.clone(),
            },
        ))
    }
}

/// The draft the double suggests for `c1`.
pub const DRAFT: &str = "We open at 8 on Sundays.";

/// The double's one contact.
fn contact_profile(id: &str) -> Result<ContactProfile, Status> {
    if id != "k1" {
        return Err(Status::not_found("contact not found"));
    }
    Ok(ContactProfile {
        contact: Some(Contact {
            id: "k1".into(),
            external_id: "PSID_1".into(),
            display_name: "Ana".into(),
            channel_id: "ch1".into(),
            person_id: "k1".into(),
        }),
        ..Default::default()
    })
}

/// What reached the vault double: the request message, and the metadata it came with.
#[derive(Debug, Clone)]
pub struct VaultCall {
    pub request: VaultRequest,
    pub metadata: MetadataMap,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VaultRequest {
    StartConnect(vault::StartConnectRequest),
    CompleteConnect(vault::CompleteConnectRequest),
    ConfirmConnect(vault::ConfirmConnectRequest),
    ConnectWhatsApp(vault::ConnectWhatsAppRequest),
    ListChannels(vault::ListChannelsRequest),
    DisconnectChannel(vault::DisconnectChannelRequest),
    Other(&'static str),
}

/// A stand-in for token-vault with its service-identity check: records every call, refuses
/// callers without the gateway's [`VAULT_CREDENTIAL`] with UNAUTHENTICATED, and answers canned
/// data. Disconnecting channel `missing` is NOT_FOUND.
#[derive(Clone)]
pub struct VaultDouble {
    seen: Arc<Mutex<Vec<VaultCall>>>,
    identities: ServiceAuthenticator,
}

impl Default for VaultDouble {
    fn default() -> Self {
        let spec = format!("gateway:{}", fingerprint(VAULT_CREDENTIAL));
        Self {
            seen: Arc::default(),
            identities: ServiceAuthenticator::parse(&spec).unwrap(),
        }
    }
}

/// The channel the vault double lists for a workspace.
pub fn vault_channel(workspace: &str, channel_id: &str) -> vault::Channel {
    vault::Channel {
        channel_id: channel_id.into(),
        workspace_id: workspace.into(),
        kind: ChannelKind::Messenger as i32,
        account_id: "100000000000001".into(),
        display_name: "Acme Page".into(),
        state: ChannelState::Connected as i32,
        ..Default::default()
    }
}

impl VaultDouble {
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn seen(&self) -> Vec<VaultCall> {
        self.seen.lock().unwrap().clone()
    }

    /// Records the call, then checks the caller's service identity as the vault does.
    fn accept<T>(&self, request: &Request<T>, what: VaultRequest) -> Result<(), Status> {
        self.seen.lock().unwrap().push(VaultCall {
            request: what,
            metadata: request.metadata().clone(),
        });
        self.identities.authenticate(request.metadata()).map(|_| ())
    }
}

#[tonic::async_trait]
impl TokenVaultService for VaultDouble {
    type FetchMediaStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<vault::MediaChunk, Status>> + Send + 'static>>;

    async fn fetch_media(
        &self,
        request: Request<vault::FetchMediaRequest>,
    ) -> Result<Response<Self::FetchMediaStream>, Status> {
        self.accept(&request, VaultRequest::Other("FetchMedia"))?;
        Err(Status::unimplemented("not in the double"))
    }

    async fn get_info(
        &self,
        request: Request<vault::GetInfoRequest>,
    ) -> Result<Response<vault::GetInfoResponse>, Status> {
        self.accept(&request, VaultRequest::Other("GetInfo"))?;
        Ok(Response::new(vault::GetInfoResponse {
            service: "token-vault".into(),
            version: "test".into(),
        }))
    }

    async fn start_connect(
        &self,
        request: Request<vault::StartConnectRequest>,
    ) -> Result<Response<vault::StartConnectResponse>, Status> {
        self.accept(&request, VaultRequest::StartConnect(request.get_ref().clone()))?;
        Ok(Response::new(vault::StartConnectResponse {
            dialog_url: "https://www.facebook.com/dialog/oauth?state=state-1".into(),
            state: "state-1".into(),
            expires_at: None,
        }))
    }

    async fn complete_connect(
        &self,
        request: Request<vault::CompleteConnectRequest>,
    ) -> Result<Response<vault::CompleteConnectResponse>, Status> {
        self.accept(&request, VaultRequest::CompleteConnect(request.get_ref().clone()))?;
        Ok(Response::new(vault::CompleteConnectResponse {
            session_id: "session-1".into(),
            pages: vec![vault::PageCandidate {
                page_id: "100000000000001".into(),
                name: "Acme Page".into(),
                can_message: true,
                ..Default::default()
            }],
            expires_at: None,
        }))
    }

    async fn confirm_connect(
        &self,
        request: Request<vault::ConfirmConnectRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        self.accept(&request, VaultRequest::ConfirmConnect(request.get_ref().clone()))?;
        let workspace = &request.get_ref().workspace_id;
        Ok(Response::new(vault::ConnectResponse {
            channels: vec![vault_channel(workspace, "ch-new")],
        }))
    }

    async fn connect_whats_app(
        &self,
        request: Request<vault::ConnectWhatsAppRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        self.accept(&request, VaultRequest::ConnectWhatsApp(request.get_ref().clone()))?;
        let workspace = &request.get_ref().workspace_id;
        Ok(Response::new(vault::ConnectResponse {
            channels: vec![vault_channel(workspace, "ch-wa")],
        }))
    }

    async fn list_channels(
        &self,
        request: Request<vault::ListChannelsRequest>,
    ) -> Result<Response<vault::ListChannelsResponse>, Status> {
        self.accept(&request, VaultRequest::ListChannels(request.get_ref().clone()))?;
        let workspace = &request.get_ref().workspace_id;
        Ok(Response::new(vault::ListChannelsResponse {
            channels: vec![vault_channel(workspace, "ch-1")],
        }))
    }

    async fn disconnect_channel(
        &self,
        request: Request<vault::DisconnectChannelRequest>,
    ) -> Result<Response<vault::DisconnectChannelResponse>, Status> {
        self.accept(
            &request,
            VaultRequest::DisconnectChannel(request.get_ref().clone()),
        )?;
        match request.get_ref().channel_id.as_str() {
            "missing" => Err(Status::not_found("channel not found")),
            id => Ok(Response::new(vault::DisconnectChannelResponse {
                channel_ids: vec![id.to_string()],
            })),
        }
    }

    async fn check_channel(
        &self,
        request: Request<vault::CheckChannelRequest>,
    ) -> Result<Response<vault::Channel>, Status> {
        self.accept(&request, VaultRequest::Other("CheckChannel"))?;
        Err(Status::unimplemented("not in the double"))
    }

    async fn egress(
        &self,
        request: Request<vault::EgressRequest>,
    ) -> Result<Response<vault::EgressResponse>, Status> {
        self.accept(&request, VaultRequest::Other("Egress"))?;
        Err(Status::unimplemented("not in the double"))
    }

    async fn rotate_data_key(
        &self,
        request: Request<vault::RotateDataKeyRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        self.accept(&request, VaultRequest::Other("RotateDataKey"))?;
        Err(Status::unimplemented("not in the double"))
    }

    async fn get_rotation_status(
        &self,
        request: Request<vault::GetRotationStatusRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        self.accept(&request, VaultRequest::Other("GetRotationStatus"))?;
        Err(Status::unimplemented("not in the double"))
    }
}

/// One message an [`SmtpSink`] accepted.
#[derive(Debug, Clone)]
pub struct SunkMail {
    pub from: String,
    pub to: Vec<String>,
    /// What came after DATA, dot-unstuffed, headers included.
    pub data: String,
}

impl SunkMail {
    /// The body as a mail client shows it: quoted-printable decoded (lettre picks it for long
    /// lines), line ends as `\n`.
    pub fn text(&self) -> String {
        let (headers, body) = self.data.split_once("\n\n").unwrap_or(("", &self.data));
        if !headers.contains("Content-Transfer-Encoding: quoted-printable") {
            return body.to_string();
        }
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = (bytes[i] == b'=')
                .then(|| joined.get(i + 1..i + 3))
                .flatten()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("UTF-8 body")
    }
}

/// A tiny SMTP server on 127.0.0.1:0 that speaks just enough SMTP for one client at a time
/// (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps what it is sent.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<SunkMail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sink = Self { addr, mails };
        let accepted = sink.mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(smtp_session(stream, accepted.clone()));
            }
        });
        sink
    }

    /// `SMTP_URL` for the gateway: plain SMTP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn mails(&self) -> Vec<SunkMail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn smtp_session(stream: tokio::net::TcpStream, mails: Arc<Mutex<Vec<SunkMail>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    async fn reply(write: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> bool {
        write.write_all(format!("{text}\r\n").as_bytes()).await.is_ok()
    }
    if !reply(&mut write, "220 sink.test ESMTP test sink").await {
        return;
    }
    let mut from = String::new();
    let mut to = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250 sink.test"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            to.clear();
            "250 OK"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            "250 OK"
        } else if upper == "DATA" {
            if !reply(&mut write, "354 end with <CRLF>.<CRLF>").await {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            mails.lock().unwrap().push(SunkMail {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            "250 OK queued"
        } else if upper == "RSET" || upper == "NOOP" {
            "250 OK"
        } else if upper == "QUIT" {
            let _ = reply(&mut write, "221 bye").await;
            return;
        } else {
            "502 command not implemented"
        };
        if !reply(&mut write, answer).await {
            return;
        }
    }
}

/// The invitation token in an email: the one 64-hex-digit word of the body.
pub fn token_in(mail: &SunkMail) -> String {
    let tokens: Vec<&str> = mail
        .data
        .split_whitespace()
        .filter(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    assert_eq!(tokens.len(), 1, "one token in {}", mail.data);
    tokens[0].to_string()
}
