//! Issue 5 end to end: inbox reads the demo WABA's templates from the simulator's Graph API
//! (through token-vault) when the WhatsApp number connects; Meta pausing a template arrives as a
//! signed `message_template_status_update` webhook through webhook-ingest, and inbox then refuses
//! the template before anything reaches Meta.

use std::time::Duration;

use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    graph::TemplateStatus,
    webhooks::{
        SendMode,
        whatsapp::{Contact, Message as WaMessage},
    },
};
use scifer_proto::{
    events::v1::ChannelKind,
    gateway::v1::{ListChannelsRequest, ListTemplatesRequest, SendMessageRequest},
    inbox::v1::{
        self as inbox, ListTemplatesResponse, SendMessageResponse, TemplateMessage, send_message_response,
    },
};

use crate::helpers::Stack;

const WAIT: Duration = Duration::from_secs(30);

async fn whatsapp_channel(stack: &Stack) -> String {
    stack
        .channel_api()
        .list_channels(ListChannelsRequest {
            workspace_id: stack.workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .channels
        .into_iter()
        .find(|c| c.kind == ChannelKind::Whatsapp as i32)
        .expect("the stack connects the demo WhatsApp number")
        .channel_id
}

/// The channel's templates; NOT_FOUND until inbox has the channel.
async fn templates(stack: &Stack, channel_id: &str) -> Result<ListTemplatesResponse, tonic::Status> {
    stack
        .grpc_web_client()
        .list_templates(ListTemplatesRequest {
            workspace_id: stack.workspace.clone(),
            channel_id: channel_id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn wait_templates(
    stack: &Stack,
    channel_id: &str,
    what: &str,
    check: impl Fn(&ListTemplatesResponse) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = templates(stack, channel_id).await;
        if listed.as_ref().is_ok_and(&check) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never reached; last {listed:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_of<'a>(listed: &'a ListTemplatesResponse, name: &str) -> Option<&'a str> {
    listed
        .templates
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.status.as_str())
}

async fn send_template(
    stack: &Stack,
    conversation_id: &str,
    key: &str,
    name: &str,
    params: &[&str],
) -> SendMessageResponse {
    stack
        .grpc_web_client()
        .send_message(SendMessageRequest {
            workspace_id: stack.workspace.clone(),
            message: Some(inbox::SendMessageRequest {
                conversation_id: conversation_id.into(),
                idempotency_key: key.into(),
                template: Some(TemplateMessage {
                    name: name.into(),
                    language: "en_US".into(),
                    body_parameters: params.iter().map(|p| p.to_string()).collect(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_or_else(|e| panic!("send over gRPC-web: {e}\n{}", stack.logs()))
        .into_inner()
}

fn refusal(r: &SendMessageResponse) -> &str {
    match &r.result {
        Some(send_message_response::Result::Refusal(refusal)) => refusal.reason.as_str(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_meta_pauses_is_refused_before_it_reaches_meta() {
    let stack = Stack::start().await;
    let channel_id = whatsapp_channel(&stack).await;
    wait_templates(&stack, &channel_id, "the demo WABA's templates", |l| {
        status_of(l, "order_update") == Some("APPROVED") && status_of(l, "spring_sale") == Some("PENDING")
    })
    .await;

    // A customer writes on WhatsApp.
    let jurgen = &DEMO_CUSTOMERS[2];
    stack
        .sim
        .customer_wrote(demo::DEMO_PHONE_NUMBER_ID, jurgen.wa_id, chrono::Utc::now());
    let inbound = demo::demo_business()
        .inbound(
            &Contact::new(jurgen.wa_id, jurgen.name),
            WaMessage::text(jurgen.wa_id, "Where is my order?"),
        )
        .into_item()
        .into_delivery();
    let outcome = stack
        .sender()
        .send(&stack.webhook_url, &inbound, &SendMode::Valid)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    let deadline = tokio::time::Instant::now() + WAIT;
    let conversation = loop {
        if let Some(c) = stack
            .conversations()
            .await
            .into_iter()
            .find(|c| c.channel_kind == ChannelKind::Whatsapp as i32)
        {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no WhatsApp conversation\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Meta pauses order_update: its webhook reaches inbox through webhook-ingest.
    let order_update = stack
        .sim
        .templates(demo::DEMO_WABA_ID)
        .into_iter()
        .find(|t| t.name == "order_update")
        .unwrap();
    stack
        .sim
        .set_template_status(&order_update.id, TemplateStatus::Paused, None);
    wait_templates(&stack, &channel_id, "order_update paused", |l| {
        status_of(l, "order_update") == Some("PAUSED")
    })
    .await;

    let before = stack.sim.sent_messages().len();
    let paused = send_template(&stack, &conversation.id, "t-1", "order_update", &["#77"]).await;
    assert_eq!(refusal(&paused), "template_not_approved");
    let pending = send_template(&stack, &conversation.id, "t-2", "spring_sale", &["20%"]).await;
    assert_eq!(refusal(&pending), "template_not_approved");
    let unknown = send_template(&stack, &conversation.id, "t-3", "no_such_template", &[]).await;
    assert_eq!(refusal(&unknown), "template_unknown");
    assert_eq!(
        stack.sim.sent_messages().len(),
        before,
        "no refused template reached Meta"
    );

    // An approved one still goes out.
    let hello = send_template(&stack, &conversation.id, "t-4", "hello_world", &[]).await;
    assert!(
        matches!(hello.result, Some(send_message_response::Result::Message(_))),
        "{hello:?}\n{}",
        stack.logs()
    );
    assert_eq!(stack.sim.sent_messages().len(), before + 1);
}
