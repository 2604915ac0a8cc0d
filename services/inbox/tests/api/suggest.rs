//! AI-suggested replies against scifer-ai's OpenAI-compatible fake: what the provider is given
//! (the newest messages without the team's notes, the canned responses rendered, the key), what
//! comes back, how failures read, and that nothing is sent or stored.

use scifer_ai::fake::{FakeOpenAi, Script, Step};
use scifer_proto::{
    events::v1::{ChannelKind, meta_event::Kind},
    inbox::v1::{AddNoteRequest, SuggestReplyRequest, SuggestReplyResponse},
};
use serde_json::Value;
use tonic::{Code, Status};

use crate::helpers::*;

const KEY: &str = "sk-test-inbox-7c1d";
const PAGE: &str = "PAGE_1";

async fn spawn_with_ai(fake: &FakeOpenAi) -> TestApp {
    let url = fake.url().to_string();
    spawn_app_with(&[
        ("AI_BASE_URL", url.as_str()),
        ("AI_MODEL", "gpt-test"),
        ("AI_API_KEY", KEY),
        ("AI_TIMEOUT_MS", "5000"),
    ])
    .await
}

async fn suggest(app: &TestApp, ws: &str, id: &str) -> Result<SuggestReplyResponse, Status> {
    app.grpc()
        .await
        .suggest_reply(as_agent(
            ws,
            "agent-1",
            SuggestReplyRequest {
                conversation_id: id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A conversation with Ana: 24 messages back and forth, the newest a customer question, plus a
/// note of the team; returns the workspace and the conversation id.
async fn conversation(app: &TestApp) -> (String, String) {
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, PAGE))
        .await;
    let t0 = now_ms() - 3_600_000;
    for i in 0..24 {
        let at = t0 + i * 60_000;
        let event = if i % 2 == 0 {
            let mut e = inbound(
                ChannelKind::Messenger,
                PAGE,
                "PSID_ANA",
                &format!("m_{i}"),
                &format!("customer line {i}"),
                at,
            );
            if let Some(Kind::Message(m)) = &mut e.kind {
                m.contact_name = "Ana Souza".into();
            }
            e
        } else {
            echo(
                ChannelKind::Messenger,
                PAGE,
                "PSID_ANA",
                &format!("m_{i}"),
                &format!("agent line {i}"),
                at,
            )
        };
        app.publish_meta(&event).await;
    }
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_ANA",
        "m_last",
        "Are you open on Sundays?",
        t0 + 30 * 60_000,
    ))
    .await;
    app.wait_for_messages(&ws, 25).await;
    let id = app.conversations(&ws).await.remove(0).id;
    app.grpc()
        .await
        .add_note(as_agent(
            &ws,
            "agent-1",
            AddNoteRequest {
                conversation_id: id.clone(),
                text: "internal: she is a difficult customer".into(),
            },
        ))
        .await
        .unwrap();
    (ws, id)
}

fn contents(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn without_a_provider_suggestions_are_disabled() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = app.conversations(&ws).await.remove(0).id;
    let disabled = suggest(&app, &ws, &id).await.unwrap_err();
    assert_eq!(disabled.code(), Code::FailedPrecondition);
    assert_eq!(disabled.message(), "AI suggestions are not configured");
    app.stop().await;
}

#[tokio::test]
async fn a_suggestion_is_drafted_from_the_newest_messages_and_the_canned_responses_and_never_sent() {
    let fake = FakeOpenAi::start(
        Script::new([Step::answer("We open 8-13 on Sundays.", 0.82, false)]).with_api_key(KEY),
    )
    .await;
    let app = spawn_with_ai(&fake).await;
    let (ws, id) = conversation(&app).await;
    crate::canned::create(&app, &ws, "address", "Rue Haute 12, Brussels.")
        .await
        .unwrap();
    crate::canned::create(
        &app,
        &ws,
        "sunday",
        "Hi {{contact.first_name|there}}! On Sundays we are open 8-13.",
    )
    .await
    .unwrap();
    let before = app.get(&ws, &id).await;

    let suggestion = suggest(&app, &ws, &id).await.unwrap();
    assert_eq!(suggestion.text, "We open 8-13 on Sundays.");
    assert!((suggestion.confidence - 0.82).abs() < 1e-6);
    assert!(!suggestion.wants_human);
    assert_eq!(suggestion.model, "gpt-test");
    assert!(!suggestion.truncated);

    let recorded = fake.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = &recorded[0].body;
    assert_eq!(body["model"], "gpt-test");
    let turns = contents(body);
    let (system, history) = turns.split_first().unwrap();
    assert_eq!(system.0, "system");
    // The newest 20 messages, oldest first, ending with the customer's question.
    assert_eq!(history.len(), 20, "{history:#?}");
    assert_eq!(history[0].1, "agent line 5");
    let last = history.last().unwrap();
    assert_eq!(last.0, "user");
    assert!(last.1.contains("Are you open on Sundays?"), "{}", last.1);
    assert!(
        turns.iter().all(|(_, c)| !c.contains("difficult customer")),
        "a note reached the provider"
    );
    // The canned responses, rendered for Ana, the most relevant first.
    let sunday = system.1.find("/sunday").expect("the sunday response");
    let address = system.1.find("/address").expect("the address response");
    assert!(sunday < address, "{}", system.1);
    assert!(
        system.1.contains("Hi Ana! On Sundays we are open 8-13."),
        "{}",
        system.1
    );
    assert!(system.1.contains("Ana Souza"), "{}", system.1);

    // Nothing was sent or stored.
    let after = app.get(&ws, &id).await;
    assert_eq!(after.messages, before.messages);
    assert_eq!(after.conversation, before.conversation);
    app.stop().await;
}

#[tokio::test]
async fn provider_failures_are_unavailable_or_internal_and_unknown_conversations_not_found() {
    let fake = FakeOpenAi::start(Script::new([
        Step::status(503),
        Step::rate_limited("2"),
        Step::content("{\"reply\": \"cut o"),
        Step::status(401),
    ]))
    .await;
    let app = spawn_with_ai(&fake).await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = app.conversations(&ws).await.remove(0).id;
    for want in [
        Code::Unavailable,
        Code::Unavailable,
        Code::Unavailable,
        Code::Internal,
    ] {
        let got = suggest(&app, &ws, &id).await.unwrap_err();
        assert_eq!(got.code(), want, "{got:?}");
        assert!(!got.message().contains(KEY));
    }
    let missing = suggest(&app, &ws, "no-such-conversation").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let elsewhere = suggest(&app, &workspace(), &id).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    assert_eq!(
        fake.requests().len(),
        4,
        "unknown conversations never reach the provider"
    );
    app.stop().await;
}
