//! InboxEvents are published after the store commit, on the workspace's subjects.

use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use scifer_proto::{
    events::v1::{ChannelKind, InboxEvent, inbox_event::Kind},
    inbox::v1::DeliveryStatus,
};

use crate::helpers::*;

async fn next_event(sub: &mut scifer_events::async_nats::Subscriber) -> (String, InboxEvent) {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no inbox event in time")
        .expect("subscription ended");
    let event = InboxEvent::decode(msg.payload.as_ref()).unwrap();
    (msg.subject.to_string(), event)
}

#[tokio::test]
async fn inbox_events_follow_the_commit() {
    let app = spawn_app().await;
    let ws = workspace();
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_workspace_filter(&ws))
        .await
        .unwrap();
    app.client.flush().await.unwrap();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "hello",
        1_000,
    ))
    .await;

    let (subject, created) = next_event(&mut sub).await;
    assert_eq!(subject, app.bus.inbox_event(&ws, "message_created"));
    assert_eq!(created.workspace_id, ws);
    let Some(Kind::MessageCreated(c)) = created.kind else {
        panic!("{created:?}")
    };
    let message = c.message.unwrap();
    assert_eq!(message.external_id, "m_1");
    // When the event is out, the store already holds what it announces.
    let got = app.get(&ws, &message.conversation_id).await;
    assert_eq!(got.messages[0].id, message.id);

    let (subject, updated) = next_event(&mut sub).await;
    assert_eq!(subject, app.bus.inbox_event(&ws, "conversation_updated"));
    let Some(Kind::ConversationUpdated(u)) = updated.kind else {
        panic!("{updated:?}")
    };
    assert_eq!(u.conversation.unwrap().message_count, 1);

    app.publish_meta(&delivery("PAGE", "PSID", 1_000)).await;
    let (subject, changed) = next_event(&mut sub).await;
    assert_eq!(subject, app.bus.inbox_event(&ws, "message_updated"));
    let Some(Kind::MessageUpdated(u)) = changed.kind else {
        panic!("{changed:?}")
    };
    assert_eq!(u.message.unwrap().status, DeliveryStatus::Delivered as i32);

    // Another workspace hears nothing of it.
    let mut other = app
        .client
        .subscribe(app.bus.inbox_workspace_filter(&workspace()))
        .await
        .unwrap();
    app.client.flush().await.unwrap();
    app.publish_meta(&read("PAGE", "PSID", 1_000)).await;
    let (_, read) = next_event(&mut sub).await;
    assert!(matches!(read.kind, Some(Kind::MessageUpdated(_))));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.next())
            .await
            .is_err()
    );
    app.stop().await;
}
