//! Replies end to end: an agent answers over gRPC-web; the gateway, inbox's send gate and
//! token-vault send it to the simulator's Send API; Meta's echo, receipts and WhatsApp statuses
//! come back as signed webhooks through webhook-ingest and move the same message forward.

use std::time::Duration;

use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    graph::PAGE_INBOX_APP_ID,
    webhooks::{
        Delivery, SendMode, messenger,
        whatsapp::{Contact, Message as WaMessage},
    },
};
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    gateway::v1::{CheckSendRequest, ListChannelsRequest, RetryMessageRequest, SendMessageRequest},
    inbox::v1::{
        self as inbox, Conversation, DeliveryStatus, Message, SendMessageResponse, TemplateMessage,
        send_message_response,
    },
};

use crate::helpers::Stack;

const WAIT: Duration = Duration::from_secs(30);

async fn deliver(stack: &Stack, delivery: &Delivery) {
    let outcome = stack
        .sender()
        .send(&stack.webhook_url, delivery, &SendMode::Valid)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
}

async fn conversation(stack: &Stack, kind: ChannelKind) -> Conversation {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(c) = stack
            .conversations()
            .await
            .into_iter()
            .find(|c| c.channel_kind == kind as i32)
        {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind:?} conversation\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until message `id` satisfies `check`; returns the conversation's messages then.
async fn wait_message(
    stack: &Stack,
    conversation_id: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Message) -> bool,
) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let all = stack.messages(conversation_id).await;
        if all.iter().any(|m| m.id == id && check(m)) {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {id} never became {what}: {all:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(stack: &Stack, conversation_id: &str, key: &str, text: &str) -> SendMessageResponse {
    send_request(
        stack,
        inbox::SendMessageRequest {
            conversation_id: conversation_id.into(),
            idempotency_key: key.into(),
            text: text.into(),
            ..Default::default()
        },
    )
    .await
}

async fn send_request(stack: &Stack, message: inbox::SendMessageRequest) -> SendMessageResponse {
    stack
        .grpc_web_client()
        .send_message(SendMessageRequest {
            workspace_id: stack.workspace.clone(),
            message: Some(message),
        })
        .await
        .unwrap_or_else(|e| panic!("send over gRPC-web: {e}\n{}", stack.logs()))
        .into_inner()
}

fn sent(r: SendMessageResponse) -> Message {
    match r.result {
        Some(send_message_response::Result::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reply_is_sent_once_and_follows_metas_echo_delivery_and_read() {
    let stack = Stack::start().await;
    let ana = &DEMO_CUSTOMERS[0];
    deliver(
        &stack,
        &stack
            .sim
            .inbound_text(demo::DEMO_PAGE_ID, ana.psid, "Is my cake ready?"),
    )
    .await;
    let conv = conversation(&stack, ChannelKind::Messenger).await;

    let m = sent(send(&stack, &conv.id, "reply-1", "Yes, pick it up at five.").await);
    assert_eq!(m.status, DeliveryStatus::Sent as i32, "{m:?}\n{}", stack.logs());
    assert!(!m.external_id.is_empty());
    let out = stack.sim.sent_messages();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].sender_object_id, demo::DEMO_PAGE_ID);
    assert_eq!(out[0].body["messaging_type"], "RESPONSE");
    assert_eq!(out[0].body["message"]["metadata"], format!("scifer:{}", m.id));

    // Echo, delivery and read come back through webhook-ingest and move this message only.
    let all = wait_message(&stack, &conv.id, &m.id, "read", |x| {
        x.status == DeliveryStatus::Read as i32
    })
    .await;
    assert_eq!(
        all.len(),
        2,
        "the customer's message and the reply; the echo is not a copy: {all:?}"
    );
    assert!(all.iter().all(|x| !x.is_echo));

    // The client retries the same send: nothing new goes out.
    let again = sent(send(&stack, &conv.id, "reply-1", "Yes, pick it up at five.").await);
    assert_eq!(again.id, m.id);
    assert_eq!(stack.sim.sent_messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_24_hours_a_human_reply_is_tagged_and_whatsapp_takes_only_a_template() {
    let stack = Stack::start().await;
    let (elodie, jurgen) = (&DEMO_CUSTOMERS[1], &DEMO_CUSTOMERS[2]);
    let day_and_more = chrono::Utc::now() - chrono::Duration::hours(30);
    let t = day_and_more.timestamp_millis();

    // Messenger: the customer wrote 30 hours ago.
    stack
        .sim
        .customer_wrote(demo::DEMO_PAGE_ID, elodie.psid, day_and_more);
    deliver(
        &stack,
        &messenger::text(demo::DEMO_PAGE_ID, elodie.psid, "Hello?")
            .timestamp_ms(t)
            .into_delivery(),
    )
    .await;
    let conv = conversation(&stack, ChannelKind::Messenger).await;
    let check = stack
        .grpc_web_client()
        .check_send(CheckSendRequest {
            workspace_id: stack.workspace.clone(),
            conversation_id: conv.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.allowed);
    assert_eq!(check.messaging_type, "MESSAGE_TAG:HUMAN_AGENT");
    let m = sent(send(&stack, &conv.id, "late-1", "Sorry for the wait!").await);
    assert_eq!(m.status, DeliveryStatus::Sent as i32, "{m:?}");
    let body = &stack.sim.sent_messages()[0].body;
    assert_eq!(
        (body["messaging_type"].as_str(), body["tag"].as_str()),
        (Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
    );

    // WhatsApp: free text is refused before anything reaches Meta; a template goes out.
    stack
        .sim
        .customer_wrote(demo::DEMO_PHONE_NUMBER_ID, jurgen.wa_id, day_and_more);
    let inbound = demo::demo_business()
        .inbound(
            &Contact::new(jurgen.wa_id, jurgen.name),
            WaMessage::text(jurgen.wa_id, "Where is my order?").timestamp_s(t / 1000),
        )
        .into_item()
        .into_delivery();
    deliver(&stack, &inbound).await;
    let wa = conversation(&stack, ChannelKind::Whatsapp).await;
    let refused = send(&stack, &wa.id, "wa-1", "It ships tomorrow").await;
    let Some(send_message_response::Result::Refusal(r)) = refused.result else {
        panic!("free text after 24 h must be refused: {refused:?}");
    };
    assert_eq!(r.reason, "template_required");
    assert!(r.template_required && !r.explanation.is_empty());
    assert_eq!(
        stack.sim.sent_messages().len(),
        1,
        "the refused message never reached Meta"
    );
    let template = sent(
        send_request(
            &stack,
            inbox::SendMessageRequest {
                conversation_id: wa.id.clone(),
                idempotency_key: "wa-2".into(),
                template: Some(TemplateMessage {
                    name: "order_update".into(),
                    language: "en_US".into(),
                    body_parameters: vec!["#77".into()],
                }),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(template.status, DeliveryStatus::Sent as i32, "{template:?}");
    // sent → delivered → read statuses arrive as webhooks.
    wait_message(&stack, &wa.id, &template.id, "read", |x| {
        x.status == DeliveryStatus::Read as i32
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_shows_metas_error_and_its_retry_goes_out() {
    let stack = Stack::start().await;
    let ana = &DEMO_CUSTOMERS[0];
    deliver(
        &stack,
        &stack.sim.inbound_text(demo::DEMO_PAGE_ID, ana.psid, "Hi"),
    )
    .await;
    let conv = conversation(&stack, ChannelKind::Messenger).await;
    // Another app (Meta's Page Inbox) holds the thread: Meta refuses our send.
    stack
        .sim
        .set_thread_owner(demo::DEMO_PAGE_ID, ana.psid, Some(PAGE_INBOX_APP_ID));
    let m = sent(send(&stack, &conv.id, "r-1", "Hello from the team").await);
    assert_eq!(
        m.status,
        DeliveryStatus::Failed as i32,
        "never shown as sent: {m:?}"
    );
    assert_eq!(m.error_code, 10);
    assert!(!m.failure_reason.is_empty() && !m.error_message.is_empty());
    wait_message(&stack, &conv.id, &m.id, "failed", |x| {
        x.status == DeliveryStatus::Failed as i32
    })
    .await;
    // One conversation's refusal does not take the channel down.
    let channels = stack
        .channel_api()
        .list_channels(ListChannelsRequest {
            workspace_id: stack.workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .channels;
    assert!(
        channels.iter().all(|c| c.state == ChannelState::Connected as i32),
        "{channels:?}"
    );

    stack.sim.set_thread_owner(demo::DEMO_PAGE_ID, ana.psid, None);
    let retried = stack
        .grpc_web_client()
        .retry_message(RetryMessageRequest {
            workspace_id: stack.workspace.clone(),
            message_id: m.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let retried = sent(retried);
    assert_eq!(retried.id, m.id);
    assert_eq!(retried.status, DeliveryStatus::Sent as i32, "{retried:?}");
    let all = wait_message(&stack, &conv.id, &m.id, "read", |x| {
        x.status == DeliveryStatus::Read as i32
    })
    .await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        stack.sim.sent_messages().len(),
        1,
        "only the retry was accepted by Meta"
    );
}
