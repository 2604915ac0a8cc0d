//! GET /webhooks/meta: Meta's verification handshake.

use crate::helpers::{Settings, VERIFY_TOKEN, spawn_app, spawn_app_with};

#[tokio::test]
async fn handshake_echoes_the_challenge_exactly() {
    let app = spawn_app().await;
    let response = app
        .handshake(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", VERIFY_TOKEN),
            ("hub.challenge", "1158201444 & more"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(response.text().await.unwrap(), "1158201444 & more");
}

#[tokio::test]
async fn handshake_with_a_wrong_token_is_refused() {
    let app = spawn_app().await;
    for token in ["wrong", "", "test-verify-token "] {
        let response = app
            .handshake(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "42"),
            ])
            .await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert!(!response.text().await.unwrap().contains("42"));
    }
}

#[tokio::test]
async fn handshake_with_a_wrong_or_missing_mode_is_refused() {
    let app = spawn_app().await;
    for query in [
        vec![
            ("hub.mode", "unsubscribe"),
            ("hub.verify_token", VERIFY_TOKEN),
            ("hub.challenge", "42"),
        ],
        vec![("hub.verify_token", VERIFY_TOKEN), ("hub.challenge", "42")],
        vec![("hub.mode", "subscribe"), ("hub.challenge", "42")],
        vec![("hub.mode", "subscribe"), ("hub.verify_token", VERIFY_TOKEN)],
    ] {
        let response = app.handshake(&query).await;
        assert_eq!(response.status(), 403, "{query:?}");
    }
}

#[tokio::test]
async fn handshake_is_refused_when_the_configured_token_is_empty() {
    let app = spawn_app_with(Settings {
        verify_token: String::new(),
        ..Settings::default()
    })
    .await;
    let response = app
        .handshake(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", ""),
            ("hub.challenge", "42"),
        ])
        .await;
    assert_eq!(response.status(), 403);
}
