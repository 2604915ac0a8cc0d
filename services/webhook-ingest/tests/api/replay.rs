//! IngestAdmin.Replay: re-splitting stored deliveries by receipt time and channel kind.

use std::time::SystemTime;

use prost_types::Timestamp;
use scifer_events::StreamKind;
use scifer_proto::{events::v1::ChannelKind, ingest::v1::ReplayRequest};

use crate::helpers::{TestApp, messenger_message, spawn_app, whatsapp_message};

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

/// Drops every event, as if the META stream had been lost, keeping the ingest log.
async fn lose_meta_stream(app: &TestApp) {
    app.js
        .delete_stream(app.bus.stream_name(StreamKind::Meta))
        .await
        .unwrap();
    app.bus
        .ensure_default_stream(&app.js, StreamKind::Meta)
        .await
        .unwrap();
    assert_eq!(app.count(StreamKind::Meta).await, 0);
}

async fn replay(
    app: &TestApp,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    kind: ChannelKind,
) -> (u64, u64) {
    let response = app
        .admin()
        .await
        .replay(ReplayRequest {
            from,
            to,
            channel_kind: kind as i32,
        })
        .await
        .unwrap()
        .into_inner();
    (response.deliveries, response.events)
}

#[tokio::test]
async fn replay_republishes_exactly_the_deliveries_in_range() {
    let app = spawn_app().await;
    let a = app.event("messenger", "message", "fb:message:m_a");
    let b = app.event("whatsapp", "message", "wa:message:wamid.B");
    let c = app.event("messenger", "message", "fb:message:m_c");
    let d = app.event("messenger", "message", "fb:message:m_d");

    assert_eq!(app.post_signed(&messenger_message("m_a")).await.status(), 200);
    let t1 = now();
    assert_eq!(app.post_signed(&whatsapp_message("wamid.B")).await.status(), 200);
    assert_eq!(app.post_signed(&messenger_message("m_c")).await.status(), 200);
    let t2 = now();
    assert_eq!(app.post_signed(&messenger_message("m_d")).await.status(), 200);
    app.wait_for_meta(&[a.clone(), b.clone(), c.clone(), d.clone()])
        .await;

    lose_meta_stream(&app).await;
    // One channel kind inside [t1, t2): only C.
    assert_eq!(
        replay(&app, Some(t1), Some(t2), ChannelKind::Messenger).await,
        (1, 1)
    );
    app.wait_for_meta(std::slice::from_ref(&c)).await;

    // Every kind inside [t1, t2): B and C (C again, collapsed by its id).
    assert_eq!(
        replay(&app, Some(t1), Some(t2), ChannelKind::Unspecified).await,
        (2, 2)
    );
    app.wait_for_meta(&[b.clone(), c.clone()]).await;

    lose_meta_stream(&app).await;
    // Open-ended range from t2: only D.
    assert_eq!(
        replay(&app, Some(t2), None, ChannelKind::Unspecified).await,
        (1, 1)
    );
    app.wait_for_meta(std::slice::from_ref(&d)).await;

    // Everything: the whole log, and events already present change nothing.
    assert_eq!(replay(&app, None, None, ChannelKind::Unspecified).await, (4, 4));
    app.wait_for_meta(&[a, b, c, d]).await;
}

#[tokio::test]
async fn replay_refuses_an_empty_range() {
    let app = spawn_app().await;
    let t = now();
    let status = app
        .admin()
        .await
        .replay(ReplayRequest {
            from: Some(t),
            to: Some(t),
            channel_kind: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
