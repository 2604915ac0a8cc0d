//! `TestVault::start()`: the token-vault binary with its own nats-server, database, bus prefix,
//! KEKs and service credentials, talking to an in-test Meta simulator (Graph surface).

use std::{collections::HashMap, time::Duration};

use base64::Engine as _;
use scifer_events::{
    Bus,
    async_nats::{self, jetstream},
};
use scifer_meta_sim::{
    AppSecret,
    demo::{DEMO_PAGE_ID, DEMO_WABA_ID},
    graph::{GraphSim, GraphSimConfig},
};
use scifer_plumbing::service_identity::fingerprint;
use scifer_proto::{
    events::v1::{AuditEvent, ChannelEvent},
    tokenvault::v1::{
        CompleteConnectRequest, ConfirmConnectRequest, ConnectResponse, ConnectWhatsAppRequest,
        StartConnectRequest, connect_whats_app_request::Credential,
        token_vault_service_client::TokenVaultServiceClient,
    },
};
use scifer_test_support::{NatsServer, ServiceProcess, TestDb, free_port, unique_prefix};
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub const WAIT: Duration = Duration::from_secs(15);
pub const APP_ID: &str = "900000000000001";
pub const APP_SECRET: &str = "sim-app-secret-for-vault-tests";
pub const REDIRECT_URI: &str = "https://app.scifer.test/channels/callback";
pub const WORKSPACE: &str = "0192f0c4-8a8e-7000-8000-00000000a001";
pub const OTHER_WORKSPACE: &str = "0192f0c4-8a8e-7000-8000-00000000b002";
pub const USER: &str = "user-admin-1";

/// Adds a service identity to every call.
#[derive(Clone)]
pub struct As {
    service: String,
    secret: String,
}

impl Interceptor for As {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("x-scifer-service", self.service.parse().unwrap());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.secret).parse().unwrap(),
        );
        Ok(request)
    }
}

pub type Client = TokenVaultServiceClient<InterceptedService<Channel, As>>;

pub fn kek(seed: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([seed; 32])
}

pub struct TestVault {
    pub nats: NatsServer,
    pub db: TestDb,
    pub sim: GraphSim,
    pub sim_url: String,
    pub prefix: String,
    pub process: Option<ServiceProcess>,
    pub grpc_url: String,
    port: u16,
    credentials: HashMap<&'static str, String>,
    pub whatsapp_token: String,
    _sim_task: tokio::task::JoinHandle<()>,
}

impl TestVault {
    pub async fn start() -> Self {
        Self::start_with_keks(&format!("1:{}", kek(1)), None).await
    }

