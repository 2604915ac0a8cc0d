//! Automation and handoff (issue 5): rules run by the real inbox against real NATS and a real
//! database, replies through the send gate to token-vault's egress (the double from `send`),
//! the AI from scifer-ai's fake, webhooks to a local HTTP receiver.

use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::StreamExt;
use prost::Message as _;
use scifer_ai::fake::{FakeOpenAi, Script, Step};
use scifer_events::async_nats::jetstream;
use scifer_proto::{
    events::v1::{self as ev, ChannelKind, MetaEvent, meta_event::Kind},
    inbox::v1::{
        AnalyticsGroupBy, Author, AuthorKind, CreateRuleRequest, GetInboxAnalyticsRequest, HandBackRequest,
        HandOffRequest, HandlerKind, SendMessageRequest, UpdateAutomationSettingsRequest,
    },
    tokenvault::v1::EgressAction,
};
use scifer_test_support::wait_until;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use tonic::Code;

use crate::{
    helpers::*,
    send::{Scripted, VaultDouble},
};

const PAGE: &str = "PAGE_AUTO";
const PAGE_INBOX: &str = "263902037430900";
const OUR_APP: &str = "111222333";

async fn app_with(vault: &VaultDouble, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("TOKEN_VAULT_URL".to_string(), vault.url()),
        (
            "TOKEN_VAULT_CREDENTIAL".to_string(),
            crate::send::INBOX_CREDENTIAL.to_string(),
        ),
        ("TOKEN_VAULT_TIMEOUT_MS".to_string(), "2000".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut app = build_app_with(30, vars).await;
    app.start();
    app
}

/// A workspace with a connected Messenger Page.
async fn messenger(app: &TestApp) -> String {
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-auto", ChannelKind::Messenger, PAGE))
        .await;
    ws
}

async fn rule(app: &TestApp, ws: &str, json: serde_json::Value) -> String {
    app.grpc()
        .await
        .create_rule(with_workspace(
            ws,
            CreateRuleRequest {
                rule_json: json.to_string(),
                position: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .id
}

fn reply_rule(trigger: serde_json::Value, conditions: serde_json::Value, text: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "", "name": "r", "enabled": true, "trigger": trigger,
        "conditions": conditions, "actions": [{"reply": {"text": text}}],
    })
}

async fn customer_says(app: &TestApp, contact: &str, mid: &str, text: &str) {
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        contact,
        mid,
        text,
        now_ms(),
    ))
    .await;
}

/// Waits until everything published so far went through the Meta consumer and then through
/// automation (whose filtered consumer has nothing pending or unacknowledged).
async fn settled(app: &TestApp) {
    app.wait_consumer_caught_up(inbox::META_CONSUMER, scifer_events::StreamKind::Meta)
        .await;
    let stream = app.bus.stream_name(scifer_events::StreamKind::Inbox);
    for _ in 0..2 {
        let ok = wait_until(WAIT, || async {
            let Ok(s) = app.js.get_stream(&stream).await else {
                return false;
            };
            let Ok(mut c) = s
                .get_consumer::<jetstream::consumer::pull::Config>(inbox::automation::AUTOMATION_CONSUMER)
                .await
            else {
                return false;
            };
            let Ok(info) = c.info().await else { return false };
            info.num_pending == 0 && info.num_ack_pending == 0
        })
        .await;
        assert!(ok.is_ok(), "automation did not settle");
        // A send by automation publishes once more; let that round settle too.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_calls(vault: &VaultDouble, n: usize) {
    let ok = wait_until(WAIT, || async { vault.calls().len() >= n }).await;
    assert!(ok.is_ok(), "expected {n} egress calls, got {:?}", vault.calls());
}

#[tokio::test]
async fn a_keyword_rule_replies_as_automation_without_human_agent() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_auto_1")]).await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    let id = rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!("message_received"),
            serde_json::json!([{"text_contains": {"any": ["PRICE"], "case_sensitive": false}}]),
            "Hi {{contact.name|there}}, prices are on {{business.name}}'s site.",
        ),
    )
    .await;
    customer_says(&app, "PSID_A", "m_a1", "hello").await;
    settled(&app).await;
    assert!(vault.calls().is_empty(), "no keyword, no reply");

    customer_says(&app, "PSID_A", "m_a2", "what is the price?").await;
    wait_calls(&vault, 1).await;
    let (service, call) = vault.calls()[0].clone();
    assert_eq!(service, "inbox");
    assert_eq!(call.action, EgressAction::SendMessage as i32);
    assert_eq!(call.actor.as_ref().unwrap().kind, "automation_rule");
    assert_eq!(call.actor.as_ref().unwrap().id, id);
    let body = vault.body(0);
    assert_eq!(body["messaging_type"], "RESPONSE");
    assert!(
        body.get("tag").is_none(),
        "automation never sends HUMAN_AGENT: {body}"
    );
    assert_eq!(
        body["message"]["text"],
        format!("Hi there, prices are on {PAGE} page's site.")
    );
    let got = app
        .wait_for(&ws, "the automation reply stored", |c| c.messages.len() == 3)
        .await;
    let reply = &got.messages[2];
    assert_eq!(reply.author.as_ref().unwrap().kind, AuthorKind::Automation as i32);
    assert_eq!(got.conversation.unwrap().handler, HandlerKind::Automation as i32);
    settled(&app).await;
    assert_eq!(vault.calls().len(), 1, "our own reply does not trigger the rule");
}

