use scifer_meta_sim::webhooks::verify_subscription;

use crate::helpers::{Receiver, VERIFY_TOKEN};

#[tokio::test]
async fn handshake_request_shape_and_echo() {
    let rx = Receiver::ok().await;
    let out = verify_subscription(&rx.url, VERIFY_TOKEN, "1158201444")
        .await
        .unwrap();
    assert_eq!(out.status.as_u16(), 200);
    assert_eq!(out.body, "1158201444");
    assert!(out.challenge_echoed);
    assert_eq!(out.content_type.as_deref(), Some("text/plain"));

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].uri.path(), "/webhook");
    assert_eq!(
        reqs[0].uri.query(),
        Some(format!("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn wrong_token_is_not_verified_and_query_is_encoded() {
    let rx = Receiver::ok().await;
    let out = verify_subscription(&format!("{}?tenant=a", rx.url), "wrong token&x=1", "42")
        .await
        .unwrap();
    assert_eq!(out.status.as_u16(), 403);
    assert!(!out.challenge_echoed);
    let q = rx.requests()[0].uri.query().unwrap().to_owned();
    // The callback URL's own query is kept, and the token is form-encoded, not spliced in.
    assert!(q.starts_with("tenant=a&hub.mode=subscribe"), "{q}");
    assert!(q.contains("hub.verify_token=wrong+token%26x%3D1"), "{q}");
}
