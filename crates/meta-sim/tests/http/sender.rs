use scifer_meta_sim::AppSecret;
use scifer_meta_sim::webhooks::whatsapp::{Business, status_lifecycle};
use scifer_meta_sim::webhooks::{Delivery, Encoding, SendError, SendMode, WebhookSender, messenger};

use crate::helpers::{Receiver, SECRET, hmac_sha1_header, hmac_sha256_header};

fn sender() -> WebhookSender {
    WebhookSender::new(AppSecret::new(SECRET)).unwrap()
}

fn delivery() -> Delivery {
    messenger::text(
        "104857600000001",
        "6120000000000001",
        "Élodie dit: c'est prêt ? 🥐 https://x.y/z",
    )
    .mid("m_pinned")
    .timestamp_ms(1_767_225_600_000)
    .into_delivery()
}

#[tokio::test]
async fn valid_delivery_arrives_byte_exact_and_signed() {
    let rx = Receiver::ok().await;
    let s = sender();
    let expected = s.prepare(&delivery(), &SendMode::Valid);
    let out = s.send(&rx.url, &delivery(), &SendMode::Valid).await.unwrap();
    assert_eq!(out.status.as_u16(), 200);
    assert_eq!(out.body, "EVENT_RECEIVED");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some("facebookexternalua"));
    assert_eq!(&r.body[..], &expected.body[..]);
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(r.body.is_ascii());
    assert!(text.contains(r"\u00c9lodie"), "{text}");
    assert!(text.contains(r"\ud83e\udd50"), "{text}"); // 🥐 U+1F950
    assert!(text.contains(r"https:\/\/x.y\/z"), "{text}");
    assert_eq!(
        r.header("x-hub-signature-256"),
        Some(hmac_sha256_header(SECRET, &r.body).as_str())
    );
    assert_eq!(
        r.header("x-hub-signature"),
        Some(hmac_sha1_header(SECRET, &r.body).as_str())
    );
    assert_eq!(r.json()["entry"][0]["messaging"][0]["message"]["mid"], "m_pinned");
}

#[tokio::test]
async fn broken_signature_modes() {
    let rx = Receiver::ok().await;
    let s = sender();
    let d = delivery();
    for mode in [
        SendMode::TamperedSignature,
        SendMode::TamperedBody,
        SendMode::WrongSecret,
    ] {
        s.send(&rx.url, &d, &mode).await.unwrap();
    }
    s.send(&rx.url, &d, &SendMode::MissingSignature).await.unwrap();
    s.send(&rx.url, &d, &SendMode::Sha1Only).await.unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 5);

    for r in &reqs[..3] {
        let sig = r.header("x-hub-signature-256").expect("sha256 header present");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_ne!(
            sig,
            hmac_sha256_header(SECRET, &r.body),
            "signature must not verify"
        );
    }
    // Tampered signature and wrong secret keep the real body; tampered body changes it.
    let valid_body = s.prepare(&d, &SendMode::Valid).body;
    assert_eq!(&reqs[0].body[..], &valid_body[..]);
    assert_ne!(&reqs[1].body[..], &valid_body[..]);
    assert_eq!(
        reqs[1].header("x-hub-signature-256"),
        Some(hmac_sha256_header(SECRET, &valid_body).as_str())
    );
    assert_eq!(&reqs[2].body[..], &valid_body[..]);

    assert!(reqs[3].header("x-hub-signature-256").is_none());
    assert!(reqs[3].header("x-hub-signature").is_none());

    assert!(reqs[4].header("x-hub-signature-256").is_none());
    assert_eq!(
        reqs[4].header("x-hub-signature"),
        Some(hmac_sha1_header(SECRET, &reqs[4].body).as_str())
    );
}

#[tokio::test]
async fn reserialized_body_differs_from_the_signed_bytes() {
    let rx = Receiver::ok().await;
    let s = sender();
    let d = delivery();
    s.send(&rx.url, &d, &SendMode::Reserialized(Encoding::RAW_UTF8))
        .await
        .unwrap();
    let r = &rx.requests()[0];
    // Same JSON value, raw UTF-8 on the wire ...
    assert!(!r.body.is_ascii());
    assert!(std::str::from_utf8(&r.body).unwrap().contains("Élodie"));
    assert_eq!(r.json(), d.to_value());
    // ... but signed over the escaped form, so verifying the received bytes fails.
    let sig = r.header("x-hub-signature-256").unwrap();
    assert_ne!(sig, hmac_sha256_header(SECRET, &r.body));
    assert_eq!(sig, hmac_sha256_header(SECRET, &d.encode(Encoding::META)));
}

#[tokio::test]
async fn oversized_body_hits_the_receivers_limit() {
    let rx = Receiver::start(Vec::new(), 64 * 1024).await;
    let s = sender();
    let out = s
        .send(
            &rx.url,
            &delivery(),
            &SendMode::Oversized {
                total_bytes: 128 * 1024,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.status.as_u16(), 413);
    assert!(rx.requests().is_empty());

    let out = s
        .send(
            &rx.url,
            &delivery(),
            &SendMode::Oversized {
                total_bytes: 32 * 1024,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.status.as_u16(), 200);
    let r = &rx.requests()[0];
    assert_eq!(r.body.len(), 32 * 1024);
    assert_eq!(
        r.header("x-hub-signature-256"),
        Some(hmac_sha256_header(SECRET, &r.body).as_str())
    );
}

#[tokio::test]
async fn duplicates_are_byte_identical() {
    let rx = Receiver::ok().await;
    let [a, b] = sender().send_duplicate(&rx.url, &delivery()).await.unwrap();
    assert!(a.accepted() && b.accepted());
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        reqs[0].header("x-hub-signature-256"),
        reqs[1].header("x-hub-signature-256")
    );
}

#[tokio::test]
async fn whatsapp_read_can_arrive_before_delivered() {
    let rx = Receiver::ok().await;
    let biz = Business::new("102290129340398", "106540352242922", "15550001111");
    let lifecycle = status_lifecycle(&biz, "wamid.HBgMNDkxNzAxMjM0NTY3", "491701234567", 1_767_225_600);
    let outs = sender()
        .send_in_order(&rx.url, &lifecycle, &[0, 2, 1])
        .await
        .unwrap();
    assert_eq!(outs.len(), 3);
    let seen: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| {
            r.json()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(seen, ["sent", "read", "delivered"]);

    let rx2 = Receiver::ok().await;
    sender().send_reversed(&rx2.url, &lifecycle).await.unwrap();
    assert_eq!(
        rx2.requests()[0].json()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"],
        "read"
    );

    let bad = sender().send_in_order(&rx.url, &lifecycle, &[0, 0, 1]).await;
    assert!(matches!(bad, Err(SendError::BadOrder { .. })));
    assert_eq!(rx.requests().len(), 3, "nothing sent for a bad order");
}

#[tokio::test]
async fn connection_refused_is_an_error_not_a_status() {
    let url = crate::helpers::dead_url().await;
    let r = sender().send(&url, &delivery(), &SendMode::Valid).await;
    assert!(matches!(r, Err(SendError::Request(_))));
    assert!(matches!(
        sender().send("not a url", &delivery(), &SendMode::Valid).await,
        Err(SendError::InvalidUrl { .. })
    ));
}
