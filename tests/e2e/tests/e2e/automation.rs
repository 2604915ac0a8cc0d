//! Issue 5 end to end: automation rules and handoff with the real services. The owner manages
//! rules and hands conversations back over gRPC-web through the gateway; customers write through
//! the simulator's signed webhooks into webhook-ingest; inbox's automation answers through the
//! send gate and token-vault to the simulator's Send API, and passes or takes Messenger thread
//! control through token-vault to the simulator's Conversation Routing endpoints.

use std::time::Duration;

use scifer_events::{StreamKind, async_nats::jetstream};
use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    graph::PAGE_INBOX_APP_ID,
    webhooks::{Delivery, SendMode},
};
use scifer_proto::{
    events::v1::ChannelKind,
    gateway::v1::{CreateRuleRequest, GetConversationRequest, HandBackRequest},
    inbox::v1::{
        self as inbox, AuthorKind, Conversation, DeliveryStatus, GetConversationResponse, HandlerKind,
        Message,
    },
};

use crate::helpers::{Stack, StackOptions};

const WAIT: Duration = Duration::from_secs(15);

/// inbox's durable consumers: Meta events in, and automation after each commit.
const INBOX_META_CONSUMER: &str = "inbox-meta";
const AUTOMATION_CONSUMER: &str = "inbox-automation";

/// A rule the owner writes in the frontend: answer a keyword with a rendered text.
fn keyword_rule(keyword: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "", "name": format!("{keyword} answer"), "enabled": true,
        "trigger": "message_received",
        "conditions": [{"text_contains": {"any": [keyword], "case_sensitive": false}}],
        "actions": [{"reply": {"text": text}}],
    })
}

async fn create_rule(stack: &Stack, rule: serde_json::Value) -> String {
    stack
        .grpc_web_client()
        .create_rule(CreateRuleRequest {
            workspace_id: stack.workspace.clone(),
            rule: Some(inbox::CreateRuleRequest {
                rule_json: rule.to_string(),
                position: None,
            }),
        })
        .await
        .unwrap_or_else(|e| panic!("create a rule over gRPC-web: {e}\n{}", stack.logs()))
        .into_inner()
        .id
}

/// A demo customer writes on the demo Page, now: the simulator records it (window, thread) and
/// its signed webhook goes to webhook-ingest.
async fn customer_writes(stack: &Stack, psid: &str, text: &str) {
    let delivery: Delivery = stack.sim.inbound_text(demo::DEMO_PAGE_ID, psid, text);
    let outcome = stack
        .sender()
        .send(&stack.webhook_url, &delivery, &SendMode::Valid)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
}

