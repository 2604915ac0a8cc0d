//! Disconnecting a channel deletes everything the inbox holds for it, and nothing brings it back.

use inbox::store::entity::{
    applied_event, channel, contact, conversation, deferred_update, message, pending_event,
};
use scifer_events::{Outcome, StreamKind};
use scifer_proto::{
    events::v1::{self as ev, ChannelEvent, ChannelKind, ChannelState, MetaEvent, meta_event::Kind},
    inbox::v1::ListConversationsRequest,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::*;

/// Rows per table that belong to one channel (or, for parked events, to its account).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Rows {
    contacts: u64,
    conversations: u64,
    messages: u64,
    deferred_updates: u64,
    applied_events: u64,
    pending_events: u64,
}

impl Rows {
    fn is_empty(&self) -> bool {
        *self == Rows::default()
    }
}

async fn rows(app: &TestApp, channel_id: &str, kind: ChannelKind, account: &str) -> Rows {
    let db = &app.store;
    Rows {
        contacts: contact::Entity::find()
            .filter(contact::Column::ChannelId.eq(channel_id))
            .count(db)
            .await
            .unwrap(),
        conversations: conversation::Entity::find()
            .filter(conversation::Column::ChannelId.eq(channel_id))
            .count(db)
            .await
            .unwrap(),
        messages: message::Entity::find()
            .filter(message::Column::ChannelId.eq(channel_id))
            .count(db)
            .await
            .unwrap(),
        deferred_updates: deferred_update::Entity::find()
            .filter(deferred_update::Column::ChannelId.eq(channel_id))
            .count(db)
            .await
            .unwrap(),
        applied_events: applied_event::Entity::find()
            .filter(applied_event::Column::ChannelId.eq(channel_id))
            .count(db)
            .await
            .unwrap(),
        pending_events: pending_event::Entity::find()
            .filter(pending_event::Column::ChannelKind.eq(kind as i32))
            .filter(pending_event::Column::AccountId.eq(account))
            .count(db)
            .await
            .unwrap(),
    }
}

async fn stored_channel(app: &TestApp, id: &str) -> channel::Model {
    channel::Entity::find_by_id(id.to_string())
        .one(&app.store)
        .await
        .unwrap()
        .unwrap()
}

fn disconnected(ws: &str, channel_id: &str, account: &str, version: i64, at_ms: Option<i64>) -> ChannelEvent {
    let mut event = channel(
        ws,
        channel_id,
        ChannelKind::Messenger,
        account,
        ChannelState::Disconnected,
        version,
    );
    event.at = at_ms.map(inbox::convert::timestamp);
    event
}

fn with_attachment(mut event: MetaEvent) -> MetaEvent {
    if let Some(Kind::Message(m)) = &mut event.kind {
        m.attachments.push(ev::Attachment {
            r#type: "image".into(),
            url: "https://cdn.example/photo.jpg".into(),
            ..Default::default()
        });
    }
    event
}

/// A Page's traffic touching every table: two customers, an attachment, an echo with receipts, a
/// reaction, an edit, a postback, and a reaction to a message not stored yet (a deferred update).
/// Returns the events and how many messages they create.
fn traffic(account: &str, tag: &str, t0: i64) -> (Vec<MetaEvent>, i64) {
    let k = ChannelKind::Messenger;
    let (c1, c2) = (format!("{tag}-PSID1"), format!("{tag}-PSID2"));
    let mid = |n: u32| format!("m_{tag}_{n}");
    let events = vec![
        inbound(k, account, &c1, &mid(1), "hello", t0),
        with_attachment(inbound(k, account, &c1, &mid(2), "", t0 + 1_000)),
        inbound(k, account, &c2, &mid(3), "other customer", t0 + 2_000),
        echo(k, account, &c1, &mid(4), "our answer", t0 + 3_000),
        delivery(account, &c1, t0 + 4_000),
        read(account, &c1, t0 + 5_000),
        reaction(k, account, &c1, &mid(4), "❤", true, t0 + 6_000),
        edit(account, &c2, &mid(3), "edited", 1, t0 + 7_000),
        postback(account, &c2, &mid(5), "Get started", "START", t0 + 8_000),
        reaction(k, account, &c2, &mid(99), "😮", true, t0 + 9_000),
    ];
    (events, 5)
}

async fn publish_all(app: &TestApp, events: &[MetaEvent]) {
    for e in events {
        app.publish_meta(e).await;
    }
}