    pub async fn start_with_keks(keks: &str, primary: Option<u32>) -> Self {
        scifer_plumbing::install_crypto_provider();
        let nats = NatsServer::start().await;
        let db = TestDb::new().await;
        let sim = GraphSim::with_demo_world(GraphSimConfig {
            app_id: APP_ID.into(),
            app_secret: AppSecret::new(APP_SECRET),
            require_appsecret_proof: true,
            code_ttl: Duration::from_secs(600),
        });
        let whatsapp_token = sim.issue_system_user_token(
            DEMO_WABA_ID,
            &["whatsapp_business_messaging", "whatsapp_business_management"],
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = sim.clone();
        let sim_task = tokio::spawn(async move {
            serving.serve(listener, std::future::pending()).await.ok();
        });
        let credentials: HashMap<&'static str, String> =
            ["gateway", "inbox", "publisher", "operator", "webhook-ingest"]
                .into_iter()
                .map(|s| (s, format!("{s}-credential-{}", unique_prefix())))
                .collect();
        let mut vault = Self {
            nats,
            db,
            sim,
            sim_url,
            prefix: unique_prefix(),
            process: None,
            grpc_url: String::new(),
            port: free_port(),
            credentials,
            whatsapp_token,
            _sim_task: sim_task,
        };
        vault.launch(keks, primary).await;
        vault
    }

    /// (Re)starts the binary with the given KEKs, keeping database, bus and simulator.
    pub async fn launch(&mut self, keks: &str, primary: Option<u32>) {
        if let Some(mut old) = self.process.take() {
            old.terminate(Duration::from_secs(10));
        }
        // Webhook-ingest is deliberately not allowed to call anything but GetInfo.
        let allowed = self
            .credentials
            .iter()
            .map(|(s, c)| format!("{s}:{}", fingerprint(c)))
            .collect::<Vec<_>>()
            .join(",");
        let mut env = vec![
            ("GRPC_ADDR", format!("127.0.0.1:{}", self.port)),
            ("DATABASE_URL", self.db.url().to_string()),
            ("NATS_URL", self.nats.url()),
            ("BUS_PREFIX", self.prefix.clone()),
            ("VAULT_KEKS", keks.to_string()),
            ("SERVICE_CREDENTIALS", allowed),
            ("META_GRAPH_URL", self.sim_url.clone()),
            ("META_DIALOG_URL", self.sim_url.clone()),
            ("META_APP_ID", APP_ID.to_string()),
            ("META_APP_SECRET", APP_SECRET.to_string()),
            ("CONNECT_REDIRECT_URIS", REDIRECT_URI.to_string()),
            // The simulator serves media from its own loopback address.
            ("MEDIA_URL_HOSTS", "127.0.0.1".to_string()),
            ("HEALTH_CHECK_INTERVAL_SECS", "0".to_string()),
            ("ROTATION_INTERVAL_SECS", "1".to_string()),
            ("ROTATION_BATCH", "2".to_string()),
            ("SHUTDOWN_GRACE_SECS", "5".to_string()),
            // As much logging as the vault can produce, so the secrets test sees everything.
            ("RUST_LOG", "debug".to_string()),
        ];
        if let Some(p) = primary {
            env.push(("VAULT_KEK_PRIMARY", p.to_string()));
        }
        self.grpc_url = format!("http://127.0.0.1:{}", self.port);
        let health = format!("{}/healthz", self.grpc_url);
        self.process = Some(ServiceProcess::start("token-vault", &env, &health).await);
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }

    pub async fn client(&self, service: &str) -> Client {
        let secret = self
            .credentials
            .get(service)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        self.client_with(service, &secret).await
    }

    pub async fn client_with(&self, service: &str, secret: &str) -> Client {
        let channel = Channel::from_shared(self.grpc_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        TokenVaultServiceClient::with_interceptor(
            channel,
            As {
                service: service.to_string(),
                secret: secret.to_string(),
            },
        )
    }

    pub async fn js(&self) -> jetstream::Context {
        let client = async_nats::connect(self.nats.url()).await.unwrap();
        jetstream::new(client)
    }

    /// Every message stored so far on the stream holding `filter`, decoded as `M`.
    async fn stream_messages<M: prost::Message + Default>(
        &self,
        stream: scifer_events::StreamKind,
    ) -> Vec<M> {
        let bus = Bus::new(&self.prefix).unwrap();
        let js = self.js().await;
        let Ok(mut s) = js.get_stream(bus.stream_name(stream)).await else {
            return Vec::new();
        };
        let last = s.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(raw) = s.get_raw_message(seq).await {
                out.push(M::decode(raw.payload.as_ref()).unwrap());
            }
        }
        out
    }

    pub async fn channel_events(&self) -> Vec<ChannelEvent> {
        self.stream_messages(scifer_events::StreamKind::Channels).await
    }

    pub async fn audit_events(&self) -> Vec<AuditEvent> {
        self.stream_messages(scifer_events::StreamKind::Audit).await
    }

    /// Waits until the bus holds at least `n` channel events matching `pred`.
    pub async fn wait_channel_events(
        &self,
        n: usize,
        pred: impl Fn(&ChannelEvent) -> bool,
    ) -> Vec<ChannelEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found: Vec<_> = self
                .channel_events()
                .await
                .into_iter()
                .filter(|e| pred(e))
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} channel events, found {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_audit(&self, action: &str, n: usize) -> Vec<AuditEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found: Vec<_> = self
                .audit_events()
                .await
                .into_iter()
                .filter(|e| e.action == action)
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} audit records {action}, found {}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Follows Meta's dialog as the browser would and returns (code, state) from the redirect.
    pub async fn consent(&self, dialog_url: &str) -> (String, String) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http.get(dialog_url).send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            302,
            "dialog answered {}",
            response.status()
        );
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let url = url::Url::parse(&location).unwrap();
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string())
        };
        (
            get("code").expect("code in redirect"),
            get("state").expect("state in redirect"),
        )
    }

    /// The whole Facebook Login flow for `pages` (default: the demo Page).
    pub async fn connect_pages(&self, workspace: &str, pages: &[&str]) -> ConnectResponse {
        let mut gw = self.client("gateway").await;
        let started = gw
            .start_connect(StartConnectRequest {
                workspace_id: workspace.into(),
                user_id: USER.into(),
                redirect_uri: REDIRECT_URI.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let (code, state) = self.consent(&started.dialog_url).await;
        assert_eq!(state, started.state);
        let candidates = gw
            .complete_connect(CompleteConnectRequest {
                workspace_id: workspace.into(),
                user_id: USER.into(),
                state,
                code,
            })
            .await
            .unwrap()
            .into_inner();
        gw.confirm_connect(ConfirmConnectRequest {
            workspace_id: workspace.into(),
            user_id: USER.into(),
            session_id: candidates.session_id,
            page_ids: pages.iter().map(|p| p.to_string()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
    }

    pub async fn connect_demo_page(&self) -> ConnectResponse {
        self.connect_pages(WORKSPACE, &[DEMO_PAGE_ID]).await
    }

    pub async fn connect_whatsapp(&self, workspace: &str) -> ConnectResponse {
        self.client("gateway")
            .await
            .connect_whats_app(ConnectWhatsAppRequest {
                workspace_id: workspace.into(),
                user_id: USER.into(),
                waba_id: DEMO_WABA_ID.into(),
                credential: Some(Credential::SystemUserToken(self.whatsapp_token.clone())),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// A connection to the vault's own database, for assertions on what it stores.
    pub async fn store(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.db.url()).await.unwrap()
    }
}

/// Rows of `table` whose `column` equals `value` (counted with plain SQL, the vault's schema).
pub async fn count_rows(db: &sea_orm::DatabaseConnection, table: &str, column: &str, value: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            format!("SELECT COUNT(*) AS n FROM {table} WHERE CAST({column} AS TEXT) = $1")
        }
        _ => format!("SELECT COUNT(*) AS n FROM {table} WHERE CAST({column} AS TEXT) = ?"),
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [value.into()]))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}
