//! The splitter as a durable consumer: what was acknowledged to Meta survives the process.

use scifer_events::StreamKind;
use scifer_test_support::wait_until;

use crate::helpers::{Settings, WAIT, messenger_message, spawn_app_with, whatsapp_message};

#[tokio::test]
async fn a_delivery_acknowledged_before_a_crash_is_split_after_restart() {
    let mut app = spawn_app_with(Settings {
        splitter: false,
        ..Settings::default()
    })
    .await;
    let messenger = messenger_message("m_crash");
    let whatsapp = whatsapp_message("wamid.CRASH");
    assert_eq!(app.post_signed(&messenger).await.status(), 200);
    assert_eq!(app.post_signed(&whatsapp).await.status(), 200);
    assert_eq!(app.count(StreamKind::Ingest).await, 2);
    assert_eq!(app.count(StreamKind::Meta).await, 0);

    // Killed right after answering 200: the raw deliveries are all there is.
    app.kill_service().await;
    app.start_service(Settings::default()).await;

    app.wait_for_meta(&[
        app.event("messenger", "message", "fb:message:m_crash"),
        app.event("whatsapp", "message", "wa:message:wamid.CRASH"),
    ])
    .await;
    // Every raw delivery was acknowledged by the splitter.
    let stream = app
        .js
        .get_stream(app.bus.stream_name(StreamKind::Ingest))
        .await
        .unwrap();
    wait_until(WAIT, || {
        let stream = stream.clone();
        async move {
            let info = stream
                .consumer_info(webhook_ingest::splitter::CONSUMER_NAME)
                .await;
            info.is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn stopping_gracefully_finishes_and_restarting_resumes_where_it_stopped() {
    let mut app = spawn_app_with(Settings::default()).await;
    assert_eq!(
        app.post_signed(&messenger_message("m_before")).await.status(),
        200
    );
    app.wait_for_meta(&[app.event("messenger", "message", "fb:message:m_before")])
        .await;
    app.stop_service().await;

    app.start_service(Settings::default()).await;
    assert_eq!(app.post_signed(&messenger_message("m_after")).await.status(), 200);
    app.wait_for_meta(&[
        app.event("messenger", "message", "fb:message:m_before"),
        app.event("messenger", "message", "fb:message:m_after"),
    ])
    .await;
}
