//! Receipts, reactions and edits, in any order.

use scifer_proto::{
    events::v1::{ChannelKind, WhatsAppStatusKind},
    inbox::v1::DeliveryStatus,
};

use crate::helpers::*;

#[tokio::test]
async fn read_before_delivered_leaves_the_message_read() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_in",
        "hi",
        1_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "first",
        2_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_2",
        "second",
        3_000,
    ))
    .await;
    app.publish_meta(&read("PAGE", "PSID", 2_500)).await;
    app.publish_meta(&delivery("PAGE", "PSID", 3_000)).await;
    let got = app
        .wait_for(&ws, "m_2 delivered", |g| {
            g.messages
                .iter()
                .any(|m| m.external_id == "m_2" && m.status == DeliveryStatus::Delivered as i32)
        })
        .await;
    let status = |mid: &str| got.messages.iter().find(|m| m.external_id == mid).unwrap().status;
    assert_eq!(
        status("m_1"),
        DeliveryStatus::Read as i32,
        "read stays read after a later delivery"
    );
    assert_eq!(status("m_2"), DeliveryStatus::Delivered as i32);
    assert_eq!(
        status("m_in"),
        DeliveryStatus::Unspecified as i32,
        "receipts never touch inbound messages"
    );

    // An echo arriving after the receipts that cover it starts with their status.
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_0",
        "late echo",
        1_500,
    ))
    .await;
    let got = app
        .wait_for(&ws, "late echo stored", |g| {
            g.messages.iter().any(|m| m.external_id == "m_0")
        })
        .await;
    let late = got.messages.iter().find(|m| m.external_id == "m_0").unwrap();
    assert_eq!(late.status, DeliveryStatus::Read as i32);
    app.stop().await;
}

#[tokio::test]
async fn status_reaction_and_edit_before_the_message_are_applied_when_it_arrives() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE"))
        .await;
    app.publish_channel(&connected(&ws, "wa", ChannelKind::Whatsapp, "PHONE"))
        .await;
    // Updates first.
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
    app.publish_meta(&edit("PAGE", "PSID", "m_1", "edited text", 1, 2_500))
        .await;
    app.publish_meta(&wa_status("PHONE", "wamid.1", WhatsAppStatusKind::Read, 3_000))
        .await;
    app.publish_meta(&wa_status(
        "PHONE",
        "wamid.1",
        WhatsAppStatusKind::Delivered,
        2_000,
    ))
    .await;
    // Then the messages.
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "original",
        1_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Whatsapp,
        "PHONE",
        "5511999990000",
        "wamid.1",
        "oi",
        1_000,
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;

    for conv in app.conversations(&ws).await {
        let got = app.get(&ws, &conv.id).await;
        let m = &got.messages[0];
        match m.external_id.as_str() {
            "m_1" => {
                assert_eq!(m.text, "edited text");
                assert!(m.edited);
                assert_eq!(m.reactions.len(), 1);
                assert_eq!(
                    (m.reactions[0].by.as_str(), m.reactions[0].emoji.as_str()),
                    ("customer", "❤")
                );
            }
            "wamid.1" => assert_eq!(m.status, DeliveryStatus::Read as i32),
            other => panic!("unexpected message {other}"),
        }
    }

    // Unreact, and an older edit arriving late, on the stored message.
    app.publish_meta(&reaction(
        ChannelKind::Messenger,
        "PAGE",
        "PSID",
        "m_1",
        "",
        false,
        4_000,
    ))
    .await;
    app.publish_meta(&edit("PAGE", "PSID", "m_1", "older edit", 0, 2_000))
        .await;
    let got = app
        .wait_for(&ws, "reaction removed", |g| {
            g.messages
                .iter()
                .any(|m| m.external_id == "m_1" && m.reactions.is_empty())
        })
        .await;
    let m = got.messages.iter().find(|m| m.external_id == "m_1").unwrap();
    assert_eq!(m.text, "edited text", "an older edit does not win");
    app.stop().await;
}

#[tokio::test]
async fn whatsapp_failed_status_keeps_the_error_and_a_later_delivery_wins() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "wa", ChannelKind::Whatsapp, "PHONE"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Whatsapp,
        "PHONE",
        "5511999990000",
        "wamid.in",
        "oi",
        1_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Whatsapp,
        "PHONE",
        "5511999990000",
        "wamid.a",
        "promo",
        2_000,
    ))
    .await;
    app.publish_meta(&echo(
        ChannelKind::Whatsapp,
        "PHONE",
        "5511999990000",
        "wamid.b",
        "voice",
        2_100,
    ))
    .await;
    app.publish_meta(&wa_status("PHONE", "wamid.a", WhatsAppStatusKind::Failed, 2_500))
        .await;
    app.publish_meta(&wa_status("PHONE", "wamid.a", WhatsAppStatusKind::Sent, 2_400))
        .await;
    app.publish_meta(&wa_status("PHONE", "wamid.b", WhatsAppStatusKind::Played, 2_600))
        .await;
    let got = app
        .wait_for(&ws, "failed and played", |g| {
            g.messages
                .iter()
                .any(|m| m.external_id == "wamid.a" && m.status == DeliveryStatus::Failed as i32)
                && g.messages
                    .iter()
                    .any(|m| m.external_id == "wamid.b" && m.status == DeliveryStatus::Read as i32)
        })
        .await;
    let a = got.messages.iter().find(|m| m.external_id == "wamid.a").unwrap();
    assert_eq!(a.error_code, 131047);
    assert!(
        a.error_message.starts_with("Re-engagement message"),
        "{}",
        a.error_message
    );

    // Failed is terminal for "sent", but Meta's later delivered receipt means it did arrive.
    app.publish_meta(&wa_status(
        "PHONE",
        "wamid.a",
        WhatsAppStatusKind::Delivered,
        2_700,
    ))
    .await;
    app.wait_for(&ws, "failed then delivered", |g| {
        g.messages
            .iter()
            .any(|m| m.external_id == "wamid.a" && m.status == DeliveryStatus::Delivered as i32)
    })
    .await;
    app.stop().await;
}
