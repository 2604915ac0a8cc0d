//! `spawn_app()`: each test gets its own nats-server, bus prefix and ports, and a handle to look at
//! the streams and the admin API.

use std::{sync::Once, time::Duration};

use prost::Message as _;
use scifer_events::{
    Bus, StreamKind,
    async_nats::{self, jetstream},
};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{MetaEvent, UnhandledMetaItem},
    ingest::v1::{StatsRequest, StatsResponse, ingest_admin_client::IngestAdminClient},
};
use scifer_test_support::{NatsServer, unique_prefix, wait_until};
use tokio::task::JoinHandle;
use webhook_ingest::{Application, Config, StartupError};

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const WAIT: Duration = Duration::from_secs(10);

/// How to start the service in one test.
#[derive(Clone)]
pub struct Settings {
    pub splitter: bool,
    pub verify_token: String,
    /// Extra environment variables, applied last.
    pub env: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            splitter: true,
            verify_token: VERIFY_TOKEN.into(),
            env: Vec::new(),
        }
    }
}

pub struct TestApp {
    pub nats: NatsServer,
    pub prefix: String,
    pub bus: Bus,
    pub base_url: String,
    pub admin_url: String,
    pub http: reqwest::Client,
    pub js: jetstream::Context,
    running: Running,
}

struct Running {
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), StartupError>>,
    base_url: String,
    admin_url: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    init();
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let running = start(&nats.url(), &prefix, &settings).await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(nats.url())
        .await
        .unwrap();
    TestApp {
        bus: Bus::new(&prefix).unwrap(),
        base_url: running.base_url.clone(),
        admin_url: running.admin_url.clone(),
        http: reqwest::Client::new(),
        js: jetstream::new(client),
        nats,
        prefix,
        running,
    }
}

/// The settings as environment variables, as an operator would give them.
pub fn env(nats_url: &str, prefix: &str, settings: &Settings) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("NATS_URL", nats_url.to_string()),
        ("BUS_PREFIX", prefix.to_string()),
        ("LISTEN_ADDR", "127.0.0.1:0".into()),
        ("ADMIN_ADDR", "127.0.0.1:0".into()),
        ("META_APP_SECRET", APP_SECRET.into()),
        ("META_VERIFY_TOKEN", settings.verify_token.clone()),
        ("PUBLISH_TIMEOUT_MS", "1000".into()),
        ("SHUTDOWN_GRACE_SECS", "5".into()),
        ("SPLITTER_ENABLED", settings.splitter.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    vars.extend(settings.env.iter().cloned());
    vars
}

pub fn config(vars: Vec<(String, String)>) -> Config {
    scifer_plumbing::config::load_from(None, vars).unwrap()
}

async fn start(nats_url: &str, prefix: &str, settings: &Settings) -> Running {
    let app = Application::build(config(env(nats_url, prefix, settings)))
        .await
        .unwrap();
    let base_url = format!("http://{}", app.http_addr().unwrap());
    let admin_url = format!("http://{}", app.admin_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let ready = format!("{base_url}/readyz");
    wait_until(WAIT, || {
        let ready = ready.clone();
        async move {
            reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
        }
    })
    .await
    .expect("webhook-ingest did not become ready");
    Running {
        shutdown,
        server,
        base_url,
        admin_url,
    }
}

/// Process-wide test setup: ring as the rustls provider (reqwest needs one), and a subscriber that
/// records spans (trace context reaches the bus only from recorded spans) and prints nothing.
pub fn init() {
    scifer_plumbing::install_crypto_provider();
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("webhook-ingest-tests")));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/meta", self.base_url)
    }

    /// Stops the service as SIGTERM would and waits until it returned.
    pub async fn stop_service(&mut self) {
        self.running.shutdown.cancel();
        let server = &mut self.running.server;
        let stopped = tokio::time::timeout(WAIT, server).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "did not stop cleanly: {stopped:?}"
        );
    }

    /// Stops the service abruptly, as a crash or SIGKILL would: nothing gets to finish.
    pub async fn kill_service(&mut self) {
        self.running.server.abort();
        let _ = (&mut self.running.server).await;
    }

    /// A new service process (same NATS, same prefix) replacing the stopped one.
    pub async fn start_service(&mut self, settings: Settings) {
        self.running = start(&self.nats.url(), &self.prefix, &settings).await;
        self.base_url = self.running.base_url.clone();
        self.admin_url = self.running.admin_url.clone();
    }

    pub async fn post(&self, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().await.unwrap()
    }

    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        self.post(body, Some(&sign(body))).await
    }

    pub async fn handshake(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.webhook_url())
            .query(query)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin(&self) -> IngestAdminClient<tonic::transport::Channel> {
        IngestAdminClient::connect(self.admin_url.clone()).await.unwrap()
    }

    pub async fn stats(&self) -> StatsResponse {
        self.admin()
            .await
            .stats(StatsRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// Every message currently in one of the service's streams, oldest first.
    pub async fn messages(&self, kind: StreamKind) -> Vec<jetstream::message::StreamMessage> {
        let mut stream = self.js.get_stream(self.bus.stream_name(kind)).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(msg) = stream.get_raw_message(seq).await {
                out.push(msg);
            }
        }
        out
    }

    pub async fn count(&self, kind: StreamKind) -> u64 {
        let mut stream = self.js.get_stream(self.bus.stream_name(kind)).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// `(subject, event_id)` of everything in the META stream, oldest first.
    pub async fn meta_ids(&self) -> Vec<(String, String)> {
        let unhandled = self.bus.meta_unhandled();
        self.messages(StreamKind::Meta)
            .await
            .into_iter()
            .map(|m| {
                let id = if m.subject.as_str() == unhandled {
                    UnhandledMetaItem::decode(m.payload.as_ref()).unwrap().event_id
                } else {
                    MetaEvent::decode(m.payload.as_ref()).unwrap().event_id
                };
                (m.subject.to_string(), id)
            })
            .collect()
    }

    /// Waits until the META stream holds exactly `expected` (in any order).
    pub async fn wait_for_meta(&self, expected: &[(String, String)]) {
        let mut expected = expected.to_vec();
        expected.sort();
        let result = wait_until(WAIT, || async {
            let mut ids = self.meta_ids().await;
            ids.sort();
            ids == expected
        })
        .await;
        if result.is_err() {
            panic!(
                "META stream holds {:?}, expected {expected:?}",
                self.meta_ids().await
            );
        }
    }
}

pub fn sign(body: &[u8]) -> String {
    scifer_meta::sign_sha256(APP_SECRET.as_bytes(), body)
}

pub fn sha256_hex(body: &[u8]) -> String {
    webhook_ingest::ingest::delivery_id(body)
}

/// A Messenger delivery with one text message (`fb:message:<mid>`).
pub fn messenger_message(mid: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"page","entry":[{{"id":"111","time":1700000000000,"messaging":[{{"sender":{{"id":"PSID1"}},"recipient":{{"id":"111"}},"timestamp":1700000000000,"message":{{"mid":"{mid}","text":"hello \u00e9"}}}}]}}]}}"#
    )
    .into_bytes()
}

/// A WhatsApp delivery with one text message (`wa:message:<wamid>`).
pub fn whatsapp_message(wamid: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"PN1"}},"contacts":[{{"profile":{{"name":"Ann"}},"wa_id":"15550002222"}}],"messages":[{{"from":"15550002222","id":"{wamid}","timestamp":"1700000000","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

impl TestApp {
    pub fn event(&self, channel: &str, kind: &str, id: &str) -> (String, String) {
        (format!("{}.meta.{channel}.{kind}", self.prefix), id.to_string())
    }
}
