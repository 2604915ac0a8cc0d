//! `spawn_app()`: each test gets its own nats-server, database, bus prefix and port 0.

use std::{net::SocketAddr, time::Duration};

use futures::StreamExt;
use inbox::{Application, Config};
use scifer_events::{
    Bus, Publisher,
    async_nats::{self, jetstream, jetstream::consumer::PullConsumer},
};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{
        self as ev, ChannelEvent, ChannelKind, ChannelState, MetaEvent, WhatsAppStatusKind, meta_event::Kind,
    },
    inbox::v1::{
        Conversation, GetConversationRequest, GetConversationResponse, ListConversationsRequest,
        ListConversationsResponse, inbox_service_client::InboxServiceClient,
    },
};
use scifer_test_support::{NatsServer, TestDb, unique_prefix, wait_until};
use tonic::{Request, transport::Channel};

pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestApp {
    // Kept alive for the test: dropping them stops the server and deletes the database.
    _nats: NatsServer,
    _db: TestDb,
    /// History, gaps and media: this inbox's MEDIA_DIR, deleted with the test.
    pub media_dir: tempfile::TempDir,
    pub bus: Bus,
    pub js: jetstream::Context,
    pub client: async_nats::Client,
    pub publisher: Publisher,
    pub addr: SocketAddr,
    pub store: sea_orm::DatabaseConnection,
    /// The running inbox's engine: its write lock and the snooze wake-up.
    pub engine: std::sync::Arc<inbox::consumer::Engine>,
    app: Option<Application>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<Result<(), inbox::StartupError>>>,
}

/// A running inbox.
pub async fn spawn_app() -> TestApp {
    let mut app = build_app(30).await;
    app.start();
    app
}

/// A running inbox with extra settings (environment names and values).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let extra = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut app = build_app_with(30, extra).await;
    app.start();
    app
}

/// A running inbox that sends through `vault` (a test double of token-vault's egress).
pub async fn spawn_app_with_vault(vault: &crate::send::VaultDouble) -> TestApp {
    let mut app = build_app_with(
        30,
        vec![
            ("TOKEN_VAULT_URL".to_string(), vault.url()),
            (
                "TOKEN_VAULT_CREDENTIAL".to_string(),
                crate::send::INBOX_CREDENTIAL.to_string(),
            ),
            ("TOKEN_VAULT_TIMEOUT_MS".to_string(), "1000".to_string()),
        ],
    )
    .await;
    app.start();
    app
}

/// An inbox built (store migrated, streams and consumers created) but not yet consuming or serving.
pub async fn build_app(ack_wait_secs: u64) -> TestApp {
    build_app_with(ack_wait_secs, Vec::new()).await
}

