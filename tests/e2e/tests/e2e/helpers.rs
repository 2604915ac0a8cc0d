use std::time::Duration;

use scifer_events::{Bus, Publisher, StreamKind, async_nats::jetstream};
use scifer_meta_sim::{demo, secret::AppSecret, webhooks::WebhookSender};
use scifer_proto::{
    events::v1::{ChannelEvent, ChannelKind, ChannelState},
    gateway::v1::{
        CreateWorkspaceRequest, SignUpRequest, account_api_client::AccountApiClient,
        inbox_api_client::InboxApiClient, workspace_api_client::WorkspaceApiClient,
    },
};
use scifer_test_support::{
    GrpcWebChannel, NatsServer, ServiceProcess, TestDb, free_port, grpc_web_channel, unique_prefix,
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
};

pub const APP_SECRET: &str = "e2e-app-secret";
pub const VERIFY_TOKEN: &str = "e2e-verify-token";

/// The three services of the first loop, running as real processes.
pub struct Stack {
    pub nats: NatsServer,
    pub bus: Bus,
    pub js: jetstream::Context,
    /// Created through the gateway's WorkspaceApi by [`Stack::token`]'s user, its owner.
    pub workspace: String,
    /// The session of the user who signed up and owns `workspace`.
    pub token: String,
    pub webhook_url: String,
    pub gateway_url: String,
    pub ingest: ServiceProcess,
    pub inbox: ServiceProcess,
    pub gateway: ServiceProcess,
    _inbox_db: TestDb,
    _gateway_db: TestDb,
}

/// A gRPC-web client transport that sends the stack's session as the bearer on every call.
pub type Authed = InterceptedService<GrpcWebChannel, Bearer>;

#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn authed(token: Option<&str>) -> Authed {
    let value = token.map(|t| format!("Bearer {t}").parse().unwrap());
    InterceptedService::new(grpc_web_channel(), Bearer(value))
}

impl Stack {
    pub async fn start() -> Self {
        scifer_plumbing::install_crypto_provider();
        let nats = NatsServer::start().await;
        let prefix = unique_prefix();
        let bus = Bus::new(&prefix).unwrap();
        let inbox_db = TestDb::new().await;
        let gateway_db = TestDb::new().await;
        let common = |extra: Vec<(&'static str, String)>| {
            let mut env = vec![
                ("NATS_URL", nats.url()),
                ("BUS_PREFIX", prefix.clone()),
                ("SHUTDOWN_GRACE_SECS", "5".to_string()),
            ];
            env.extend(extra);
            env
        };

        let inbox_port = free_port();
        let inbox = ServiceProcess::start(
            "inbox",
            &common(vec![
                ("GRPC_ADDR", format!("127.0.0.1:{inbox_port}")),
                ("DATABASE_URL", inbox_db.url().to_string()),
            ]),
            &format!("http://127.0.0.1:{inbox_port}/readyz"),
        )
        .await;

        let (ingest_port, admin_port) = (free_port(), free_port());
        let ingest = ServiceProcess::start(
            "webhook-ingest",
            &common(vec![
                ("LISTEN_ADDR", format!("127.0.0.1:{ingest_port}")),
                ("ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
                ("META_APP_SECRET", APP_SECRET.to_string()),
                ("META_VERIFY_TOKEN", VERIFY_TOKEN.to_string()),
            ]),
            &format!("http://127.0.0.1:{ingest_port}/readyz"),
        )
        .await;

        let gateway_port = free_port();
        let gateway = ServiceProcess::start(
            "gateway",
            &common(vec![
                ("LISTEN_ADDR", format!("127.0.0.1:{gateway_port}")),
                ("CORS_ALLOWED_ORIGINS", crate::browser::PAGE_ORIGIN.to_string()),
                ("INBOX_URL", format!("http://127.0.0.1:{inbox_port}")),
                ("DATABASE_URL", gateway_db.url().to_string()),
            ]),
            &format!("http://127.0.0.1:{gateway_port}/readyz"),
        )
        .await;

        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        let (token, workspace) = sign_up_with_workspace(&gateway_url).await;

        let client = scifer_events::connect(&nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let stack = Self {
            nats,
            bus,
            js,
            workspace,
            token,
            webhook_url: format!("http://127.0.0.1:{ingest_port}/webhooks/meta"),
            gateway_url,
            ingest,
            inbox,
            gateway,
            _inbox_db: inbox_db,
            _gateway_db: gateway_db,
        };
        stack.connect_demo_channels().await;
        stack
    }

    /// What token-vault will do once it connects real channels: announce the workspace's channels.
    async fn connect_demo_channels(&self) {
        self.bus
            .ensure_default_stream(&self.js, StreamKind::Channels)
            .await
            .unwrap();
        let publisher = Publisher::new(self.js.clone());
        for (channel_id, kind, account_id) in [
            ("ch-messenger", ChannelKind::Messenger, demo::DEMO_PAGE_ID),
            ("ch-instagram", ChannelKind::Instagram, demo::DEMO_IG_ACCOUNT_ID),
            ("ch-whatsapp", ChannelKind::Whatsapp, demo::DEMO_PHONE_NUMBER_ID),
        ] {
            let event = ChannelEvent {
                state_reason: String::new(),
                parent_account_id: String::new(),
                event_id: format!("{}-{channel_id}-v1", self.workspace),
                workspace_id: self.workspace.clone(),
                channel_id: format!("{}-{channel_id}", self.workspace),
                kind: kind as i32,
                account_id: account_id.to_string(),
                display_name: channel_id.to_string(),
                state: ChannelState::Connected as i32,
                version: 1,
                at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            };
            publisher
                .publish(
                    self.bus.channel_event(ChannelState::Connected),
                    &event.event_id,
                    &event,
                )
                .await
                .unwrap();
        }
    }

    /// A client of the public API speaking gRPC-web over HTTP/1.1, as a browser does, with the
    /// owner's session.
    pub fn grpc_web_client(&self) -> InboxApiClient<Authed> {
        InboxApiClient::with_origin(authed(Some(&self.token)), self.gateway_url.parse().unwrap())
    }

    pub fn sender(&self) -> WebhookSender {
        WebhookSender::with_timeout(AppSecret::new(APP_SECRET), Duration::from_secs(5)).unwrap()
    }
}

/// What a new user does first: sign up and create a workspace. Returns the session and the
/// workspace id.
async fn sign_up_with_workspace(gateway_url: &str) -> (String, String) {
    let origin: tonic::codegen::http::Uri = gateway_url.parse().unwrap();
    let email = format!("owner-{}@e2e.test", uuid::Uuid::new_v4().simple());
    let session = AccountApiClient::with_origin(authed(None), origin.clone())
        .sign_up(SignUpRequest {
            email,
            password: "end-to-end passphrase".into(),
            name: "E2E Owner".into(),
        })
        .await
        .expect("sign up through the gateway")
        .into_inner();
    let workspace = WorkspaceApiClient::with_origin(authed(Some(&session.session_token)), origin)
        .create_workspace(CreateWorkspaceRequest { name: "E2E".into() })
        .await
        .expect("create a workspace through the gateway")
        .into_inner()
        .workspace_id;
    (session.session_token, workspace)
}

impl Stack {
    /// The service logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- webhook-ingest ---\n{}\n--- inbox ---\n{}\n--- gateway ---\n{}",
            self.ingest.log_text(),
            self.inbox.log_text(),
            self.gateway.log_text()
        )
    }
}
