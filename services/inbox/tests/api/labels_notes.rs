//! Labels on conversations (added, removed, filtered on, announced, deleted with their channel)
//! and internal notes (in the thread by their author, counted nowhere, never sent).

use futures::StreamExt;
use prost::Message as _;
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState, InboxEvent, inbox_event::Kind},
    inbox::v1::{
        AddNoteRequest, AuthorKind, Conversation, ListConversationsRequest, MessageDirection,
        UpdateLabelsRequest,
    },
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tonic::{Code, Status};

use crate::helpers::*;

const PAGE: &str = "PAGE_1";

async fn labels(
    app: &TestApp,
    ws: &str,
    id: &str,
    add: &[&str],
    remove: &[&str],
) -> Result<Conversation, Status> {
    app.grpc()
        .await
        .update_labels(with_workspace(
            ws,
            UpdateLabelsRequest {
                conversation_id: id.into(),
                add: add.iter().map(|s| s.to_string()).collect(),
                remove: remove.iter().map(|s| s.to_string()).collect(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn note(id: &str, text: &str) -> AddNoteRequest {
    AddNoteRequest {
        conversation_id: id.into(),
        text: text.into(),
    }
}

async fn of(app: &TestApp, ws: &str, contact: &str) -> Conversation {
    app.conversations(ws)
        .await
        .into_iter()
        .find(|c| c.contact.as_ref().is_some_and(|k| k.external_id == contact))
        .unwrap_or_else(|| panic!("no conversation of {contact}"))
}

async fn next_event(sub: &mut scifer_events::async_nats::Subscriber) -> InboxEvent {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no inbox event in time")
        .expect("subscription ended");
    InboxEvent::decode(msg.payload.as_ref()).unwrap()
}

async fn next_conversation(sub: &mut scifer_events::async_nats::Subscriber) -> Conversation {
    loop {
        if let Some(Kind::ConversationUpdated(u)) = next_event(sub).await.kind {
            return u.conversation.unwrap();
        }
    }
}

#[tokio::test]
async fn labels_are_added_removed_filtered_on_and_announced() {
    let app = spawn_app().await;
    let start = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A", "PSID_B"], start).await;
    let a = of(&app, &ws, "PSID_A").await.id;
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "conversation_updated"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();

    let labelled = labels(&app, &ws, &a, &[" VIP ", "billing", "vip"], &[])
        .await
        .unwrap();
    assert_eq!(labelled.labels, ["billing", "vip"], "folded, sorted, once each");
    assert_eq!(next_conversation(&mut sub).await.labels, ["billing", "vip"]);
    assert_eq!(of(&app, &ws, "PSID_A").await.labels, ["billing", "vip"]);

    let by_label = |label: &str| ListConversationsRequest {
        label: label.into(),
        ..Default::default()
    };
    let vip = app.list(&ws, by_label("VIP")).await.conversations;
    assert_eq!(vip.len(), 1);
    assert_eq!(vip[0].id, a);
    assert!(app.list(&ws, by_label("refund")).await.conversations.is_empty());
    // Another workspace's filter does not see this workspace's labels.
    assert!(
        app.list(&workspace(), by_label("vip"))
            .await
            .conversations
            .is_empty()
    );

    // The consumer's own announcements carry the labels too.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_a_2",
        "Any news?",
        start + 10_000,
    ))
    .await;
    let after_message = next_conversation(&mut sub).await;
    assert_eq!(after_message.message_count, 2);
    assert_eq!(after_message.labels, ["billing", "vip"]);

    let removed = labels(&app, &ws, &a, &["follow-up"], &["VIP", "not-there"])
        .await
        .unwrap();
    assert_eq!(removed.labels, ["billing", "follow-up"]);
    assert_eq!(next_conversation(&mut sub).await.labels, ["billing", "follow-up"]);

    for (add, code) in [
        (vec!["two words"], Code::InvalidArgument),
        (vec!["50%"], Code::InvalidArgument),
    ] {
        let got = labels(&app, &ws, &a, &add, &[]).await.unwrap_err();
        assert_eq!(got.code(), code, "{add:?}");
    }
    let many: Vec<String> = (0..19).map(|i| format!("l{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = labels(&app, &ws, &a, &many, &[]).await.unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument, "2 + 19 > 20");
    let elsewhere = labels(&app, &workspace(), &a, &["vip"], &[]).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    assert_eq!(of(&app, &ws, "PSID_A").await.labels, ["billing", "follow-up"]);
    app.stop().await;
}

#[tokio::test]
async fn notes_are_in_the_thread_by_their_author_counted_nowhere_and_never_sent() {
    let vault = crate::send::VaultDouble::start(vec![crate::send::Scripted::Sent("m_never")]).await;
    let app = spawn_app_with_vault(&vault).await;
    let start = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], start).await;
    let before = of(&app, &ws, "PSID_A").await;
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "message_created"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();

    let added = app
        .grpc()
        .await
        .add_note(as_agent(
            &ws,
            "agent-1",
            note(&before.id, "  VIP customer, offer free shipping  "),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.direction, MessageDirection::Note as i32);
    assert_eq!(added.text, "VIP customer, offer free shipping");
    assert_eq!(added.conversation_id, before.id);
    let author = added.author.clone().unwrap();
    assert_eq!(
        (author.kind, author.id.as_str()),
        (AuthorKind::Human as i32, "agent-1")
    );
    assert_eq!(added.external_id, "note:".to_string() + &added.id);
    let Some(Kind::MessageCreated(created)) = next_event(&mut sub).await.kind else {
        panic!("not a MessageCreated")
    };
    assert_eq!(created.message.unwrap(), added);

    let thread = app.get(&ws, &before.id).await;
    let directions: Vec<i32> = thread.messages.iter().map(|m| m.direction).collect();
    assert_eq!(
        directions,
        [MessageDirection::Inbound as i32, MessageDirection::Note as i32]
    );
    let after = thread.conversation.unwrap();
    assert_eq!(after.message_count, before.message_count, "notes are not counted");
    assert_eq!(after.last_message_preview, before.last_message_preview);
    assert_eq!(after.last_activity_at, before.last_activity_at);
    assert!(
        vault.calls().is_empty(),
        "a note reached the vault: {:?}",
        vault.calls()
    );

    // The author comes only from the gateway's actor metadata; a note says something.
    let anonymous = app
        .grpc()
        .await
        .add_note(with_workspace(&ws, note(&before.id, "who am I")))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let empty = app
        .grpc()
        .await
        .add_note(as_agent(&ws, "agent-1", note(&before.id, "   ")))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let elsewhere = app
        .grpc()
        .await
        .add_note(as_agent(&workspace(), "agent-1", note(&before.id, "hi")))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_disconnect_deletes_the_channels_labels_notes_and_read_markers() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms() - 60_000).await;
    let id = of(&app, &ws, "PSID_A").await.id;
    labels(&app, &ws, &id, &["vip"], &[]).await.unwrap();
    app.grpc()
        .await
        .add_note(as_agent(&ws, "agent-1", note(&id, "call back tomorrow")))
        .await
        .unwrap();
    app.grpc()
        .await
        .mark_read(as_agent(
            &ws,
            "agent-1",
            scifer_proto::inbox::v1::MarkReadRequest {
                conversation_id: id.clone(),
                up_to_message_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let count_markers = || async {
        inbox::store::entity::read_marker::Entity::find()
            .filter(inbox::store::entity::read_marker::Column::ChannelId.eq(format!("ch-{PAGE}")))
            .count(&app.store)
            .await
            .unwrap()
    };
    assert_eq!(count_markers().await, 1);
    let count_labels = || async {
        inbox::store::entity::conversation_label::Entity::find()
            .filter(inbox::store::entity::conversation_label::Column::ChannelId.eq(format!("ch-{PAGE}")))
            .count(&app.store)
            .await
            .unwrap()
    };
    let count_messages = || async {
        inbox::store::entity::message::Entity::find()
            .filter(inbox::store::entity::message::Column::ChannelId.eq(format!("ch-{PAGE}")))
            .count(&app.store)
            .await
            .unwrap()
    };
    assert_eq!((count_labels().await, count_messages().await), (1, 2));

    let mut gone = channel(
        &ws,
        &format!("ch-{PAGE}"),
        ChannelKind::Messenger,
        PAGE,
        ChannelState::Disconnected,
        2,
    );
    gone.at = Some(inbox::convert::timestamp(now_ms()));
    app.publish_channel(&gone).await;
    let erased = scifer_test_support::wait_until(WAIT, || async {
        count_labels().await == 0 && count_messages().await == 0 && count_markers().await == 0
    })
    .await;
    assert!(
        erased.is_ok(),
        "left: {} labels, {} messages, {} read markers",
        count_labels().await,
        count_messages().await,
        count_markers().await
    );
    app.stop().await;
}