#[tokio::test]
async fn echoes_and_outbound_messages_never_trigger_a_rule() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_out_1"),
        Scripted::Sent("m_out_2"),
        Scripted::Sent("m_out_3"),
    ])
    .await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!("message_received"),
            serde_json::json!([]),
            "auto",
        ),
    )
    .await;
    // An echo of a message the Page sent from another app.
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        PAGE,
        "PSID_E",
        "m_echo",
        "sent elsewhere",
        now_ms(),
    ))
    .await;
    settled(&app).await;
    assert!(vault.calls().is_empty(), "an echo triggered: {:?}", vault.calls());
    // A customer message is answered once: the reply (and its echo) trigger nothing more.
    customer_says(&app, "PSID_E", "m_e1", "hi").await;
    wait_calls(&vault, 1).await;
    settled(&app).await;
    assert_eq!(vault.calls().len(), 1);
    // An agent's reply through Scifer triggers nothing either.
    let conversation = app.conversations(&ws).await[0].id.clone();
    app.grpc()
        .await
        .send_message(with_workspace(
            &ws,
            SendMessageRequest {
                conversation_id: conversation.clone(),
                idempotency_key: "k1".into(),
                author: Some(Author {
                    kind: AuthorKind::Human as i32,
                    id: "agent-1".into(),
                }),
                text: "hi from a person".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    settled(&app).await;
    assert_eq!(
        vault.calls().len(),
        2,
        "only the agent's own send: {:?}",
        vault.calls()
    );
    // The agent replying took the conversation over.
    assert_eq!(
        app.get(&ws, &conversation).await.conversation.unwrap().handler,
        HandlerKind::Human as i32
    );
}

#[tokio::test]
async fn the_rate_limit_stops_the_reply_after_the_limit() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_rl_1"),
        Scripted::Sent("m_rl_2"),
        Scripted::Sent("m_rl_3"),
    ])
    .await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    app.grpc()
        .await
        .update_automation_settings(with_workspace(
            &ws,
            UpdateAutomationSettingsRequest {
                business_hours_json: String::new(),
                max_replies_per_conversation: 2,
                rate_limit_window_seconds: 600,
                rotate_webhook_secret: false,
            },
        ))
        .await
        .unwrap();
    rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!("message_received"),
            serde_json::json!([]),
            "auto",
        ),
    )
    .await;
    for i in 0..3 {
        customer_says(&app, "PSID_R", &format!("m_r{i}"), "again").await;
        settled(&app).await;
    }
    assert_eq!(vault.calls().len(), 2, "the third reply is over the limit");
}

/// Business hours in Tokyo: open all of yesterday (Tokyo's date), closed today.
fn closed_since_tokyo_midnight() -> String {
    let yesterday = (Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
        .pred_opt())
    .unwrap()
    .weekday()
    .num_days_from_monday() as usize;
    let mut weekly = vec![serde_json::json!([]); 7];
    weekly[yesterday] = serde_json::json!([["00:00:00", "00:00:00"]]);
    serde_json::json!({
        "time_zone": "Asia/Tokyo",
        "weekly": weekly,
        "away_message": "We are closed, {{contact.name|friend}}.",
    })
    .to_string()
}

