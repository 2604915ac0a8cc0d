//! Unread counts per user (read markers that only move forward; customer messages only) and
//! search over message texts and contact names.

use futures::StreamExt;
use prost::Message as _;
use scifer_proto::{
    events::v1::{ChannelKind, InboxEvent, inbox_event, meta_event::Kind},
    inbox::v1::{
        AddNoteRequest, Conversation, GetConversationRequest, ListConversationsRequest, MarkReadRequest,
        SearchHit, SearchMessagesRequest,
    },
};
use tonic::{Code, Status};

use crate::helpers::*;

const PAGE: &str = "PAGE_1";

/// The conversations as `agent` lists them (with their unread counts).
async fn list_as(app: &TestApp, ws: &str, agent: &str) -> Vec<Conversation> {
    app.grpc()
        .await
        .list_conversations(as_agent(ws, agent, ListConversationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .conversations
}

async fn unread_as(app: &TestApp, ws: &str, agent: &str) -> i64 {
    list_as(app, ws, agent).await[0].unread_count
}

async fn mark(app: &TestApp, ws: &str, agent: &str, id: &str, up_to: &str) -> Result<i64, Status> {
    app.grpc()
        .await
        .mark_read(as_agent(
            ws,
            agent,
            MarkReadRequest {
                conversation_id: id.into(),
                up_to_message_id: up_to.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().unread_count)
}

#[tokio::test]
async fn unread_counts_are_per_user_and_count_customer_messages_after_their_marker() {
    let app = spawn_app().await;
    let t0 = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], t0).await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_2",
        "second",
        t0 + 1_000,
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    let id = app.conversations(&ws).await[0].id.clone();
    let first = app.get(&ws, &id).await.messages[0].id.clone();

    assert_eq!(unread_as(&app, &ws, "agent-1").await, 2, "nothing read yet");
    assert_eq!(unread_as(&app, &ws, "agent-2").await, 2);
    assert_eq!(
        app.conversations(&ws).await[0].unread_count,
        0,
        "no user, no count"
    );

    assert_eq!(mark(&app, &ws, "agent-1", &id, "").await.unwrap(), 0);
    assert_eq!(unread_as(&app, &ws, "agent-1").await, 0);
    assert_eq!(unread_as(&app, &ws, "agent-2").await, 2, "markers are per user");
    assert_eq!(mark(&app, &ws, "agent-2", &id, &first).await.unwrap(), 1);

    // A new customer message is unread; our replies and the team's notes never are.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_3",
        "third",
        t0 + 2_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_reply",
        "our reply",
        t0 + 3_000,
    ))
    .await;
    app.wait_for_messages(&ws, 4).await;
    app.grpc()
        .await
        .add_note(as_agent(
            &ws,
            "agent-1",
            AddNoteRequest {
                conversation_id: id.clone(),
                text: "a note".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(unread_as(&app, &ws, "agent-1").await, 1);
    assert_eq!(unread_as(&app, &ws, "agent-2").await, 2);
    let got = app
        .grpc()
        .await
        .get_conversation(as_agent(
            &ws,
            "agent-2",
            GetConversationRequest {
                conversation_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.conversation.unwrap().unread_count, 2);

    // A marker never moves back.
    assert_eq!(mark(&app, &ws, "agent-1", &id, &first).await.unwrap(), 1);
    assert_eq!(mark(&app, &ws, "agent-1", &id, "").await.unwrap(), 0);

    let unknown = mark(&app, &ws, "agent-1", &id, "no-such-message")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let elsewhere = mark(&app, &workspace(), "agent-1", &id, "").await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    let anonymous = app
        .grpc()
        .await
        .mark_read(with_workspace(
            &ws,
            MarkReadRequest {
                conversation_id: id.clone(),
                up_to_message_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    app.stop().await;
}

async fn search(app: &TestApp, ws: &str, query: &str, limit: i32) -> Result<Vec<SearchHit>, Status> {
    app.grpc()
        .await
        .search_messages(as_agent(
            ws,
            "agent-1",
            SearchMessagesRequest {
                query: query.into(),
                limit,
            },
        ))
        .await
        .map(|r| r.into_inner().hits)
}

/// Each hit as (contact external id, matching message text or "" for a name match).
fn summary(hits: &[SearchHit]) -> Vec<(String, String)> {
    hits.iter()
        .map(|h| {
            (
                h.conversation
                    .as_ref()
                    .unwrap()
                    .contact
                    .as_ref()
                    .unwrap()
                    .external_id
                    .clone(),
                h.message.as_ref().map(|m| m.text.clone()).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_finds_message_texts_and_contact_names_with_wildcards_taken_literally() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, PAGE))
        .await;
    let t0 = now_ms() - 60_000;
    let texts = [
        ("PSID_A", "Where is my ORDER 1000 units?"),
        ("PSID_A", "Is it 100% cotton?"),
        ("PSID_B", "the_blue_one please"),
        ("PSID_B", "a nice blue one"),
    ];
    for (i, (contact, text)) in texts.iter().enumerate() {
        let mut event = inbound(
            ChannelKind::Messenger,
            PAGE,
            contact,
            &format!("m_{i}"),
            text,
            t0 + i as i64 * 1_000,
        );
        if let (Some(Kind::Message(m)), "PSID_B") = (&mut event.kind, *contact) {
            m.contact_name = "Maria Garcia".into();
        }
        app.publish_meta(&event).await;
    }
    app.wait_for_messages(&ws, 4).await;
    // Another workspace's words are not found.
    let other = workspace_with_customers(&app, "PAGE_OTHER", &["PSID_X"], t0).await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_OTHER",
        "PSID_X",
        "m_other",
        "my order too",
        t0,
    ))
    .await;
    app.wait_for_messages(&other, 2).await;

    let one = |c: &str, t: &str| (c.to_string(), t.to_string());
    assert_eq!(
        summary(&search(&app, &ws, "order", 0).await.unwrap()),
        [one("PSID_A", "Where is my ORDER 1000 units?")],
        "case-insensitive, this workspace only"
    );
    assert_eq!(
        summary(&search(&app, &ws, "0%", 0).await.unwrap()),
        [one("PSID_A", "Is it 100% cotton?")],
        "% is a percent sign"
    );
    assert_eq!(
        summary(&search(&app, &ws, "e_b", 0).await.unwrap()),
        [one("PSID_B", "the_blue_one please")],
        "_ is an underscore"
    );
    // A name match comes first, then the messages, newest first.
    let maria = search(&app, &ws, "garcia", 0).await.unwrap();
    assert_eq!(summary(&maria), [one("PSID_B", "")]);
    assert_eq!(
        maria[0].conversation.as_ref().unwrap().unread_count,
        2,
        "with the caller's unread count"
    );
    assert_eq!(
        summary(&search(&app, &ws, "blue", 0).await.unwrap()),
        [
            one("PSID_B", "a nice blue one"),
            one("PSID_B", "the_blue_one please")
        ]
    );
    assert_eq!(search(&app, &ws, "blue", 1).await.unwrap().len(), 1, "bounded");

    for (query, limit) in [
        ("e", 0),
        (&"x".repeat(101) as &str, 0),
        ("blue", 51),
        ("blue", -1),
    ] {
        let refused = search(&app, &ws, query, limit).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{query:?} {limit}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_marker_that_moves_is_announced_to_its_member_with_the_unread_count() {
    let app = spawn_app().await;
    let t0 = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], t0).await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_2",
        "second",
        t0 + 1_000,
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    let id = app.conversations(&ws).await[0].id.clone();
    let messages = app.get(&ws, &id).await.messages;
    let (first, second) = (messages[0].id.clone(), messages[1].id.clone());
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "read_marker_moved"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();

    assert_eq!(mark(&app, &ws, "agent-1", &id, &first).await.unwrap(), 1);
    // Marking an older message changes nothing, so nothing is announced for it.
    assert_eq!(mark(&app, &ws, "agent-1", &id, &first).await.unwrap(), 1);
    assert_eq!(mark(&app, &ws, "agent-1", &id, "").await.unwrap(), 0);

    let mut moves = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("no read marker event in time")
            .expect("subscription ended");
        let event = InboxEvent::decode(msg.payload.as_ref()).unwrap();
        assert_eq!(event.workspace_id, ws);
        let Some(inbox_event::Kind::ReadMarkerMoved(moved)) = event.kind else {
            panic!("{event:?}")
        };
        moves.push((
            moved.user_id,
            moved.conversation_id,
            moved.read_message_id,
            moved.unread_count,
        ));
    }
    assert_eq!(
        moves,
        vec![
            ("agent-1".to_string(), id.clone(), first, 1),
            ("agent-1".to_string(), id.clone(), second, 0),
        ]
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), sub.next())
            .await
            .is_err(),
        "a marker that did not move was announced"
    );
}
