//! The broker going away and a trace crossing every hop.

use std::time::Duration;

use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    webhooks::{SendMode, messaging::now_ms, messenger, retry::RetryPolicy},
};
use scifer_proto::{events::v1::ChannelKind, gateway::v1::ListConversationsRequest, inbox::v1 as inbox};
use scifer_test_support::wait_until;

use crate::helpers::Stack;

async fn conversation_count(stack: &Stack, kind: ChannelKind) -> usize {
    stack
        .grpc_web_client()
        .list_conversations(ListConversationsRequest {
            workspace_id: stack.workspace.clone(),
            query: Some(inbox::ListConversationsRequest {
                page_size: 50,
                ..Default::default()
            }),
        })
        .await
        .map(|r| {
            r.into_inner()
                .conversations
                .iter()
                .filter(|c| c.channel_kind == kind as i32)
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_meta_gets_503_and_its_retry_after_recovery_loses_nothing() {
    let mut stack = Stack::start().await;
    let customer = &DEMO_CUSTOMERS[3];
    let delivery = messenger::text(demo::DEMO_PAGE_ID, customer.psid, customer.lines[0])
        .mid("m_e2e_outage_1")
        .timestamp_ms(now_ms())
        .into_delivery();
    let sender = stack.sender();

    stack.nats.stop();
    let refused = sender
        .send(&stack.webhook_url, &delivery, &SendMode::Valid)
        .await
        .unwrap();
    assert_eq!(
        refused.status, 503,
        "nothing durable was stored, so Meta must retry: {}",
        refused.body
    );

    stack.nats.restart().await;
    // Meta's retry: the same bytes until a 200.
    let retried = sender
        .deliver_with_retry(
            &stack.webhook_url,
            &delivery,
            &SendMode::Valid,
            &RetryPolicy::fixed(vec![Duration::from_millis(250); 40]),
        )
        .await;
    assert!(retried.delivered(), "{:?}\n{}", retried.statuses(), stack.logs());

    let arrived = wait_until(Duration::from_secs(30), || async {
        conversation_count(&stack, ChannelKind::Messenger).await == 1
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the message never reached the inbox\n{}",
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_webhook_bus_and_inbox() {
    let stack = Stack::start().await;
    let customer = &DEMO_CUSTOMERS[4];
    let delivery = messenger::text(demo::DEMO_PAGE_ID, customer.psid, customer.lines[0])
        .mid("m_e2e_trace_1")
        .timestamp_ms(now_ms())
        .into_delivery();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sender = stack.sender();
    let mut request = sender.prepare(&delivery, &SendMode::Valid);
    request
        .headers
        .push(("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01")));
    let outcome = sender.send_prepared(&stack.webhook_url, &request).await.unwrap();
    assert_eq!(outcome.status, 200);

    // The inbox's own event about the new message carries the trace that Meta's request started.
    let inbox_stream = stack
        .js
        .get_stream(stack.bus.stream_name(scifer_events::StreamKind::Inbox))
        .await
        .unwrap();
    let subject = stack.bus.inbox_event(&stack.workspace, "message_created");
    let found = wait_until(Duration::from_secs(20), || {
        let inbox_stream = inbox_stream.clone();
        let subject = subject.clone();
        async move {
            inbox_stream
                .get_last_raw_message_by_subject(&subject)
                .await
                .is_ok()
        }
    })
    .await;
    assert!(found.is_ok(), "no message_created event\n{}", stack.logs());
    let event = inbox_stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap();
    let traceparent = event.headers.get("traceparent").map(|v| v.to_string());
    let traceparent = traceparent.unwrap_or_default();
    assert!(
        traceparent.contains(trace_id),
        "inbox event traceparent {traceparent:?} is not in trace {trace_id}"
    );
}
