//! POST /webhooks/meta: what is stored, what is refused, and what reaches the META subjects.

use std::time::{Duration, Instant, SystemTime};

use prost_types::Timestamp;
use scifer_events::StreamKind;
use scifer_test_support::wait_until;

use crate::helpers::{
    APP_SECRET, Settings, TestApp, WAIT, messenger_message, sha256_hex, sign, spawn_app, spawn_app_with,
};

/// A Messenger delivery with a message and a read receipt.
fn message_and_read() -> Vec<u8> {
    br#"{"object":"page","entry":[{"id":"111","time":1700000000600,"messaging":[{"sender":{"id":"PSID1"},"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_one","text":"caf\u00e9 \/ ok"}},{"sender":{"id":"PSID1"},"recipient":{"id":"111"},"timestamp":1700000000600,"read":{"watermark":1700000000500}}]}]}"#.to_vec()
}

async fn assert_nothing_published(app: &TestApp) {
    assert_eq!(app.count(StreamKind::Ingest).await, 0, "INGEST is not empty");
    assert_eq!(app.count(StreamKind::Meta).await, 0, "META is not empty");
}

#[tokio::test]
async fn a_signed_delivery_is_stored_raw_and_split_into_events() {
    let app = spawn_app().await;
    let body = message_and_read();
    let before = Timestamp::from(SystemTime::now());

    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 200);
    let after = Timestamp::from(SystemTime::now());

    // The answer came after the PubAck, so the raw body is already in the ingest log.
    let raw = app.messages(StreamKind::Ingest).await;
    assert_eq!(raw.len(), 1);
    let raw = &raw[0];
    assert_eq!(
        raw.subject.as_str(),
        app.bus
            .ingest_raw(Some(scifer_proto::events::v1::ChannelKind::Messenger))
    );
    assert_eq!(raw.payload.as_ref(), body.as_slice(), "not byte for byte");
    let headers = &raw.headers;
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), sha256_hex(&body));
    let received: Timestamp = headers
        .get(webhook_ingest::ingest::RECEIVED_AT_HEADER)
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    assert!((before.seconds, before.nanos) <= (received.seconds, received.nanos));
    assert!((received.seconds, received.nanos) <= (after.seconds, after.nanos));

    app.wait_for_meta(&[
        app.event("messenger", "message", "fb:message:m_one"),
        app.event("messenger", "read", "fb:read:PSID1:1700000000500"),
    ])
    .await;
    let events = app.messages(StreamKind::Meta).await;
    for msg in &events {
        let event: scifer_proto::events::v1::MetaEvent =
            prost::Message::decode(msg.payload.as_ref()).unwrap();
        assert_eq!(event.delivery_id, sha256_hex(&body));
        assert_eq!(event.received_at, Some(received));
        let headers = &msg.headers;
        assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), event.event_id);
    }
    wait_until(WAIT, || async {
        let stats = app.stats().await;
        stats.deliveries_accepted == 1 && stats.events_published == 2
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unauthenticated_deliveries_are_refused_and_nothing_is_published() {
    let app = spawn_app().await;
    let body = message_and_read();
    let good = sign(&body);

    // No signature at all.
    assert_eq!(app.post(&body, None).await.status(), 401);
    // Only the legacy sha1 header: the sha256 one is what counts, and it is missing.
    let legacy = app
        .http
        .post(app.webhook_url())
        .header("x-hub-signature", "sha1=0123456789abcdef0123456789abcdef01234567")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 401);
    // A sha1 value in the sha256 header is present but cannot authenticate anything.
    let sha1_value = app
        .post(&body, Some("sha1=0123456789abcdef0123456789abcdef01234567"))
        .await;
    assert_eq!(sha1_value.status(), 403);
    // One flipped byte in the body.
    let mut flipped = body.clone();
    flipped[20] ^= 0x01;
    assert_eq!(app.post(&flipped, Some(&good)).await.status(), 403);
    // Signed with another app's secret.
    let other = scifer_meta::sign_sha256(b"another-app-secret", &body);
    assert_eq!(app.post(&body, Some(&other)).await.status(), 403);
    // The same JSON re-serialized (escapes undone): a different byte string.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let reserialized = serde_json::to_vec(&value).unwrap();
    assert_ne!(reserialized, body);
    let response = app.post(&reserialized, Some(&good)).await;
    assert_eq!(response.status(), 403);
    let text = response.text().await.unwrap();
    assert!(!text.contains(APP_SECRET) && !text.contains(&good[7..]), "{text}");

    assert_nothing_published(&app).await;
    let stats = app.stats().await;
    assert_eq!(stats.rejected_missing_signature, 2);
    assert_eq!(stats.rejected_bad_signature, 4);
    assert_eq!(stats.deliveries_accepted, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_and_nothing_is_published() {
    let limit = 64 * 1024;
    let app = spawn_app_with(Settings {
        env: vec![("MAX_BODY_BYTES".into(), limit.to_string())],
        ..Settings::default()
    })
    .await;
    let padded = |len: usize| {
        let head = r#"{"object":"page","entry":[],"pad":""#;
        let mut body = head.as_bytes().to_vec();
        body.resize(len - 2, b'x');
        body.extend_from_slice(br#""}"#);
        body
    };
    let too_big = padded(limit + 1);
    assert_eq!(app.post_signed(&too_big).await.status(), 413);
    // Unsigned as well: the size is refused before anything else.
    assert_eq!(app.post(&too_big, None).await.status(), 413);
    assert_nothing_published(&app).await;
    assert_eq!(app.stats().await.rejected_too_large, 2);

    // Exactly at the limit is fine.
    assert_eq!(app.post_signed(&padded(limit)).await.status(), 200);
    assert_eq!(app.count(StreamKind::Ingest).await, 1);
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_json_object_is_quarantined() {
    let app = spawn_app().await;
    let broken = br#"{"object":"page","entry":[{"id":"1""#.to_vec();
    let array = b"[1,2,3]".to_vec();
    for body in [&broken, &array] {
        assert_eq!(app.post_signed(body).await.status(), 200);
    }
    let stored = app.messages(StreamKind::Ingest).await;
    assert_eq!(stored.len(), 2);
    for (msg, body) in stored.iter().zip([&broken, &array]) {
        assert_eq!(msg.subject.as_str(), app.bus.ingest_quarantine());
        assert_eq!(msg.payload.as_ref(), body.as_slice());
    }
    let stats = app.stats().await;
    assert_eq!(stats.deliveries_quarantined, 2);
    assert_eq!(stats.deliveries_accepted, 0);
    // The splitter reads only ingest.raw.*, so nothing reaches META.
    assert_eq!(app.count(StreamKind::Meta).await, 0);
}

#[tokio::test]
async fn unknown_objects_and_events_are_published_as_unhandled() {
    let app = spawn_app().await;
    let unknown_object =
        br#"{"object":"user","entry":[{"id":"U1","time":1,"changes":[{"field":"feed","value":{"x":1}}]}]}"#
            .to_vec();
    let unknown_event = br#"{"object":"page","entry":[{"id":"111","time":1,"messaging":[{"sender":{"id":"PSID1"},"recipient":{"id":"111"},"timestamp":1,"mystery":{"a":1}}]}]}"#.to_vec();
    for body in [&unknown_object, &unknown_event] {
        assert_eq!(app.post_signed(body).await.status(), 200);
    }
    let raw_subjects: Vec<String> = app
        .messages(StreamKind::Ingest)
        .await
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(
        raw_subjects,
        [
            app.bus.ingest_raw(None),
            app.bus
                .ingest_raw(Some(scifer_proto::events::v1::ChannelKind::Messenger))
        ]
    );

    let unhandled = app.bus.meta_unhandled();
    wait_until(WAIT, || async { app.meta_ids().await.len() == 2 })
        .await
        .unwrap();
    let ids = app.meta_ids().await;
    assert!(ids.iter().all(|(subject, _)| *subject == unhandled), "{ids:?}");
    assert!(
        ids.iter().any(|(_, id)| id.starts_with("meta:unhandled:h:")),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|(_, id)| id.starts_with("fb:unhandled:h:")),
        "{ids:?}"
    );
    wait_until(WAIT, || async { app.stats().await.unhandled_items == 2 })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_duplicate_delivery_is_stored_once_and_its_events_are_not_duplicated() {
    let app = spawn_app().await;
    let body = messenger_message("m_dup");
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.wait_for_meta(&[app.event("messenger", "message", "fb:message:m_dup")])
        .await;
    // Meta's retry of the same delivery, after the first was already split.
    assert_eq!(app.post_signed(&body).await.status(), 200);
    assert_eq!(app.count(StreamKind::Ingest).await, 1);
    assert_eq!(app.stats().await.deliveries_accepted, 2);
    // The same item in a different delivery (Meta re-batched it) collapses on its event id.
    let rebatched = String::from_utf8(body.clone())
        .unwrap()
        .replace("1700000000000,\"messaging", "1700000000001,\"messaging");
    assert_ne!(rebatched.as_bytes(), body.as_slice());
    assert_eq!(app.post_signed(rebatched.as_bytes()).await.status(), 200);
    assert_eq!(app.count(StreamKind::Ingest).await, 2);
    wait_until(WAIT, || async { app.stats().await.events_published == 2 })
        .await
        .unwrap();
    assert_eq!(
        app.meta_ids().await,
        [app.event("messenger", "message", "fb:message:m_dup")]
    );
}

#[tokio::test]
async fn while_nats_is_down_deliveries_get_503_and_the_retry_is_kept() {
    let mut app = spawn_app().await;
    let body = messenger_message("m_outage");
    app.nats.stop();

    let started = Instant::now();
    let response = app.post_signed(&body).await;
    assert_eq!(response.status(), 503);
    // Well inside Meta's ~5 s budget (PUBLISH_TIMEOUT_MS is 1000 here).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!response.text().await.unwrap().is_empty());
    assert!(app.stats().await.unavailable >= 1);

    app.nats.restart().await;
    // Meta retries until it gets a 200.
    wait_until(Duration::from_secs(30), || async {
        app.post_signed(&body).await.status() == 200
    })
    .await
    .unwrap();
    app.wait_for_meta(&[app.event("messenger", "message", "fb:message:m_outage")])
        .await;
    assert_eq!(app.count(StreamKind::Ingest).await, 1);
}

#[tokio::test]
async fn the_trace_context_travels_from_the_request_to_the_events() {
    let app = spawn_app().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = messenger_message("m_traced");
    let response = app
        .http
        .post(app.webhook_url())
        .header("x-hub-signature-256", sign(&body))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.wait_for_meta(&[app.event("messenger", "message", "fb:message:m_traced")])
        .await;
    let raw = &app.messages(StreamKind::Ingest).await[0];
    let event = &app.messages(StreamKind::Meta).await[0];
    for msg in [raw, event] {
        let traceparent = msg.headers.get("traceparent").unwrap().as_str();
        assert!(traceparent.contains(trace_id), "{}: {traceparent}", msg.subject);
    }
}