async fn get_conversation(stack: &Stack, id: &str) -> GetConversationResponse {
    stack
        .grpc_web_client()
        .get_conversation(GetConversationRequest {
            workspace_id: stack.workspace.clone(),
            query: Some(inbox::GetConversationRequest {
                conversation_id: id.into(),
                page_size: 50,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap_or_else(|e| panic!("get the conversation over gRPC-web: {e}\n{}", stack.logs()))
        .into_inner()
}

async fn messenger_conversation(stack: &Stack) -> Conversation {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(c) = stack
            .conversations()
            .await
            .into_iter()
            .find(|c| c.channel_kind == ChannelKind::Messenger as i32)
        {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Messenger conversation\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the conversation as the owner sees it until `check` holds.
async fn wait_for(
    stack: &Stack,
    conversation_id: &str,
    what: &str,
    check: impl Fn(&GetConversationResponse) -> bool,
) -> GetConversationResponse {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = get_conversation(stack, conversation_id).await;
        if check(&got) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never reached; last {got:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn handler(got: &GetConversationResponse) -> i32 {
    got.conversation.as_ref().map_or(0, |c| c.handler)
}

fn has_text(got: &GetConversationResponse, text: &str) -> bool {
    got.messages.iter().any(|m| m.text == text)
}

fn accepted_by_meta(m: &Message) -> bool {
    [
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
    ]
    .iter()
    .any(|s| m.status == *s as i32)
}

fn author(m: &Message) -> i32 {
    m.author.as_ref().map_or(0, |a| a.kind)
}

/// Waits until everything webhook-ingest accepted so far went through inbox and then through
/// automation, so that the absence of a send means automation decided not to answer (not that it
/// has not run yet). A message inbox handles publishes its InboxEvents before acknowledging the
/// Meta event, and automation sends before acknowledging those; two rounds cover the InboxEvents
/// of automation's own send.
async fn settled(stack: &Stack) {
    for _ in 0..2 {
        caught_up(stack, StreamKind::Meta, INBOX_META_CONSUMER).await;
        caught_up(stack, StreamKind::Inbox, AUTOMATION_CONSUMER).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `consumer` has been handed and has acknowledged every message of its filter on `stream`.
async fn caught_up(stack: &Stack, stream: StreamKind, consumer: &str) {
    let name = stack.bus.stream_name(stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(s) = stack.js.get_stream(&name).await
            && let Ok(mut c) = s
                .get_consumer::<jetstream::consumer::pull::Config>(consumer)
                .await
            && let Ok(info) = c.info().await
            && info.num_pending == 0
            && info.num_ack_pending == 0
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{consumer} on {name} never caught up\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_answers_a_customer_through_the_vault_and_meta_as_automation() {
    let stack = Stack::start().await;
    create_rule(
        &stack,
        keyword_rule("opening hours", "{{business.name}} opens at 7, every day."),
    )
    .await;
    let ana = &DEMO_CUSTOMERS[0];

    // A message without the keyword: stored, not answered.
    customer_writes(&stack, ana.psid, "Do you make gluten-free bread?").await;
    let conv = messenger_conversation(&stack).await;
    wait_for(&stack, &conv.id, "the first message stored", |c| {
        has_text(c, "Do you make gluten-free bread?")
    })
    .await;
    settled(&stack).await;
    assert!(
        stack.sim.sent_messages().is_empty(),
        "a message without the keyword was answered: {:?}",
        stack.sim.sent_messages()
    );

    // The keyword: one Send API call with the rendered text, as a standard response.
    customer_writes(&stack, ana.psid, "What are your OPENING HOURS?").await;
    let expected = format!("{} opens at 7, every day.", demo::DEMO_PAGE_NAME);
    // Stored PENDING first; Meta's answer (applied by inbox's consumer) makes it SENT.
    let got = wait_for(&stack, &conv.id, "the rule's reply accepted by Meta", |c| {
        c.messages
            .iter()
            .any(|m| m.text == expected && accepted_by_meta(m))
    })
    .await;
    let reply = got.messages.iter().find(|m| m.text == expected).unwrap();
    assert_eq!(author(reply), AuthorKind::Automation as i32, "{reply:?}");
    assert!(accepted_by_meta(reply), "Meta accepted it: {reply:?}");
    assert_eq!(handler(&got), HandlerKind::Automation as i32);
    let sent = stack.sim.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].sender_object_id, demo::DEMO_PAGE_ID);
    assert_eq!(sent[0].recipient, ana.psid);
    assert_eq!(sent[0].body["message"]["text"], expected.as_str());
    assert_eq!(sent[0].body["messaging_type"], "RESPONSE");
    assert!(
        sent[0].body.get("tag").is_none(),
        "automation never sends HUMAN_AGENT: {}",
        sent[0].body
    );
    assert_eq!(reply.external_id, sent[0].message_id);

    // Meta's receipts come back through webhook-ingest and move the same message forward.
    wait_for(&stack, &conv.id, "the reply delivered", |c| {
        c.messages.iter().any(|m| {
            m.id == reply.id
                && (m.status == DeliveryStatus::Delivered as i32 || m.status == DeliveryStatus::Read as i32)
        })
    })
    .await;

    // Meta echoed the reply (the Page "wrote" it, keyword included); once inbox and automation
    // have handled everything, the echo was neither a new message nor a reason to answer again.
    let echoed = |stack: &Stack| {
        stack.sim.emitted_webhooks().iter().any(|w| {
            w.field == "message_echoes"
                && w.body.to_string().contains(&sent[0].message_id)
                && w.status == Some(200)
        })
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !echoed(&stack) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Meta never echoed the reply: {:?}",
            stack.sim.emitted_webhooks()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled(&stack).await;
    assert_eq!(
        stack.sim.sent_messages().len(),
        1,
        "the rule's own echo triggered it: {:?}",
        stack.sim.sent_messages()
    );
    let all = get_conversation(&stack, &conv.id).await.messages;
    assert_eq!(all.len(), 3, "two customer messages and one reply: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_asking_for_a_person_is_handed_off_with_thread_control_and_an_agent_hands_back() {
    // Handoffs pass the thread to Meta's Page Inbox; our own app is the simulator's.
    let stack = Stack::start_with(StackOptions {
        inbox_env: vec![
            ("THREAD_CONTROL_HUMAN_APP_ID", PAGE_INBOX_APP_ID.to_string()),
            ("META_APP_ID", demo::DEMO_APP_ID.to_string()),
        ],
    })
    .await;
    // A rule that answers everything, so that silence can only be the handoff's.
    create_rule(
        &stack,
        serde_json::json!({
            "id": "", "name": "always", "enabled": true, "trigger": "message_received",
            "conditions": [], "actions": [{"reply": {"text": "A bot answers right away."}}],
        }),
    )
    .await;
    let elodie = &DEMO_CUSTOMERS[1];

    customer_writes(&stack, elodie.psid, "Can I talk to a real person please?").await;
    let conv = messenger_conversation(&stack).await;
    let got = wait_for(&stack, &conv.id, "handed off to a person", |c| {
        handler(c) == HandlerKind::Human as i32
    })
    .await;
    assert_eq!(
        got.conversation.as_ref().unwrap().thread_owner_app_id,
        PAGE_INBOX_APP_ID
    );
    let calls = stack.sim.thread_control_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action, "pass_thread_control");
    assert_eq!(calls[0].page_id, demo::DEMO_PAGE_ID);
    assert_eq!(calls[0].recipient, elodie.psid);
    assert_eq!(calls[0].target_app_id.as_deref(), Some(PAGE_INBOX_APP_ID));
    assert_eq!(
        stack.sim.thread_owner(demo::DEMO_PAGE_ID, elodie.psid).as_deref(),
        Some(PAGE_INBOX_APP_ID)
    );

    // The Page Inbox owns the thread now: Meta delivers the next message on standby; inbox
    // stores it and automation stays silent.
    customer_writes(&stack, elodie.psid, "Hello? Anyone there?").await;
    wait_for(&stack, &conv.id, "the next message stored", |c| {
        has_text(c, "Hello? Anyone there?")
    })
    .await;
    settled(&stack).await;
    assert!(
        stack.sim.sent_messages().is_empty(),
        "automation answered a handed-off conversation: {:?}",
        stack.sim.sent_messages()
    );

    // The agent hands back in the frontend: our app takes the thread again.
    let back = stack
        .grpc_web_client()
        .hand_back(HandBackRequest {
            workspace_id: stack.workspace.clone(),
            conversation_id: conv.id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("hand back over gRPC-web: {e}\n{}", stack.logs()))
        .into_inner();
    assert_eq!(back.handler, HandlerKind::Automation as i32);
    let our_app = demo::DEMO_APP_ID.to_string();
    assert_eq!(back.thread_owner_app_id, our_app);
    let calls = stack.sim.thread_control_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].action, "take_thread_control");
    assert_eq!(calls[1].recipient, elodie.psid);
    assert_eq!(
        stack.sim.thread_owner(demo::DEMO_PAGE_ID, elodie.psid).as_deref(),
        Some(our_app.as_str())
    );
    assert_eq!(
        handler(&get_conversation(&stack, &conv.id).await),
        HandlerKind::Automation as i32
    );

    // The rule answers again.
    customer_writes(&stack, elodie.psid, "ok, when do you open?").await;
    let got = wait_for(&stack, &conv.id, "the rule's reply after the hand back", |c| {
        has_text(c, "A bot answers right away.")
    })
    .await;
    let reply = got
        .messages
        .iter()
        .find(|m| m.text == "A bot answers right away.")
        .unwrap();
    assert_eq!(author(reply), AuthorKind::Automation as i32);
    let sent = stack.sim.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].recipient, elodie.psid);
    assert_eq!(sent[0].body["messaging_type"], "RESPONSE");
    assert!(sent[0].body.get("tag").is_none(), "{}", sent[0].body);
}