#[tokio::test]
async fn disconnecting_deletes_every_row_of_the_channel_and_nothing_of_the_others() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_channel(&connected(&ws, "ch-b", ChannelKind::Messenger, "PAGE_B"))
        .await;
    let t0 = now_ms() - 600_000;
    let (a_events, a_messages) = traffic("PAGE_A", "a", t0);
    let (b_events, b_messages) = traffic("PAGE_B", "b", t0);
    publish_all(&app, &a_events).await;
    publish_all(&app, &b_events).await;
    app.wait_for_messages(&ws, a_messages + b_messages).await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;

    let a_before = rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A").await;
    let b_before = rows(&app, "ch-b", ChannelKind::Messenger, "PAGE_B").await;
    let expected = Rows {
        contacts: 2,
        conversations: 2,
        messages: 5,
        deferred_updates: 1,
        applied_events: 10,
        pending_events: 0,
    };
    assert_eq!(a_before, expected);
    assert_eq!(b_before, expected);
    // The message rows carry attachments, reactions, edits and receipts.
    let a_messages_rows = message::Entity::find()
        .filter(message::Column::ChannelId.eq("ch-a"))
        .all(&app.store)
        .await
        .unwrap();
    assert!(
        a_messages_rows
            .iter()
            .any(|m| m.attachments_json.contains("photo.jpg"))
    );
    assert!(a_messages_rows.iter().any(|m| m.reactions_json.contains('❤')));
    assert!(a_messages_rows.iter().any(|m| m.edited));

    app.publish_channel(&disconnected(&ws, "ch-a", "PAGE_A", 2, Some(now_ms())))
        .await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, StreamKind::Channels)
        .await;

    let a_after = rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A").await;
    assert!(
        a_after.is_empty(),
        "left of the disconnected channel: {a_after:?}"
    );
    assert_eq!(
        rows(&app, "ch-b", ChannelKind::Messenger, "PAGE_B").await,
        b_before
    );
    // Nothing else of A anywhere: every message, conversation and contact left is B's.
    let others = message::Entity::find()
        .filter(message::Column::ChannelId.ne("ch-b"))
        .count(&app.store)
        .await
        .unwrap()
        + conversation::Entity::find()
            .filter(conversation::Column::ChannelId.ne("ch-b"))
            .count(&app.store)
            .await
            .unwrap()
        + contact::Entity::find()
            .filter(contact::Column::ChannelId.ne("ch-b"))
            .count(&app.store)
            .await
            .unwrap();
    assert_eq!(others, 0);

    // The channel row stays as a tombstone without the account's name.
    let tombstone = stored_channel(&app, "ch-a").await;
    assert_eq!(tombstone.state, ChannelState::Disconnected as i32);
    assert_eq!(tombstone.version, 2);
    assert_eq!(tombstone.display_name, "");
    assert!(
        tombstone.account_id.starts_with("sha256:") && !tombstone.account_id.contains("PAGE_A"),
        "the tombstone keeps a one-way key, not the account id: {}",
        tombstone.account_id
    );
    assert!(tombstone.disconnected_at_ms > 0);

    // The API no longer shows them; B is untouched.
    let listed = app.conversations(&ws).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.channel_id == "ch-b"), "{listed:?}");
    let only_a = app
        .list(
            &ws,
            ListConversationsRequest {
                channel_id: "ch-a".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(only_a.conversations.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn after_a_disconnect_redeliveries_stale_versions_and_a_reconnect_bring_nothing_back() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    let t0 = now_ms() - 600_000;
    let (a_events, a_messages) = traffic("PAGE_A", "a", t0);
    publish_all(&app, &a_events).await;
    app.wait_for_messages(&ws, a_messages).await;

    // No `at`: the inbox takes its own time of the disconnect.
    app.publish_channel(&disconnected(&ws, "ch-a", "PAGE_A", 2, None))
        .await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, StreamKind::Channels)
        .await;
    assert!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .is_empty()
    );

    // Meta (or a replay) delivers the old events again, past the bus's duplicate window.
    for (i, e) in a_events.iter().enumerate() {
        app.publish_meta_as(e, &format!("redelivery-{i}")).await;
    }
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;
    let after_redelivery = rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A").await;
    assert!(
        after_redelivery.is_empty(),
        "redelivered events came back (or were parked): {after_redelivery:?}"
    );

    // A late "connected" with a lower version does not resurrect the channel.
    let mut stale = connected(&ws, "ch-a", ChannelKind::Messenger, "PAGE_A");
    stale.event_id = "stale-connected".into();
    app.publish_channel(&stale).await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, StreamKind::Channels)
        .await;
    let tombstone = stored_channel(&app, "ch-a").await;
    assert_eq!(tombstone.state, ChannelState::Disconnected as i32);
    assert_eq!(tombstone.version, 2);
    assert_eq!(tombstone.display_name, "");

    // The account is connected again: a new channel id. Old events still belong to the deleted
    // data; a message sent after the disconnect goes to the new channel.
    app.publish_channel(&connected(&ws, "ch-a2", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, StreamKind::Channels)
        .await;
    for (i, e) in a_events.iter().enumerate() {
        app.publish_meta_as(e, &format!("after-reconnect-{i}")).await;
    }
    let fresh = inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "a-PSID1",
        "m_new",
        "hello again",
        now_ms(),
    );
    app.publish_meta(&fresh).await;
    app.wait_for_messages(&ws, 1).await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;
    let listed = app.conversations(&ws).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].channel_id, "ch-a2");
    assert_eq!(listed[0].last_message_preview, "hello again");
    assert!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .is_empty()
    );
    assert_eq!(
        message::Entity::find().count(&app.store).await.unwrap(),
        1,
        "only the message sent after the disconnect"
    );
    app.stop().await;
}

