//! Redelivered and duplicate events change nothing; a crash between commit and ack loses nothing and
//! duplicates nothing.

use inbox::store::entity::message;
use scifer_events::{Outcome, StreamKind};
use scifer_proto::events::v1::ChannelKind;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::helpers::*;

#[tokio::test]
async fn duplicate_and_redelivered_events_create_no_duplicates() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    let first = inbound(ChannelKind::Messenger, "PAGE", "PSID", "m_1", "hello", 1_000);
    app.publish_meta(&first).await;
    // Meta retrying hours later: same event, past the bus's duplicate window (new Nats-Msg-Id).
    app.publish_meta_as(&first, "retry-1").await;
    // The same mid under another event id (a re-sent delivery body).
    let mut again = first.clone();
    again.event_id = "another-envelope".into();
    app.publish_meta(&again).await;
    // A reaction delivered twice must not toggle or double.
    let r = reaction(ChannelKind::Messenger, "PAGE", "PSID", "m_1", "👍", true, 2_000);
    app.publish_meta(&r).await;
    app.publish_meta_as(&r, "retry-2").await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;

    let convs = app.conversations(&ws).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].message_count, 1);
    let got = app.get(&ws, &convs[0].id).await;
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].reactions.len(), 1);
    assert_eq!(message::Entity::find().count(&app.store).await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_crash_after_commit_and_before_ack_redelivers_without_duplicates() {
    // A short ack wait so the unacknowledged batch comes back quickly.
    let mut app = build_app(1).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "hello",
        1_000,
    ))
    .await;
    app.publish_meta(&reaction(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "❤",
        true,
        2_000,
    ))
    .await;

    // The channel batch goes through normally.
    let channels = fetch(&app.app().channel_consumer(), 1).await;
    let outcomes = app.app().channel_handler().handle_batch(channels.clone()).await;
    assert_eq!(outcomes, vec![Outcome::Ack]);
    for m in channels {
        m.ack().await.unwrap();
    }

    // The meta batch is written and committed... and the process "dies" before acknowledging.
    let metas = fetch(&app.app().meta_consumer(), 2).await;
    let outcomes = app.app().meta_handler().handle_batch(metas).await;
    assert_eq!(outcomes, vec![Outcome::Ack, Outcome::Ack]);
    assert_eq!(
        message::Entity::find().count(&app.store).await.unwrap(),
        1,
        "committed before the ack"
    );

    // The restarted service gets the same batch again once the ack wait passes.
    app.start();
    app.wait_consumer_caught_up(inbox::META_CONSUMER, StreamKind::Meta)
        .await;
    assert_eq!(message::Entity::find().count(&app.store).await.unwrap(), 1);
    let convs = app.conversations(&ws).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].message_count, 1);
    let got = app.get(&ws, &convs[0].id).await;
    assert_eq!(
        got.messages[0].reactions.len(),
        1,
        "the reaction was applied once"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_undecodable_event_is_rejected_and_the_rest_of_the_batch_applied() {
    let app = build_app(30).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    let channels = fetch(&app.app().channel_consumer(), 1).await;
    app.app().channel_handler().handle_batch(channels).await;
    app.publisher
        .send_bytes(
            app.bus.meta_event(ChannelKind::Messenger, "event"),
            "garbage",
            "x",
            (&b"\xff\xff\xff"[..]).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "hello",
        1_000,
    ))
    .await;
    let metas = fetch(&app.app().meta_consumer(), 2).await;
    let outcomes = app.app().meta_handler().handle_batch(metas).await;
    assert_eq!(outcomes, vec![Outcome::Reject, Outcome::Ack]);
    assert_eq!(message::Entity::find().count(&app.store).await.unwrap(), 1);
}
