use std::time::Duration;

use scifer_events::{Bus, async_nats::jetstream};
use scifer_meta_sim::{
    demo,
    graph::{GraphSim, GraphSimConfig},
    secret::AppSecret,
    webhooks::WebhookSender,
};
use scifer_plumbing::service_identity::fingerprint;
use scifer_proto::{
    gateway::v1::{
        CreateWorkspaceRequest, GetConversationRequest, ListConversationsRequest, SignUpRequest,
        account_api_client::AccountApiClient, channel_api_client::ChannelApiClient,
        inbox_api_client::InboxApiClient, workspace_api_client::WorkspaceApiClient,
    },
    inbox::v1 as inbox,
    tokenvault::v1::Channel,
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
/// Where Meta sends the browser back after Facebook Login (the frontend's page).
pub const REDIRECT_URI: &str = "http://localhost:5173/channels/callback";

/// The services of the first loop and token-vault, running as real processes, with the Meta
/// simulator playing Graph (in this process) and webhooks.
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
    pub vault: ServiceProcess,
    pub sim: GraphSim,
    /// The channels connected through the gateway at start: the demo Page, its Instagram account
    /// and the demo WhatsApp number.
    pub channels: Vec<Channel>,
    pub inbox_db: TestDb,
    pub vault_db: TestDb,
    _gateway_db: TestDb,
    _sim_task: tokio::task::JoinHandle<()>,
    /// History, gaps and media: inbox's MEDIA_DIR, deleted with the stack.
    _media_dir: tempfile::TempDir,
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

// Automation e2e (issue 5): settings a test gives the stack's services.
/// What a test changes in the stack; [`Stack::start`] takes the defaults.
#[derive(Debug, Default)]
pub struct StackOptions {
    /// Extra environment of the inbox process (e.g. `THREAD_CONTROL_HUMAN_APP_ID`); later
    /// entries win over the stack's own.
    pub inbox_env: Vec<(&'static str, String)>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        scifer_plumbing::install_crypto_provider();
        let nats = NatsServer::start().await;
        let prefix = unique_prefix();
        let bus = Bus::new(&prefix).unwrap();
        let inbox_db = TestDb::new().await;
        let gateway_db = TestDb::new().await;
        let vault_db = TestDb::new().await;
        let common = |extra: Vec<(&'static str, String)>| {
            let mut env = vec![
                ("NATS_URL", nats.url()),
                ("BUS_PREFIX", prefix.clone()),
                ("SHUTDOWN_GRACE_SECS", "5".to_string()),
            ];
            env.extend(extra);
            env
        };

        let gateway_credential = format!("gateway-{}", uuid::Uuid::new_v4().simple());
        let inbox_credential = format!("inbox-{}", uuid::Uuid::new_v4().simple());
        let vault_port = free_port();
        let inbox_port = free_port();
        let media_dir = tempfile::tempdir().unwrap();
        let inbox = ServiceProcess::start(
            "inbox",
            &common(vec![
                ("GRPC_ADDR", format!("127.0.0.1:{inbox_port}")),
                ("DATABASE_URL", inbox_db.url().to_string()),
                ("TOKEN_VAULT_URL", format!("http://127.0.0.1:{vault_port}")),
                ("TOKEN_VAULT_CREDENTIAL", inbox_credential.clone()),
                // History, gaps and media: attachments are copied from the simulator's own host.
                ("MEDIA_DIR", media_dir.path().display().to_string()),
                ("MEDIA_URL_HOSTS", "127.0.0.1".to_string()),
            ])
            .into_iter()
            .chain(options.inbox_env)
            .collect::<Vec<_>>(),
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

        // Meta's Graph API, played by the simulator with the demo world (a user managing the demo
        // Page with its Instagram account, and a WABA with a number).
        let app_id = demo::DEMO_APP_ID.to_string();
        let sim = GraphSim::with_demo_world(GraphSimConfig {
            app_id: app_id.clone(),
            app_secret: AppSecret::new(APP_SECRET),
            require_appsecret_proof: true,
            code_ttl: Duration::from_secs(600),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let graph_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = sim.clone();
        let sim_task = tokio::spawn(async move {
            serving.serve(listener, std::future::pending()).await.ok();
        });

        let vault = ServiceProcess::start(
            "token-vault",
            &common(vec![
                ("GRPC_ADDR", format!("127.0.0.1:{vault_port}")),
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
                ("META_GRAPH_URL", graph_url.clone()),
                ("META_DIALOG_URL", graph_url),
                ("META_APP_ID", app_id),
                ("META_APP_SECRET", APP_SECRET.to_string()),
                ("CONNECT_REDIRECT_URIS", REDIRECT_URI.to_string()),
            ]),
            &format!("http://127.0.0.1:{vault_port}/readyz"),
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
                ("TOKEN_VAULT_URL", format!("http://127.0.0.1:{vault_port}")),
                ("TOKEN_VAULT_CREDENTIAL", gateway_credential),
                ("META_OAUTH_REDIRECT_URI", REDIRECT_URI.to_string()),
            ]),
            &format!("http://127.0.0.1:{gateway_port}/readyz"),
        )
        .await;

        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        // What Meta does after a send: echoes, receipts and statuses come back as webhooks.
        sim.set_webhook_target(
            format!("http://127.0.0.1:{ingest_port}/webhooks/meta"),
            AppSecret::new(APP_SECRET),
        )
        .expect("simulator webhook target");
        let (token, workspace) = sign_up_with_workspace(&gateway_url).await;

        let client = scifer_events::connect(&nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let mut stack = Self {
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
            vault,
            sim,
            channels: Vec::new(),
            inbox_db,
            vault_db,
            _gateway_db: gateway_db,
            _sim_task: sim_task,
            _media_dir: media_dir,
        };
        stack.channels = stack.connect_demo_channels().await;
        stack
    }

    /// What a workspace admin does in the frontend: Facebook Login for the demo Page (which
    /// brings its Instagram account), then the WhatsApp number with a system-user token.
    async fn connect_demo_channels(&self) -> Vec<Channel> {
        let system_user = self.sim.demo_system_user_token().expect("demo WABA token");
        let channels = scifer_devstack::connect::connect_demo_channels(
            &mut self.channel_api(),
            &self.workspace,
            Some(&system_user),
        )
        .await
        .expect("connect the demo channels through the gateway");
        assert_eq!(channels.len(), 3, "Page, Instagram account and WhatsApp number");
        channels
    }

    /// The workspace owner's ChannelApi client over gRPC-web.
    pub fn channel_api(&self) -> ChannelApiClient<Authed> {
        ChannelApiClient::with_origin(authed(Some(&self.token)), self.gateway_url.parse().unwrap())
    }

    /// A client of the public API speaking gRPC-web over HTTP/1.1, as a browser does, with the
    /// owner's session.
    pub fn grpc_web_client(&self) -> InboxApiClient<Authed> {
        InboxApiClient::with_origin(authed(Some(&self.token)), self.gateway_url.parse().unwrap())
    }

    /// The workspace's conversations as the owner lists them over gRPC-web (empty on an error:
    /// callers poll).
    pub async fn conversations(&self) -> Vec<inbox::Conversation> {
        self.grpc_web_client()
            .list_conversations(ListConversationsRequest {
                workspace_id: self.workspace.clone(),
                query: Some(inbox::ListConversationsRequest {
                    page_size: 50,
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner().conversations)
            .unwrap_or_default()
    }

    /// A conversation's messages, oldest first.
    pub async fn messages(&self, conversation_id: &str) -> Vec<inbox::Message> {
        self.grpc_web_client()
            .get_conversation(GetConversationRequest {
                workspace_id: self.workspace.clone(),
                query: Some(inbox::GetConversationRequest {
                    conversation_id: conversation_id.to_string(),
                    page_size: 50,
                    page_token: String::new(),
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .messages
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
            "--- webhook-ingest ---\n{}\n--- inbox ---\n{}\n--- gateway ---\n{}\n--- token-vault ---\n{}",
            self.ingest.log_text(),
            self.inbox.log_text(),
            self.gateway.log_text(),
            self.vault.log_text()
        )
    }
}

/// A fresh 32-byte KEK for the stack's vault.
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