#[tokio::test]
async fn the_away_message_goes_out_once_per_closed_period_in_the_workspace_time_zone() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_away_1"),
        Scripted::Sent("m_away_2"),
        Scripted::Sent("m_away_3"),
    ])
    .await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    let settings = app
        .grpc()
        .await
        .update_automation_settings(with_workspace(
            &ws,
            UpdateAutomationSettingsRequest {
                business_hours_json: closed_since_tokyo_midnight(),
                max_replies_per_conversation: 10,
                rate_limit_window_seconds: 600,
                rotate_webhook_secret: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(settings.business_hours_json.contains("Asia/Tokyo"));
    customer_says(&app, "PSID_W", "m_w1", "anyone there?").await;
    wait_calls(&vault, 1).await;
    assert_eq!(vault.body(0)["message"]["text"], "We are closed, friend.");
    customer_says(&app, "PSID_W", "m_w2", "hello?").await;
    settled(&app).await;
    assert_eq!(vault.calls().len(), 1, "once per closed period");

    // Had the last one gone out before Tokyo's midnight, this is a new closed period.
    use inbox::store::automation_entity::conversation_automation as state;
    state::Entity::update_many()
        .col_expr(
            state::Column::LastAwayAtMs,
            Expr::value(now_ms() - 2 * 24 * 3_600_000),
        )
        .filter(state::Column::WorkspaceId.eq(ws.as_str()))
        .exec(&app.store)
        .await
        .unwrap();
    customer_says(&app, "PSID_W", "m_w3", "still closed?").await;
    wait_calls(&vault, 2).await;
}

#[tokio::test]
async fn a_customer_asking_for_a_person_silences_automation_until_handed_back() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_h_1"),
        Scripted::Sent("m_h_2"),
        Scripted::Sent("m_h_3"),
    ])
    .await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    let mut audit = app.client.subscribe(app.bus.audit_event(&ws)).await.unwrap();
    app.client.flush().await.unwrap();
    rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!("message_received"),
            serde_json::json!([]),
            "bot here",
        ),
    )
    .await;
    customer_says(&app, "PSID_H", "m_h1", "can I talk to a human").await;
    let got = app
        .wait_for(&ws, "handed off", |c| {
            c.conversation.as_ref().unwrap().handler == HandlerKind::Human as i32
        })
        .await;
    settled(&app).await;
    customer_says(&app, "PSID_H", "m_h2", "hello?").await;
    settled(&app).await;
    assert!(
        vault.calls().is_empty(),
        "automation answered: {:?}",
        vault.calls()
    );

    let id = got.conversation.unwrap().id;
    let back = app
        .grpc()
        .await
        .hand_back(as_agent(
            &ws,
            "agent-1",
            HandBackRequest {
                conversation_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.handler, HandlerKind::Automation as i32);
    // No human inbox configured: no thread-control call.
    assert!(vault.calls().is_empty());
    customer_says(&app, "PSID_H", "m_h3", "ok thanks").await;
    wait_calls(&vault, 1).await;
    assert_eq!(vault.body(0)["message"]["text"], "bot here");

    // Automation's own handoff is audited by inbox, as the system; the member's hand back is the
    // gateway's to record (inbox would record it twice).
    let mut handoffs = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), audit.next()).await {
        let event = ev::AuditEvent::decode(msg.payload.as_ref()).unwrap();
        if event.action.starts_with("conversation.") {
            let actor = event.actor.unwrap_or_default();
            handoffs.push((event.action, actor.kind, event.target.unwrap_or_default().id));
        }
    }
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    assert_eq!(handoffs[0].0, "conversation.handed_off");
    assert_eq!(handoffs[0].1, ev::ActorKind::System as i32);

    // The handoff is a figure of the day's analytics (the hand back is not a handoff).
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let report = app
        .grpc()
        .await
        .get_inbox_analytics(with_workspace(
            &ws,
            GetInboxAnalyticsRequest {
                from_day: today.clone(),
                to_day: today,
                time_zone: "UTC".into(),
                group_by: AnalyticsGroupBy::Workspace as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let counted: i64 = report.rows.iter().map(|r| r.handoffs).sum();
    assert_eq!(counted, 1, "{report:?}");
    assert_eq!(handoffs[0].2, id);
}

async fn ai_app(vault: &VaultDouble, fake: &FakeOpenAi) -> TestApp {
    let url = fake.url().to_string();
    app_with(
        vault,
        &[
            ("AI_BASE_URL", url.as_str()),
            ("AI_MODEL", "gpt-test"),
            ("AI_API_KEY", "sk-auto-test"),
        ],
    )
    .await
}

fn ai_rule() -> serde_json::Value {
    serde_json::json!({
        "id": "", "name": "ai", "enabled": true, "trigger": "message_received",
        "actions": [{"suggest_with_ai": {"min_confidence": 0.8}}],
    })
}

#[tokio::test]
async fn a_confident_ai_answer_is_sent_as_ai() {
    let fake = FakeOpenAi::start(Script::new([Step::answer("We open at 8.", 0.93, false)])).await;
    let vault = VaultDouble::start(vec![Scripted::Sent("m_ai")]).await;
    let app = ai_app(&vault, &fake).await;
    let ws = messenger(&app).await;
    rule(&app, &ws, ai_rule()).await;
    customer_says(&app, "PSID_AI", "m_ai1", "when do you open?").await;
    wait_calls(&vault, 1).await;
    assert_eq!(vault.body(0)["message"]["text"], "We open at 8.");
    assert_eq!(vault.calls()[0].1.actor.as_ref().unwrap().kind, "ai");
    assert!(vault.body(0).get("tag").is_none());
    let got = app
        .wait_for(&ws, "the AI reply stored", |c| c.messages.len() == 2)
        .await;
    assert_eq!(
        got.messages[1].author.as_ref().unwrap().kind,
        AuthorKind::Ai as i32
    );
    assert_eq!(got.conversation.unwrap().handler, HandlerKind::Automation as i32);
}

#[tokio::test]
async fn an_unsure_ai_answer_hands_off_instead() {
    let fake = FakeOpenAi::start(Script::new([Step::answer("Maybe?", 0.3, false)])).await;
    let vault = VaultDouble::start(vec![Scripted::Sent("m_ai")]).await;
    let app = ai_app(&vault, &fake).await;
    let ws = messenger(&app).await;
    rule(&app, &ws, ai_rule()).await;
    customer_says(&app, "PSID_AI", "m_ai2", "my order is broken").await;
    app.wait_for(&ws, "handed off on low confidence", |c| {
        c.conversation.as_ref().unwrap().handler == HandlerKind::Human as i32
    })
    .await;
    settled(&app).await;
    assert!(vault.calls().is_empty(), "an unsure answer was sent");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn handoff_passes_and_hand_back_takes_thread_control() {
    let vault = VaultDouble::start(vec![Scripted::Sent("ok")]).await;
    let app = app_with(
        &vault,
        &[
            ("THREAD_CONTROL_HUMAN_APP_ID", PAGE_INBOX),
            ("META_APP_ID", OUR_APP),
        ],
    )
    .await;
    let ws = messenger(&app).await;
    customer_says(&app, "PSID_T", "m_t1", "hi").await;
    app.wait_for_messages(&ws, 1).await;
    let id = app.conversations(&ws).await[0].id.clone();
    let off = app
        .grpc()
        .await
        .hand_off(as_agent(
            &ws,
            "agent-7",
            HandOffRequest {
                conversation_id: id.clone(),
                reason: "billing".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.handler, HandlerKind::Human as i32);
    assert_eq!(off.thread_owner_app_id, PAGE_INBOX);
    let (_, pass) = vault.calls()[0].clone();
    assert_eq!(pass.action, EgressAction::PassThreadControl as i32);
    assert_eq!(pass.channel_id, "ch-auto");
    assert_eq!(pass.actor.as_ref().unwrap().id, "agent-7");
    let params: serde_json::Value = serde_json::from_str(&pass.params_json).unwrap();
    assert_eq!(
        params,
        serde_json::json!({"recipient": {"id": "PSID_T"}, "target_app_id": PAGE_INBOX, "metadata": "billing"})
    );
    // Handing off again changes nothing and calls nobody.
    app.grpc()
        .await
        .hand_off(as_agent(
            &ws,
            "agent-7",
            HandOffRequest {
                conversation_id: id.clone(),
                reason: String::new(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(vault.calls().len(), 1);

    let back = app
        .grpc()
        .await
        .hand_back(as_agent(
            &ws,
            "agent-7",
            HandBackRequest {
                conversation_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.handler, HandlerKind::Automation as i32);
    assert_eq!(back.thread_owner_app_id, OUR_APP);
    let (_, take) = vault.calls()[1].clone();
    assert_eq!(take.action, EgressAction::TakeThreadControl as i32);
    let params: serde_json::Value = serde_json::from_str(&take.params_json).unwrap();
    assert_eq!(params["recipient"]["id"], "PSID_T");
    assert!(params.get("target_app_id").is_none());

    // A hand off is a person's call.
    let err = app
        .grpc()
        .await
        .hand_off(with_workspace(
            &ws,
            HandOffRequest {
                conversation_id: id,
                reason: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

fn handover(contact: &str, kind: ev::HandoverKind, new_owner: &str, n: u32) -> MetaEvent {
    MetaEvent {
        event_id: format!("fb:handover:{contact}:{n}"),
        delivery_id: "d".into(),
        channel_kind: ChannelKind::Messenger as i32,
        account_id: PAGE.into(),
        raw_item_json: "{}".into(),
        kind: Some(Kind::Handover(ev::Handover {
            contact_id: contact.into(),
            kind: kind as i32,
            previous_owner_app_id: String::new(),
            new_owner_app_id: new_owner.into(),
            metadata: String::new(),
            at_ms: now_ms(),
        })),
        ..Default::default()
    }
}

async fn publish_handover(app: &TestApp, event: &MetaEvent) {
    app.publisher
        .publish(
            app.bus.meta_event(ChannelKind::Messenger, "handover"),
            &event.event_id,
            event,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn handover_events_and_standby_messages_keep_the_state() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_s_1"),
        Scripted::Sent("m_s_2"),
        Scripted::Sent("m_s_3"),
    ])
    .await;
    let app = app_with(&vault, &[("META_APP_ID", OUR_APP)]).await;
    let ws = messenger(&app).await;
    rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!("message_received"),
            serde_json::json!([]),
            "auto",
        ),
    )
    .await;
    customer_says(&app, "PSID_S", "m_s1", "hi").await;
    wait_calls(&vault, 1).await;

    // The Page Inbox takes the thread: a human answers there.
    publish_handover(&app, &handover("PSID_S", ev::HandoverKind::Take, PAGE_INBOX, 1)).await;
    let got = app
        .wait_for(&ws, "taken by the Page Inbox", |c| {
            c.conversation.as_ref().unwrap().handler == HandlerKind::Human as i32
        })
        .await;
    assert_eq!(got.conversation.unwrap().thread_owner_app_id, PAGE_INBOX);

    // Meanwhile the customer's messages reach us on standby: stored, never answered.
    let mut standby = inbound(ChannelKind::Messenger, PAGE, "PSID_S", "m_s2", "hello?", now_ms());
    standby.standby = true;
    app.publish_meta(&standby).await;
    app.wait_for(&ws, "standby message stored", |c| c.messages.len() == 3)
        .await;
    settled(&app).await;
    assert_eq!(vault.calls().len(), 1);

    // Control passed back to our app: automation again, and it answers.
    publish_handover(&app, &handover("PSID_S", ev::HandoverKind::Pass, OUR_APP, 2)).await;
    app.wait_for(&ws, "passed back to us", |c| {
        let c = c.conversation.as_ref().unwrap();
        c.handler == HandlerKind::Automation as i32 && c.thread_owner_app_id == OUR_APP
    })
    .await;
    customer_says(&app, "PSID_S", "m_s3", "back?").await;
    wait_calls(&vault, 2).await;
}

#[tokio::test]
async fn an_idle_rule_fires_once_per_idle_stretch() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_idle")]).await;
    let app = app_with(&vault, &[("AUTOMATION_IDLE_CHECK_MS", "100")]).await;
    let ws = messenger(&app).await;
    rule(
        &app,
        &ws,
        reply_rule(
            serde_json::json!({"conversation_idle": {"minutes": 1}}),
            serde_json::json!([]),
            "Still there?",
        ),
    )
    .await;
    // Quiet for two minutes already (activity is Meta's time of the message).
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_I",
        "m_i1",
        "hm",
        now_ms() - 120_000,
    ))
    .await;
    wait_calls(&vault, 1).await;
    assert_eq!(vault.body(0)["message"]["text"], "Still there?");
    // Many idle checks later, still once.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(vault.calls().len(), 1);
}

/// A one-request HTTP receiver: answers 200 and hands back the request's headers and body.
async fn receiver() -> (String, tokio::sync::oneshot::Receiver<(String, Vec<u8>)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body_start) = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&buf[..i]).to_string(), i + 4);
            }
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        while buf.len() < body_start + length {
            let n = socket.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let _ = tx.send((head, buf[body_start..body_start + length].to_vec()));
    });
    (url, rx)
}

#[tokio::test]
async fn a_webhook_rule_posts_the_event_signed_with_the_workspace_secret() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_w")]).await;
    // The receiver is a local server: this deployment lets webhooks reach private addresses.
    let app = app_with(&vault, &[("AUTOMATION_WEBHOOK_ALLOW_PRIVATE", "true")]).await;
    let ws = messenger(&app).await;
    let secret = app
        .grpc()
        .await
        .update_automation_settings(with_workspace(
            &ws,
            UpdateAutomationSettingsRequest {
                business_hours_json: String::new(),
                max_replies_per_conversation: 5,
                rate_limit_window_seconds: 600,
                rotate_webhook_secret: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook_secret;
    assert_eq!(secret.len(), 64);
    let read = app
        .grpc()
        .await
        .get_automation_settings(with_workspace(&ws, Default::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(read.webhook_secret_set);
    assert!(read.webhook_secret.is_empty(), "the secret is shown once");

    let (url, received) = receiver().await;
    let id = rule(
        &app,
        &ws,
        serde_json::json!({
            "id": "", "name": "hook", "enabled": true, "trigger": "message_received",
            "actions": [{"call_webhook": {"url": url}}],
        }),
    )
    .await;
    customer_says(&app, "PSID_WH", "m_wh1", "order 1042?").await;
    let (head, body) = tokio::time::timeout(WAIT, received).await.unwrap().unwrap();
    assert!(head.starts_with("POST /hook "), "{head}");
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("x-scifer-signature: "))
        .unwrap_or_else(|| panic!("no signature in {head}"));
    let (t, v1) = signature.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&body);
    ring::hmac::verify(&key, &signed, &hex::decode(v1).unwrap()).expect("valid signature");
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "message_received");
    assert_eq!(event["rule_id"], id);
    assert_eq!(event["workspace_id"], ws);
    assert_eq!(event["message"]["text"], "order 1042?");
}

#[tokio::test]
async fn by_default_a_webhook_to_an_internal_address_is_refused_and_audited() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m_w")]).await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    app.grpc()
        .await
        .update_automation_settings(with_workspace(
            &ws,
            UpdateAutomationSettingsRequest {
                business_hours_json: String::new(),
                max_replies_per_conversation: 5,
                rate_limit_window_seconds: 600,
                rotate_webhook_secret: true,
            },
        ))
        .await
        .unwrap();
    let mut audit = app.client.subscribe(app.bus.audit_event(&ws)).await.unwrap();
    app.client.flush().await.unwrap();
    let (url, mut received) = receiver().await;
    // The same server by a name: what the name resolves to is checked, not only literals.
    let by_name = url.replace("127.0.0.1", "localhost");
    for target in [url.as_str(), by_name.as_str()] {
        rule(
            &app,
            &ws,
            serde_json::json!({
                "id": "", "name": "hook", "enabled": true, "trigger": "message_received",
                "actions": [{"call_webhook": {"url": target}}],
            }),
        )
        .await;
    }
    customer_says(&app, "PSID_WI", "m_wi1", "hello").await;

    let mut failures = Vec::new();
    while failures.len() < 2 {
        let msg = tokio::time::timeout(WAIT, audit.next())
            .await
            .expect("no webhook failure audited in time")
            .unwrap();
        let event = ev::AuditEvent::decode(msg.payload.as_ref()).unwrap();
        if event.action == "automation.webhook_failed" {
            failures.push(event.detail);
        }
    }
    assert!(failures[0].contains("internal address"), "{failures:?}");
    assert!(failures[1].contains("no public address"), "{failures:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut received)
            .await
            .is_err(),
        "the internal receiver was called"
    );
}

#[tokio::test]
async fn an_invalid_rule_is_refused_with_its_reason() {
    let vault = VaultDouble::start(vec![Scripted::Sent("m")]).await;
    let app = app_with(&vault, &[]).await;
    let ws = messenger(&app).await;
    for (json, reason) in [
        (
            serde_json::json!({"id": "", "name": "x", "enabled": true, "trigger": "message_received", "actions": []}),
            "at least one action",
        ),
        (
            serde_json::json!({"id": "", "name": "x", "enabled": true, "trigger": "message_received",
                "actions": [{"call_webhook": {"url": "http://example.com/x"}}]}),
            "webhook URL",
        ),
        (serde_json::json!({"nope": 1}), "not a rule"),
    ] {
        let err = app
            .grpc()
            .await
            .create_rule(with_workspace(
                &ws,
                CreateRuleRequest {
                    rule_json: json.to_string(),
                    position: None,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(reason), "{}", err.message());
    }
    let rules = app
        .grpc()
        .await
        .list_rules(with_workspace(&ws, Default::default()))
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert!(rules.is_empty());
}
