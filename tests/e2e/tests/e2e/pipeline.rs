//! The first loop, end to end: a signed batch from every channel, with a duplicate, a retried
//! delivery, an out-of-order receipt and an unknown event type, read back through gRPC-web.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    webhooks::{
        Delivery, SendMode, instagram,
        messaging::now_ms,
        messenger,
        retry::RetryPolicy,
        unknown,
        whatsapp::{Contact, Message},
    },
};
use scifer_proto::{
    events::v1::{ChannelKind, inbox_event},
    gateway::v1::WatchInboxRequest,
    inbox::v1::{Conversation, DeliveryStatus, MessageDirection},
};
use scifer_test_support::wait_until;

use crate::helpers::Stack;

const PAGE: &str = demo::DEMO_PAGE_ID;
const IG: &str = demo::DEMO_IG_ACCOUNT_ID;

fn conversation_of(conversations: &[Conversation], kind: ChannelKind) -> Option<&Conversation> {
    conversations.iter().find(|c| c.channel_kind == kind as i32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_batch_from_every_channel_reaches_a_grpc_web_client_live_and_exactly_once() {
    let stack = Stack::start().await;
    let mut watch = stack
        .grpc_web_client()
        .watch_inbox(WatchInboxRequest {
            workspace_id: stack.workspace.clone(),
            conversation_id: String::new(),
        })
        .await
        .expect("watch over gRPC-web")
        .into_inner();

    let (ana, elodie, jurgen) = (&DEMO_CUSTOMERS[0], &DEMO_CUSTOMERS[1], &DEMO_CUSTOMERS[2]);
    let t0 = now_ms() - 60_000;

    // Messenger: Ana writes, the Page answers from another app (an echo), and Ana's read receipt
    // arrives before the delivery receipt. An unknown event type rides along in the same batch.
    let ana_message = messenger::text(PAGE, ana.psid, ana.lines[0])
        .mid("m_e2e_ana_1")
        .timestamp_ms(t0);
    let echo = messenger::echo(PAGE, ana.psid, demo::DEMO_APP_ID, ana.reply, Some("ticket-1"))
        .mid("m_e2e_echo_1")
        .timestamp_ms(t0 + 1_000);
    let read = messenger::read(PAGE, ana.psid, t0 + 3_000).timestamp_ms(t0 + 3_000);
    let delivered = messenger::delivery(PAGE, ana.psid, &["m_e2e_echo_1".to_string()], t0 + 2_000)
        .timestamp_ms(t0 + 2_000);
    let messenger_batch = Delivery::from_items([
        ana_message.clone().into_item(),
        echo.into_item(),
        read.into_item(),
        unknown::messenger_event(PAGE, ana.psid).into_item(),
    ])
    .unwrap();
    // A later delivery carries the delivery receipt and, again, Ana's message (a duplicate).
    let late_batch = Delivery::from_items([delivered.into_item(), ana_message.into_item()]).unwrap();

    let instagram_delivery = instagram::text(IG, elodie.igsid, elodie.lines[0])
        .mid("ig_e2e_elodie_1")
        .timestamp_ms(t0 + 500)
        .into_delivery();

    let business = demo::demo_business();
    let whatsapp_delivery = business
        .inbound(
            &Contact::new(jurgen.wa_id, jurgen.name),
            Message::text(jurgen.wa_id, jurgen.lines[0])
                .id("wamid.e2e.jurgen.1")
                .timestamp_s(t0 / 1000 + 1),
        )
        .into_item()
        .into_delivery();

    let sender = stack.sender();
    for delivery in [
        &messenger_batch,
        &instagram_delivery,
        &whatsapp_delivery,
        &late_batch,
    ] {
        let outcome = sender
            .send(&stack.webhook_url, delivery, &SendMode::Valid)
            .await
            .unwrap();
        assert_eq!(outcome.status, 200, "{}", outcome.body);
    }
    // Meta retries a delivery it thinks failed: the same bytes again.
    let retry = sender
        .deliver_with_retry(
            &stack.webhook_url,
            &messenger_batch,
            &SendMode::Valid,
            &RetryPolicy::none(),
        )
        .await;
    assert!(retry.delivered());

    let expected_ids = [
        "m_e2e_ana_1",
        "m_e2e_echo_1",
        "ig_e2e_elodie_1",
        "wamid.e2e.jurgen.1",
    ];

    // Live: the watch stream delivers each new message once.
    let mut created: HashMap<String, usize> = HashMap::new();
    let live = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = watch.next().await {
            let event = event.expect("watch stream item");
            assert_eq!(event.workspace_id, stack.workspace);
            if let Some(inbox_event::Kind::MessageCreated(m)) = event.kind {
                let id = m.message.map(|m| m.external_id).unwrap_or_default();
                *created.entry(id).or_default() += 1;
            }
            if expected_ids.iter().all(|id| created.contains_key(*id)) {
                break;
            }
        }
    })
    .await;
    assert!(live.is_ok(), "watch saw only {created:?}\n{}", stack.logs());

    // Read back through gRPC-web once the delivery receipt has been applied too.
    let settled = wait_until(Duration::from_secs(20), || async {
        let conversations = stack.conversations().await;
        let Some(messenger) = conversation_of(&conversations, ChannelKind::Messenger) else {
            return false;
        };
        let messages = stack.messages(&messenger.id).await;
        conversations.len() == 3
            && messages
                .iter()
                .any(|m| m.external_id == "m_e2e_echo_1" && m.status == DeliveryStatus::Read as i32)
    })
    .await;
    assert!(
        settled.is_ok(),
        "conversations: {:#?}\n{}",
        stack.conversations().await,
        stack.logs()
    );

    let conversations = stack.conversations().await;
    assert_eq!(
        conversations.len(),
        3,
        "one conversation per customer and channel"
    );
    let by_kind = |kind| conversation_of(&conversations, kind).unwrap();

    let messenger_messages = stack.messages(&by_kind(ChannelKind::Messenger).id).await;
    assert_eq!(
        messenger_messages.len(),
        2,
        "duplicate and retried items were stored once: {messenger_messages:#?}"
    );
    let inbound = &messenger_messages[0];
    assert_eq!(inbound.external_id, "m_e2e_ana_1");
    assert_eq!(inbound.direction, MessageDirection::Inbound as i32);
    assert_eq!(
        inbound.text, ana.lines[0],
        "non-ASCII text survives Meta's escaping"
    );
    let reply = &messenger_messages[1];
    assert!(reply.is_echo);
    assert_eq!(reply.direction, MessageDirection::Outbound as i32);
    assert_eq!(
        reply.status,
        DeliveryStatus::Read as i32,
        "a read before delivered stays read"
    );

    let ig_messages = stack.messages(&by_kind(ChannelKind::Instagram).id).await;
    assert_eq!(
        ig_messages
            .iter()
            .map(|m| m.external_id.as_str())
            .collect::<Vec<_>>(),
        ["ig_e2e_elodie_1"]
    );
    let wa = by_kind(ChannelKind::Whatsapp);
    assert_eq!(
        wa.contact.as_ref().map(|c| c.display_name.as_str()),
        Some(jurgen.name)
    );
    let wa_messages = stack.messages(&wa.id).await;
    assert_eq!(wa_messages.len(), 1);
    assert_eq!(wa_messages[0].text, jurgen.lines[0]);

    // Newest activity first.
    let times: Vec<_> = conversations
        .iter()
        .map(|c| c.last_activity_at.map(|t| (t.seconds, t.nanos)))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Each message was announced exactly once.
    for id in expected_ids {
        assert_eq!(created.get(id), Some(&1), "MessageCreated for {id}: {created:?}");
    }

    // The unknown event type was kept on the unhandled subject, not dropped.
    let meta = stack
        .js
        .get_stream(stack.bus.stream_name(scifer_events::StreamKind::Meta))
        .await
        .unwrap();
    let unhandled = meta
        .get_last_raw_message_by_subject(&stack.bus.meta_unhandled())
        .await;
    assert!(unhandled.is_ok(), "no unhandled item stored: {unhandled:?}");
}