#[tokio::test]
async fn events_parked_after_a_disconnect_expire_without_a_reconnect() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    let disconnect_at = now_ms();
    app.publish_channel(&disconnected(&ws, "ch-a", "PAGE_A", 2, Some(disconnect_at)))
        .await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, StreamKind::Channels)
        .await;
    // In flight when the vault unsubscribed: sent after the disconnect, so it may belong to a
    // reconnect and waits for one.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID",
        "m_late",
        "late",
        disconnect_at + 1_000,
    ))
    .await;
    // An account that was never connected: its events wait as before, and do not expire.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_NEW",
        "PSID",
        "m_early",
        "early",
        disconnect_at,
    ))
    .await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;
    assert_eq!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .pending_events,
        1
    );

    // Not yet expired, then expired.
    assert_eq!(
        inbox::apply::expire_parked_after_disconnect(&app.store, now_ms() - 3_600_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        inbox::apply::expire_parked_after_disconnect(&app.store, now_ms() + 1_000)
            .await
            .unwrap(),
        1
    );
    assert!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .is_empty()
    );
    assert_eq!(
        rows(&app, "-", ChannelKind::Messenger, "PAGE_NEW")
            .await
            .pending_events,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_that_connects_and_disconnects_a_channel_keeps_and_announces_nothing_of_it() {
    let app = build_app(30).await;
    let ws = workspace();
    // Events that arrived before their channel: parked, then replayed by its "connected".
    publish_all(&app, &traffic("PAGE_A", "a", now_ms() - 600_000).0).await;
    let metas = fetch(&app.app().meta_consumer(), 10).await;
    let outcomes = app.app().meta_handler().handle_batch(metas.clone()).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Ack));
    for m in metas {
        m.ack().await.unwrap();
    }
    assert_eq!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .pending_events,
        10
    );

    // Connected and disconnected in one batch, as a consumer catching up would see them.
    app.publish_channel(&connected(&ws, "ch-a", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_channel(&disconnected(&ws, "ch-a", "PAGE_A", 2, Some(now_ms())))
        .await;
    let channels = fetch(&app.app().channel_consumer(), 2).await;
    let outcomes = app.app().channel_handler().handle_batch(channels).await;
    assert_eq!(outcomes, vec![Outcome::Ack, Outcome::Ack]);

    assert!(
        rows(&app, "ch-a", ChannelKind::Messenger, "PAGE_A")
            .await
            .is_empty()
    );
    assert_eq!(message::Entity::find().count(&app.store).await.unwrap(), 0);
    // What the replay created was never announced: no InboxEvent carries the deleted messages.
    let mut inbox_stream = app
        .js
        .get_stream(app.bus.stream_name(StreamKind::Inbox))
        .await
        .unwrap();
    assert_eq!(inbox_stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn the_disconnect_migration_rolls_back_and_forward() {
    use sea_orm_migration::MigratorTrait;

    let db = scifer_test_support::TestDb::new().await;
    let store = inbox::store::open(db.url()).await.unwrap();
    inbox::store::Migrator::down(&store, Some(1)).await.unwrap();
    inbox::store::Migrator::up(&store, None).await.unwrap();
    assert_eq!(
        applied_event::Entity::find().count(&store).await.unwrap(),
        0,
        "the table is usable with its new column"
    );
    store.close().await.unwrap();
}
