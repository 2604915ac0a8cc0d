//! History, gaps and media: the backfill after a connect, the periodic reconciliation and their
//! errors, against the Meta simulator's Conversations API. token-vault is played by
//! [`SimVault`], a double that makes the Graph calls the real one would make with the channel's
//! token (the real vault's egress and FetchMedia are tested in its own suite).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{TimeZone, Utc};
use scifer_meta_sim::{
    AppSecret,
    graph::{GraphSim, GraphSimConfig},
};
use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1::{ChannelSync, GetChannelSyncRequest, Message},
    tokenvault::v1::{
        self as vault, EgressAction, EgressRequest, EgressResponse, GraphFailure, egress_response,
        graph_failure,
        token_vault_service_server::{TokenVaultService, TokenVaultServiceServer},
    },
};
use scifer_test_support::wait_until;
use tonic::{Request, Response, Status};

use crate::{helpers::*, send::INBOX_CREDENTIAL};

/// A channel the double holds a token for.
#[derive(Clone)]
pub struct SimChannel {
    pub kind: ChannelKind,
    /// The Page (Messenger, Instagram) the conversations are listed on, or the phone number id.
    pub node: String,
    pub token: String,
}

/// token-vault's egress and FetchMedia, played against an in-process [`GraphSim`].
#[derive(Clone)]
pub struct SimVault {
    pub sim: GraphSim,
    pub sim_url: String,
    url: Arc<Mutex<String>>,
    channels: Arc<Mutex<HashMap<String, SimChannel>>>,
    /// (action, params) of every egress call, and the media ids asked for.
    pub egress_calls: Arc<Mutex<Vec<(i32, String)>>>,
    pub media_calls: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl SimVault {
    pub async fn start() -> Self {
        scifer_plumbing::install_crypto_provider();
        let sim = GraphSim::new(GraphSimConfig {
            require_appsecret_proof: false,
            ..GraphSimConfig::new("1234567890", AppSecret::new("history-app-secret"))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", listener.local_addr().unwrap());
        // Media links point here from the start, not once the server task first runs.
        sim.set_public_url(sim_url.clone());
        let serving = sim.clone();
        tokio::spawn(async move { serving.serve(listener, std::future::pending()).await.ok() });
        let double = Self {
            sim,
            sim_url,
            url: Arc::default(),
            channels: Arc::default(),
            egress_calls: Arc::default(),
            media_calls: Arc::default(),
            http: reqwest::Client::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *double.url.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let served = double.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TokenVaultServiceServer::new(served))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        double
    }

    pub fn add_channel(&self, channel_id: &str, channel: SimChannel) {
        self.channels.lock().unwrap().insert(channel_id.into(), channel);
    }

    /// The settings that point inbox at this double, plus `extra`.
    pub fn settings(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let url = self.url.lock().unwrap().clone();
        [
            ("TOKEN_VAULT_URL", url.as_str()),
            ("TOKEN_VAULT_CREDENTIAL", INBOX_CREDENTIAL),
            ("TOKEN_VAULT_TIMEOUT_MS", "5000"),
            ("HISTORY_POLL_MS", "50"),
            ("MEDIA_POLL_MS", "50"),
            ("MEDIA_RETRY_BASE_MS", "50"),
            ("MEDIA_FETCH_TIMEOUT_MS", "5000"),
            ("MEDIA_URL_HOSTS", "127.0.0.1"),
            ("RECONCILE_INTERVAL_SECS", "0"),
        ]
        .iter()
        .chain(extra.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn list_calls(&self) -> usize {
        self.egress_calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == EgressAction::ListConversations as i32)
            .count()
    }

    fn channel(&self, id: &str) -> Result<SimChannel, Status> {
        self.channels
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found("channel not connected"))
    }

    fn authorise<T>(request: &Request<T>) -> Result<(), Status> {
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if bearer == format!("Bearer {INBOX_CREDENTIAL}") {
            Ok(())
        } else {
            Err(Status::unauthenticated("service credential missing or not valid"))
        }
    }
}

/// Meta's error as the vault classifies it (meta-platform.md §8), with the retry-after the
/// usage headers give.
fn failure(status: u16, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) -> GraphFailure {
    let code = body["error"]["code"].as_i64().unwrap_or(0);
    let kind = match code {
        4 | 17 | 32 | 613 | 80_000..=80_099 => graph_failure::Kind::Throttled,
        190 => graph_failure::Kind::TokenInvalid,
        10 | 200..=299 => graph_failure::Kind::Permission,
        _ => graph_failure::Kind::InvalidRequest,
    };
    let minutes = headers
        .values()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .find_map(|v| {
            v.as_object()?
                .values()
                .find_map(|x| x[0]["estimated_time_to_regain_access"].as_i64())
        })
        .unwrap_or(0);
    GraphFailure {
        kind: kind as i32,
        code,
        subcode: body["error"]["error_subcode"].as_i64().unwrap_or(0),
        message: body["error"]["message"].as_str().unwrap_or_default().to_string(),
        fbtrace_id: String::new(),
        retry_after_ms: minutes * 60_000,
        http_status: u32::from(status),
    }
}

#[tonic::async_trait]
impl TokenVaultService for SimVault {
    type FetchMediaStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<vault::MediaChunk, Status>> + Send + 'static>>;

    async fn egress(&self, request: Request<EgressRequest>) -> Result<Response<EgressResponse>, Status> {
        Self::authorise(&request)?;
        let r = request.into_inner();
        self.egress_calls
            .lock()
            .unwrap()
            .push((r.action, r.params_json.clone()));
        if r.action != EgressAction::ListConversations as i32 {
            return Err(Status::unimplemented("double: only ListConversations"));
        }
        let ch = self.channel(&r.channel_id)?;
        let params: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&r.params_json).unwrap();
        let platform = if ch.kind == ChannelKind::Instagram {
            "instagram"
        } else {
            "messenger"
        };
        let mut query = vec![
            ("platform".to_string(), platform.to_string()),
            ("access_token".to_string(), ch.token.clone()),
        ];
        for key in ["fields", "limit", "after"] {
            match params.get(key) {
                Some(serde_json::Value::String(s)) => query.push((key.into(), s.clone())),
                Some(serde_json::Value::Number(n)) => query.push((key.into(), n.to_string())),
                _ => {}
            }
        }
        let response = self
            .http
            .get(format!("{}/v23.0/{}/conversations", self.sim_url, ch.node))
            .query(&query)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let outcome = if status == 200 {
            egress_response::Outcome::ResultJson(body.to_string())
        } else {
            egress_response::Outcome::Failure(failure(status, &headers, &body))
        };
        Ok(Response::new(EgressResponse {
            outcome: Some(outcome),
        }))
    }

    async fn fetch_media(
        &self,
        request: Request<vault::FetchMediaRequest>,
    ) -> Result<Response<Self::FetchMediaStream>, Status> {
        Self::authorise(&request)?;
        let r = request.into_inner();
        self.media_calls.lock().unwrap().push(r.media_id.clone());
        let ch = self.channel(&r.channel_id)?;
        let described: serde_json::Value = self
            .http
            .get(format!("{}/v23.0/{}", self.sim_url, r.media_id))
            .query(&[("phone_number_id", ch.node.as_str())])
            .bearer_auth(&ch.token)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let Some(url) = described["url"].as_str() else {
            return Err(Status::not_found("media not found"));
        };
        let bytes = self
            .http
            .get(url)
            .bearer_auth(&ch.token)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let info = vault::MediaChunk {
            part: Some(vault::media_chunk::Part::Info(vault::MediaInfo {
                mime_type: described["mime_type"].as_str().unwrap_or_default().into(),
                sha256: described["sha256"].as_str().unwrap_or_default().into(),
                file_size: bytes.len() as u64,
            })),
        };
        // Two chunks, as a real download would come.
        let half = bytes.len() / 2;
        let parts = vec![
            Ok(info),
            Ok(vault::MediaChunk {
                part: Some(vault::media_chunk::Part::Data(bytes[..half].to_vec())),
            }),
            Ok(vault::MediaChunk {
                part: Some(vault::media_chunk::Part::Data(bytes[half..].to_vec())),
            }),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(parts))))
    }