pub async fn build_app_with(ack_wait_secs: u64, extra: Vec<(String, String)>) -> TestApp {
    scifer_plumbing::install_crypto_provider();
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let media_dir = tempfile::tempdir().unwrap();
    let vars = [
        ("GRPC_ADDR", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", db.url().to_string()),
        ("NATS_URL", nats.url()),
        ("BUS_PREFIX", prefix.clone()),
        ("CONSUMER_ACK_WAIT_SECS", ack_wait_secs.to_string()),
        ("SHUTDOWN_GRACE_SECS", "5".to_string()),
        // History, gaps and media: each test its own media directory.
        ("MEDIA_DIR", media_dir.path().display().to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into_iter()
    .chain(extra);
    let config: Config = scifer_plumbing::config::load_from(None, vars).unwrap();
    let app = Application::build(config).await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    TestApp {
        bus: Bus::new(&prefix).unwrap(),
        publisher: Publisher::new(js.clone()),
        js,
        client,
        addr: app.grpc_addr().unwrap(),
        store: app.db(),
        engine: app.engine(),
        _nats: nats,
        _db: db,
        media_dir,
        app: Some(app),
        shutdown: CancellationToken::new(),
        server: None,
    }
}

impl TestApp {
    /// The application, while it has not been started.
    pub fn app(&self) -> &Application {
        self.app.as_ref().expect("already started")
    }

    pub fn start(&mut self) {
        let app = self.app.take().expect("already started");
        self.server = Some(tokio::spawn(app.run_until_stopped(self.shutdown.clone())));
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(
                matches!(stopped, Ok(Ok(Ok(())))),
                "did not stop cleanly: {stopped:?}"
            );
        }
    }

    pub async fn grpc(&self) -> InboxServiceClient<Channel> {
        InboxServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub async fn publish_channel(&self, event: &ChannelEvent) {
        let state = ChannelState::try_from(event.state).unwrap();
        self.publisher
            .publish(self.bus.channel_event(state), &event.event_id, event)
            .await
            .unwrap();
    }

    pub async fn publish_meta(&self, event: &MetaEvent) {
        self.publish_meta_as(event, &event.event_id).await;
    }

    /// Publishes with a chosen Nats-Msg-Id, e.g. to get past the stream's duplicate window as a
    /// Meta retry hours later would.
    pub async fn publish_meta_as(&self, event: &MetaEvent, msg_id: &str) {
        let kind = ChannelKind::try_from(event.channel_kind).unwrap();
        self.publisher
            .publish(self.bus.meta_event(kind, "event"), msg_id, event)
            .await
            .unwrap();
    }

    pub async fn list(&self, workspace: &str, req: ListConversationsRequest) -> ListConversationsResponse {
        self.grpc()
            .await
            .list_conversations(with_workspace(workspace, req))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn conversations(&self, workspace: &str) -> Vec<Conversation> {
        self.list(workspace, ListConversationsRequest::default())
            .await
            .conversations
    }

    pub async fn get(&self, workspace: &str, id: &str) -> GetConversationResponse {
        self.grpc()
            .await
            .get_conversation(with_workspace(
                workspace,
                GetConversationRequest {
                    conversation_id: id.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits until `workspace` lists conversations holding `messages` messages in total.
    pub async fn wait_for_messages(&self, workspace: &str, messages: i64) {
        let result = wait_until(WAIT, || async {
            self.conversations(workspace)
                .await
                .iter()
                .map(|c| c.message_count)
                .sum::<i64>()
                == messages
        })
        .await;
        if result.is_err() {
            panic!(
                "{workspace}: expected {messages} messages, have {:?}",
                self.conversations(workspace).await
            );
        }
    }

    /// Waits until one conversation of `workspace` satisfies `check`, and returns it.
    pub async fn wait_for<F>(&self, workspace: &str, what: &str, check: F) -> GetConversationResponse
    where
        F: Fn(&GetConversationResponse) -> bool,
    {
        let last = std::sync::Mutex::new(Vec::new());
        let result = wait_until(WAIT, || {
            let last = &last;
            let check = &check;
            async move {
                let mut seen = Vec::new();
                for c in self.conversations(workspace).await {
                    let got = self.get(workspace, &c.id).await;
                    if check(&got) {
                        *last.lock().unwrap() = vec![got];
                        return true;
                    }
                    seen.push(got);
                }
                *last.lock().unwrap() = seen;
                false
            }
        })
        .await;
        let mut last = last.into_inner().unwrap();
        match result {
            Ok(()) if !last.is_empty() => last.remove(0),
            _ => panic!("{what}: not reached; last state {last:?}"),
        }
    }

    /// Waits until the durable consumer has acknowledged everything in its stream.
    pub async fn wait_consumer_caught_up(&self, consumer: &str, stream: scifer_events::StreamKind) {
        let name = self.bus.stream_name(stream);
        let result = wait_until(WAIT, || async {
            let Ok(mut s) = self.js.get_stream(&name).await else {
                return false;
            };
            let Ok(info) = s.info().await else { return false };
            let last = info.state.last_sequence;
            let Ok(mut c) = s
                .get_consumer::<jetstream::consumer::pull::Config>(consumer)
                .await
            else {
                return false;
            };
            let Ok(ci) = c.info().await else { return false };
            ci.ack_floor.stream_sequence >= last && ci.num_ack_pending == 0
        })
        .await;
        assert!(result.is_ok(), "{consumer} did not catch up");
    }
}

/// Fetches `want` messages from a durable consumer without acknowledging them, to hand them to a
/// handler as one batch.
pub async fn fetch(consumer: &PullConsumer, want: usize) -> Vec<scifer_events::Delivered> {
    let got = std::sync::Mutex::new(Vec::new());
    wait_until(WAIT, || {
        let got = &got;
        async move {
            let missing = want - got.lock().unwrap().len();
            let mut batch = consumer
                .fetch()
                .max_messages(missing)
                .expires(Duration::from_millis(200))
                .messages()
                .await
                .unwrap();
            while let Some(m) = batch.next().await {
                got.lock().unwrap().push(m.unwrap());
            }
            got.lock().unwrap().len() >= want
        }
    })
    .await
    .unwrap();
    got.into_inner().unwrap()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn with_workspace<T>(workspace: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert("x-scifer-workspace-id", workspace.parse().unwrap());
    req
}

/// A request as the gateway sends it for signed-in user `agent`.
pub fn as_agent<T>(workspace: &str, agent: &str, message: T) -> Request<T> {
    let mut req = with_workspace(workspace, message);
    req.metadata_mut()
        .insert("x-scifer-actor", format!("user:{agent}").parse().unwrap());
    req
}

/// A workspace with a Messenger channel (`ch-<account>`) and one customer message from each of
/// `contacts` (in order, one second apart, `at_ms` onwards); returns the workspace.
pub async fn workspace_with_customers(app: &TestApp, account: &str, contacts: &[&str], at_ms: i64) -> String {
    let ws = workspace();
    app.publish_channel(&connected(
        &ws,
        &format!("ch-{account}"),
        ChannelKind::Messenger,
        account,
    ))
    .await;
    for (i, contact) in contacts.iter().enumerate() {
        app.publish_meta(&inbound(
            ChannelKind::Messenger,
            account,
            contact,
            &format!("m_{account}_{contact}_first"),
            &format!("Hello from {contact}"),
            at_ms + i as i64 * 1_000,
        ))
        .await;
    }
    app.wait_for_messages(&ws, contacts.len() as i64).await;
    ws
}

pub fn workspace() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn channel(
    workspace: &str,
    channel_id: &str,
    kind: ChannelKind,
    account: &str,
    state: ChannelState,
    version: i64,
) -> ChannelEvent {
    ChannelEvent {
        state_reason: String::new(),
        parent_account_id: String::new(),
        event_id: format!("{channel_id}-v{version}"),
        workspace_id: workspace.into(),
        channel_id: channel_id.into(),
        kind: kind as i32,
        account_id: account.into(),
        display_name: format!("{account} page"),
        state: state as i32,
        version,
        at: None,
    }
}

pub fn connected(workspace: &str, channel_id: &str, kind: ChannelKind, account: &str) -> ChannelEvent {
    channel(workspace, channel_id, kind, account, ChannelState::Connected, 1)
}

fn meta(event_id: &str, kind: ChannelKind, account: &str, body: Kind) -> MetaEvent {
    MetaEvent {
        event_id: event_id.into(),
        delivery_id: "d".into(),
        received_at: None,
        channel_kind: kind as i32,
        account_id: account.into(),
        business_account_id: String::new(),
        standby: false,
        raw_item_json: "{}".into(),
        reconciled: false,
        kind: Some(body),
    }
}

pub fn inbound(
    kind: ChannelKind,
    account: &str,
    contact: &str,
    mid: &str,
    text: &str,
    at_ms: i64,
) -> MetaEvent {
    meta(
        &format!("msg:{mid}"),
        kind,
        account,
        Kind::Message(ev::InboundMessage {
            external_id: mid.into(),
            contact_id: contact.into(),
            sent_at_ms: at_ms,
            text: text.into(),
            ..Default::default()
        }),
    )
}

pub fn echo(kind: ChannelKind, account: &str, contact: &str, mid: &str, text: &str, at_ms: i64) -> MetaEvent {
    meta(
        &format!("echo:{mid}"),
        kind,
        account,
        Kind::Echo(ev::OutboundEcho {
            external_id: mid.into(),
            contact_id: contact.into(),
            sent_at_ms: at_ms,
            text: text.into(),
            app_id: "263902037430900".into(),
            ..Default::default()
        }),
    )
}

pub fn delivery(account: &str, contact: &str, watermark_ms: i64) -> MetaEvent {
    meta(
        &format!("delivery:{contact}:{watermark_ms}"),
        ChannelKind::Messenger,
        account,
        Kind::Delivery(ev::Delivery {
            contact_id: contact.into(),
            external_ids: vec![],
            watermark_ms,
        }),
    )
}

pub fn read(account: &str, contact: &str, watermark_ms: i64) -> MetaEvent {
    meta(
        &format!("read:{contact}:{watermark_ms}"),
        ChannelKind::Messenger,
        account,
        Kind::Read(ev::Read {
            contact_id: contact.into(),
            watermark_ms,
            external_id: String::new(),
        }),
    )
}

pub fn reaction(
    kind: ChannelKind,
    account: &str,
    contact: &str,
    mid: &str,
    emoji: &str,
    added: bool,
    at_ms: i64,
) -> MetaEvent {
    meta(
        &format!("reaction:{mid}:{at_ms}:{added}"),
        kind,
        account,
        Kind::Reaction(ev::Reaction {
            contact_id: contact.into(),
            target_external_id: mid.into(),
            added,
            emoji: emoji.into(),
            reaction: String::new(),
            at_ms,
        }),
    )
}

pub fn edit(account: &str, contact: &str, mid: &str, text: &str, num_edit: i32, at_ms: i64) -> MetaEvent {
    meta(
        &format!("edit:{mid}:{num_edit}"),
        ChannelKind::Messenger,
        account,
        Kind::Edit(ev::MessageEdit {
            contact_id: contact.into(),
            external_id: mid.into(),
            text: text.into(),
            num_edit,
            at_ms,
        }),
    )
}

pub fn postback(
    account: &str,
    contact: &str,
    mid: &str,
    title: &str,
    payload: &str,
    at_ms: i64,
) -> MetaEvent {
    meta(
        &format!("postback:{mid}"),
        ChannelKind::Messenger,
        account,
        Kind::Postback(ev::Postback {
            contact_id: contact.into(),
            external_id: mid.into(),
            title: title.into(),
            payload: payload.into(),
            at_ms,
        }),
    )
}

pub fn wa_status(phone: &str, wamid: &str, status: WhatsAppStatusKind, at_ms: i64) -> MetaEvent {
    let mut s = ev::WhatsAppStatus {
        external_id: wamid.into(),
        status: status as i32,
        recipient_id: "5511999990000".into(),
        at_ms,
        ..Default::default()
    };
    if status == WhatsAppStatusKind::Failed {
        s.error_code = 131047;
        s.error_title = "Re-engagement message".into();
        s.error_detail = "More than 24 hours have passed since the recipient last replied.".into();
    }
    meta(
        &format!("status:{wamid}:{}", status as i32),
        ChannelKind::Whatsapp,
        phone,
        Kind::WhatsappStatus(s),
    )
}
