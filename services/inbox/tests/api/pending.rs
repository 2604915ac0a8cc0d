//! Events whose channel is not (or no longer) connected wait, and are processed once it is.

use scifer_proto::events::v1::{ChannelKind, ChannelState};

use crate::helpers::*;

#[tokio::test]
async fn events_before_their_channel_are_processed_once_it_appears() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_meta(&inbound(
        ChannelKind::Instagram,
        "IG",
        "IGSID",
        "ig_2",
        "second",
        2_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Instagram,
        "IG",
        "IGSID",
        "ig_1",
        "first",
        1_000,
    ))
    .await;
    app.publish_meta(&reaction(
        ChannelKind::Instagram,
        "IG",
        "IGSID",
        "ig_1",
        "😮",
        true,
        3_000,
    ))
    .await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, scifer_events::StreamKind::Meta)
        .await;
    assert!(
        app.conversations(&ws).await.is_empty(),
        "nothing attached before the channel exists"
    );

    app.publish_channel(&connected(&ws, "ig-ch", ChannelKind::Instagram, "IG"))
        .await;
    app.wait_for_messages(&ws, 2).await;
    let conv = app.conversations(&ws).await.remove(0);
    assert_eq!(conv.last_message_preview, "second");
    let got = app.get(&ws, &conv.id).await;
    let texts: Vec<&str> = got.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
    assert_eq!(got.messages[0].reactions.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_disconnected_channel_loses_its_data_and_parks_later_events_for_a_reconnect() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "before",
        now_ms() - 60_000,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;

    app.publish_channel(&channel(
        &ws,
        "ch",
        ChannelKind::Messenger,
        "PAGE",
        ChannelState::Disconnected,
        2,
    ))
    .await;
    // A stale "connected" (older version) must not roll the channel back.
    let mut stale = channel(
        &ws,
        "ch",
        ChannelKind::Messenger,
        "PAGE",
        ChannelState::Connected,
        1,
    );
    stale.event_id = "stale".into();
    app.publish_channel(&stale).await;
    app.wait_consumer_caught_up(inbox::CHANNEL_CONSUMER, scifer_events::StreamKind::Channels)
        .await;
    // Disconnecting deleted the channel's data (see disconnect.rs).
    app.wait_for_messages(&ws, 0).await;
    // Sent after the disconnect: parked, not attached to the disconnected channel.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_2",
        "while away",
        now_ms() + 1_000,
    ))
    .await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, scifer_events::StreamKind::Meta)
        .await;
    app.wait_for_messages(&ws, 0).await;

    app.publish_channel(&channel(
        &ws,
        "ch",
        ChannelKind::Messenger,
        "PAGE",
        ChannelState::Connected,
        3,
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    let conv = app.conversations(&ws).await.remove(0);
    assert_eq!(conv.last_message_preview, "while away");
    app.stop().await;
}