    async fn get_info(
        &self,
        _: Request<vault::GetInfoRequest>,
    ) -> Result<Response<vault::GetInfoResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn start_connect(
        &self,
        _: Request<vault::StartConnectRequest>,
    ) -> Result<Response<vault::StartConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn complete_connect(
        &self,
        _: Request<vault::CompleteConnectRequest>,
    ) -> Result<Response<vault::CompleteConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn confirm_connect(
        &self,
        _: Request<vault::ConfirmConnectRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn connect_whats_app(
        &self,
        _: Request<vault::ConnectWhatsAppRequest>,
    ) -> Result<Response<vault::ConnectResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn list_channels(
        &self,
        _: Request<vault::ListChannelsRequest>,
    ) -> Result<Response<vault::ListChannelsResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn disconnect_channel(
        &self,
        _: Request<vault::DisconnectChannelRequest>,
    ) -> Result<Response<vault::DisconnectChannelResponse>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn check_channel(
        &self,
        _: Request<vault::CheckChannelRequest>,
    ) -> Result<Response<vault::Channel>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn rotate_data_key(
        &self,
        _: Request<vault::RotateDataKeyRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        Err(Status::unimplemented("double"))
    }
    async fn get_rotation_status(
        &self,
        _: Request<vault::GetRotationStatusRequest>,
    ) -> Result<Response<vault::RotationStatus>, Status> {
        Err(Status::unimplemented("double"))
    }
}

/// A simulated Page (with a linked Instagram account) and a token that manages both.
pub struct World {
    pub page: String,
    pub ig: String,
    pub token: String,
}

pub fn world(vault: &SimVault) -> World {
    let user = vault.sim.add_user("Owner", &[]);
    let page = vault.sim.add_page(&user.id, "History Shop").id;
    let ig = vault.sim.link_instagram(&page, "history.shop");
    let token = vault.sim.issue_user_token(
        &user.id,
        &[
            "pages_messaging",
            "pages_show_list",
            "instagram_manage_messages",
            "instagram_basic",
        ],
        true,
    );
    World { page, ig, token }
}

fn at(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap()
}

pub async fn sync(app: &TestApp, ws: &str, channel_id: &str) -> ChannelSync {
    try_sync(app, ws, channel_id).await.unwrap()
}

async fn try_sync(app: &TestApp, ws: &str, channel_id: &str) -> Result<ChannelSync, Status> {
    Ok(app
        .grpc()
        .await
        .get_channel_sync(with_workspace(
            ws,
            GetChannelSyncRequest {
                channel_id: channel_id.into(),
            },
        ))
        .await?
        .into_inner())
}

pub async fn wait_sync<F: Fn(&ChannelSync) -> bool>(
    app: &TestApp,
    ws: &str,
    channel_id: &str,
    what: &str,
    check: F,
) -> ChannelSync {
    // NOT_FOUND until the consumer has applied the channel's event.
    let done = wait_until(WAIT, || async {
        try_sync(app, ws, channel_id).await.is_ok_and(|s| check(&s))
    })
    .await;
    let last = try_sync(app, ws, channel_id).await;
    assert!(done.is_ok(), "{what}: not reached; last {last:?}");
    last.unwrap()
}

/// Every message of the workspace, by mid.
pub async fn messages(app: &TestApp, ws: &str) -> HashMap<String, Message> {
    let mut all = HashMap::new();
    for c in app.conversations(ws).await {
        for m in app.get(ws, &c.id).await.messages {
            all.insert(m.external_id.clone(), m);
        }
    }
    all
}

pub async fn spawn(vault: &SimVault, extra: &[(&str, &str)]) -> TestApp {
    let mut app = build_app_with(30, vault.settings(extra)).await;
    app.start();
    app
}

#[tokio::test]
async fn backfill_on_connect_stores_the_history_marked_reconciled_and_instagram_capped_at_20() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    let t0 = now_ms() - 3_600_000;
    for (i, psid) in ["PSID-A", "PSID-B"].iter().enumerate() {
        for n in 0..3 {
            let at_ms = t0 + (i as i64 * 10 + n) * 1_000;
            vault.sim.record_customer_message(
                &w.page,
                psid,
                &format!("m_{psid}_{n}"),
                &format!("{psid} {n}"),
                at(at_ms),
            );
        }
    }
    vault.sim.add_instagram_user(&w.ig, "IGSID-1");
    for n in 0..25 {
        vault.sim.record_customer_message(
            &w.ig,
            "IGSID-1",
            &format!("ig_m_{n:02}"),
            &format!("ig {n}"),
            at(t0 + n * 1_000),
        );
    }
    vault.add_channel(
        "ch-fb",
        SimChannel {
            kind: ChannelKind::Messenger,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    vault.add_channel(
        "ch-ig",
        SimChannel {
            kind: ChannelKind::Instagram,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    let app = spawn(&vault, &[("BACKFILL_MAX_MESSAGES_PER_CONVERSATION", "50")]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    app.publish_channel(&connected(&ws, "ch-ig", ChannelKind::Instagram, &w.ig))
        .await;

    app.wait_for_messages(&ws, 6 + 20).await;
    let all = messages(&app, &ws).await;
    assert_eq!(all.len(), 26);
    assert!(
        all.values().all(|m| m.reconciled),
        "every backfilled message is marked reconciled"
    );
    // Instagram shows the newest 20: ig_m_05..ig_m_24.
    assert!(!all.contains_key("ig_m_04"));
    assert!(all.contains_key("ig_m_05") && all.contains_key("ig_m_24"));
    assert_eq!(all["m_PSID-B_2"].text, "PSID-B 2");

    let ig = wait_sync(&app, &ws, "ch-ig", "instagram backfill recorded", |s| {
        !s.backfill_pending && s.runs == 1
    })
    .await;
    assert_eq!(ig.last_run_kind, "backfill");
    assert!(ig.supported);
    assert!(ig.limits.contains("20 most recent"), "{}", ig.limits);
    assert_eq!(
        (ig.conversations_seen, ig.messages_seen, ig.messages_published),
        (1, 20, 20)
    );
    assert_eq!(ig.reconciled_messages, 20);
    assert!(ig.last_error.is_empty());
    assert_eq!(ig.high_water_at.unwrap().seconds, (t0 + 24_000) / 1000);
    let fb = sync(&app, &ws, "ch-fb").await;
    assert_eq!(
        (fb.conversations_seen, fb.messages_seen, fb.reconciled_messages),
        (2, 6, 6)
    );

    // A version bump of a channel that stays connected asks for no second backfill.
    let mut bumped = connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page);
    bumped.version = 2;
    bumped.event_id = "ch-fb-v2".into();
    app.publish_channel(&bumped).await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, scifer_events::StreamKind::Channels)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fb = sync(&app, &ws, "ch-fb").await;
    assert_eq!((fb.runs, fb.backfill_pending), (1, false));

    // A channel of another workspace is not found.
    let other = app
        .grpc()
        .await
        .get_channel_sync(with_workspace(
            &workspace(),
            GetChannelSyncRequest {
                channel_id: "ch-fb".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_message_and_the_same_message_from_reconciliation_give_one_row() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    vault.add_channel(
        "ch-fb",
        SimChannel {
            kind: ChannelKind::Messenger,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    let app = spawn(&vault, &[("RECONCILE_INTERVAL_SECS", "1")]).await;
    let ws = workspace();
    let t0 = now_ms() - 60_000;
    // Delivered by webhook first, then read back by the backfill.
    vault
        .sim
        .record_customer_message(&w.page, "PSID-1", "m_hook_first", "by webhook", at(t0));
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        &w.page,
        "PSID-1",
        "m_hook_first",
        "by webhook",
        t0,
    ))
    .await;
    wait_sync(&app, &ws, "ch-fb", "backfill ran", |s| {
        s.runs >= 1 && !s.backfill_pending
    })
    .await;
    // Read back first, then delivered by a (late) webhook.
    vault.sim.record_customer_message(
        &w.page,
        "PSID-1",
        "m_sync_first",
        "by reconciliation",
        at(t0 + 1_000),
    );
    wait_sync(&app, &ws, "ch-fb", "a reconciliation ran", |s| s.runs >= 2).await;
    app.wait_for_messages(&ws, 2).await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        &w.page,
        "PSID-1",
        "m_sync_first",
        "by reconciliation",
        t0 + 1_000,
    ))
    .await;
    wait_sync(&app, &ws, "ch-fb", "another reconciliation ran", |s| s.runs >= 3).await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, scifer_events::StreamKind::Meta)
        .await;

    let all = messages(&app, &ws).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(app.conversations(&ws).await[0].message_count, 2);
    assert!(!all["m_hook_first"].reconciled, "the webhook came first");
    assert!(
        all["m_sync_first"].reconciled,
        "only reconciliation found it at first"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_gap_is_filled_by_the_periodic_reconciliation() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    vault.add_channel(
        "ch-fb",
        SimChannel {
            kind: ChannelKind::Messenger,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    let app = spawn(
        &vault,
        &[
            ("RECONCILE_INTERVAL_SECS", "1"),
            ("RECONCILE_LOOKBACK_HOURS", "1"),
        ],
    )
    .await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    wait_sync(&app, &ws, "ch-fb", "empty backfill ran", |s| {
        s.runs >= 1 && !s.backfill_pending
    })
    .await;
    assert_eq!(app.conversations(&ws).await.len(), 0);
    // Meta has these; no webhook ever said so. One is older than the lookback.
    let now = now_ms();
    vault.sim.record_customer_message(
        &w.page,
        "PSID-9",
        "m_too_old",
        "two hours ago",
        at(now - 2 * 3_600_000),
    );
    vault
        .sim
        .record_customer_message(&w.page, "PSID-9", "m_gap", "never delivered", at(now - 5_000));
    app.wait_for_messages(&ws, 1).await;
    let all = messages(&app, &ws).await;
    assert!(all["m_gap"].reconciled);
    assert!(!all.contains_key("m_too_old"), "outside the lookback");
    let s = wait_sync(&app, &ws, "ch-fb", "reconcile recorded", |s| {
        s.last_run_kind == "reconcile" && s.reconciled_messages == 1
    })
    .await;
    assert!(s.last_error.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn throttling_stops_the_run_with_the_error_recorded_and_no_retry_before_its_time() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    vault
        .sim
        .record_customer_message(&w.page, "PSID-1", "m_1", "hello", at(now_ms() - 1_000));
    vault.sim.throttle(&w.page, 32, 7, None);
    vault.add_channel(
        "ch-fb",
        SimChannel {
            kind: ChannelKind::Messenger,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    let app = spawn(&vault, &[("RECONCILE_INTERVAL_SECS", "1")]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    let s = wait_sync(&app, &ws, "ch-fb", "throttled run recorded", |s| s.runs == 1).await;
    assert!(s.last_error.starts_with("throttled: code 32"), "{}", s.last_error);
    assert!(s.backfill_pending, "the backfill is still owed");
    let next = s.next_run_at.unwrap().seconds * 1000;
    assert!(
        next >= now_ms() + 6 * 60_000,
        "waits for Meta's 7 minutes: {next}"
    );
    // Many polls later: still the one call, no loop.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(vault.list_calls(), 1);
    assert_eq!(sync(&app, &ws, "ch-fb").await.runs, 1);
    assert!(app.conversations(&ws).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_token_stops_the_run_with_the_error_recorded() {
    let vault = SimVault::start().await;
    let w = world(&vault);
    vault.sim.invalidate_token(&w.token, 460);
    vault.add_channel(
        "ch-fb",
        SimChannel {
            kind: ChannelKind::Messenger,
            node: w.page.clone(),
            token: w.token.clone(),
        },
    );
    let app = spawn(&vault, &[("RECONCILE_INTERVAL_SECS", "1")]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, &w.page))
        .await;
    let s = wait_sync(&app, &ws, "ch-fb", "refused run recorded", |s| s.runs == 1).await;
    assert!(
        s.last_error.starts_with("token_invalid: code 190"),
        "{}",
        s.last_error
    );
    assert!(!s.last_error.contains(&w.token), "no token in the status");
    assert!(s.next_run_at.unwrap().seconds * 1000 >= now_ms() + 30 * 60_000);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(vault.list_calls(), 1, "no retry loop");
    app.stop().await;
}

#[tokio::test]
async fn whatsapp_has_no_history_to_read() {
    let vault = SimVault::start().await;
    let app = spawn(&vault, &[]).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-wa", ChannelKind::Whatsapp, "PHONE-1"))
        .await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, scifer_events::StreamKind::Channels)
        .await;
    let s = sync(&app, &ws, "ch-wa").await;
    assert!(!s.supported);
    assert!(s.limits.contains("WhatsApp has no API"), "{}", s.limits);
    assert!(!s.backfill_pending);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(vault.list_calls(), 0);
    app.stop().await;
}
