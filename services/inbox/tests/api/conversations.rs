use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1::{
        ConversationStatus, DeliveryStatus, GetConversationRequest, ListConversationsRequest,
        MessageDirection,
    },
};

use crate::helpers::*;

#[tokio::test]
async fn channel_event_then_messages_are_listed_per_workspace() {
    let app = spawn_app().await;
    let (ws_a, ws_b) = (workspace(), workspace());
    app.publish_channel(&connected(&ws_a, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_channel(&connected(&ws_b, "ch-b", ChannelKind::Instagram, "IG_B"))
        .await;

    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_1",
        "m_1",
        "hi, is this in stock?",
        1_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_1",
        "m_2",
        "the blue one",
        2_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_2",
        "m_3",
        "hello",
        3_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Instagram,
        "IG_B",
        "IGSID_9",
        "ig_1",
        "price?",
        1_500,
    ))
    .await;

    app.wait_for_messages(&ws_a, 3).await;
    app.wait_for_messages(&ws_b, 1).await;

    let a = app.conversations(&ws_a).await;
    assert_eq!(a.len(), 2, "one conversation per contact");
    // Newest activity first.
    assert_eq!(a[0].contact.as_ref().unwrap().external_id, "PSID_2");
    assert_eq!(a[1].contact.as_ref().unwrap().external_id, "PSID_1");
    assert_eq!(a[1].message_count, 2);
    assert_eq!(a[1].last_message_preview, "the blue one");
    assert_eq!(a[1].channel_id, "ch-a");
    assert_eq!(a[1].channel_kind, ChannelKind::Messenger as i32);
    assert_eq!(a[1].status, ConversationStatus::Open as i32);

    let got = app.get(&ws_a, &a[1].id).await;
    let texts: Vec<&str> = got.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi, is this in stock?", "the blue one"], "oldest first");
    assert!(
        got.messages
            .iter()
            .all(|m| m.direction == MessageDirection::Inbound as i32)
    );
    assert!(
        got.messages
            .iter()
            .all(|m| m.status == DeliveryStatus::Unspecified as i32)
    );

    let b = app.conversations(&ws_b).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].channel_kind, ChannelKind::Instagram as i32);

    // Filters: by channel and by status.
    let filtered = app
        .list(
            &ws_a,
            ListConversationsRequest {
                channel_id: "ch-b".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(filtered.conversations.is_empty(), "ch-b is not in workspace A");
    let resolved = app
        .list(
            &ws_a,
            ListConversationsRequest {
                status: ConversationStatus::Resolved as i32,
                ..Default::default()
            },
        )
        .await;
    assert!(resolved.conversations.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn echoes_and_postbacks_are_stored_with_their_own_timestamps() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    // The business's reply (sent from another app) arrives before the customer message it answers.
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_echo",
        "Yes, it is.",
        2_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_q",
        "is it in stock?",
        1_000,
    ))
    .await;
    app.publish_meta(&postback(
        "PAGE",
        "PSID",
        "m_pb",
        "Get Started",
        "GET_STARTED",
        3_000,
    ))
    .await;
    app.wait_for_messages(&ws, 3).await;

    let conv = app.conversations(&ws).await.remove(0);
    assert_eq!(conv.last_message_preview, "Get Started");
    let got = app.get(&ws, &conv.id).await;
    let ids: Vec<&str> = got.messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(
        ids,
        ["m_q", "m_echo", "m_pb"],
        "ordered by Meta's timestamps, not arrival"
    );
    let e = &got.messages[1];
    assert!(e.is_echo);
    assert_eq!(e.direction, MessageDirection::Outbound as i32);
    assert_eq!(e.status, DeliveryStatus::Sent as i32);
    let pb = &got.messages[2];
    assert_eq!(
        (pb.text.as_str(), pb.payload.as_str()),
        ("Get Started", "GET_STARTED")
    );
    assert_eq!(pb.direction, MessageDirection::Inbound as i32);
    app.stop().await;
}

#[tokio::test]
async fn conversations_and_messages_page_with_opaque_tokens() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    // Five contacts; contact 0 also has 4 more messages. Two conversations share a timestamp, so
    // the id tie-break is exercised.
    for i in 0..5 {
        let at = if i == 4 { 3_000 } else { 1_000 * (i + 1) };
        app.publish_meta(&inbound(
            ChannelKind::Messenger,
            "PAGE",
            &format!("P{i}"),
            &format!("m_{i}"),
            "x",
            at,
        ))
        .await;
    }
    for j in 0..4 {
        app.publish_meta(&inbound(
            ChannelKind::Messenger,
            "PAGE",
            "P0",
            &format!("m_0_{j}"),
            &format!("more {j}"),
            10 + j,
        ))
        .await;
    }
    app.wait_for_messages(&ws, 9).await;

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .list(
                &ws,
                ListConversationsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await;
        assert!(page.conversations.len() <= 2);
        seen.extend(page.conversations.iter().map(|c| {
            (
                c.last_activity_at.unwrap().seconds * 1000
                    + i64::from(c.last_activity_at.unwrap().nanos / 1_000_000),
                c.id.clone(),
            )
        }));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "every conversation exactly once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest activity first, id breaking ties");

    // Messages: newest page first, each page oldest-first, the token going back in time.
    let conv = app
        .conversations(&ws)
        .await
        .into_iter()
        .find(|c| c.contact.as_ref().unwrap().external_id == "P0")
        .unwrap();
    let mut client = app.grpc().await;
    let first = client
        .get_conversation(with_workspace(
            &ws,
            GetConversationRequest {
                conversation_id: conv.id.clone(),
                page_size: 3,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<&str> = first.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["more 2", "more 3", "x"]);
    let second = client
        .get_conversation(with_workspace(
            &ws,
            GetConversationRequest {
                conversation_id: conv.id.clone(),
                page_size: 3,
                page_token: first.next_page_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<&str> = second.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["more 0", "more 1"]);
    assert!(second.next_page_token.is_empty());

    let bad = client
        .list_conversations(with_workspace(
            &ws,
            ListConversationsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    app.stop().await;
}
