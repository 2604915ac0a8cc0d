use std::time::Duration;

use scifer_meta_sim::AppSecret;
use scifer_meta_sim::app;
use scifer_meta_sim::cli::{Command, SendArgs, VerifyArgs};
use scifer_meta_sim::demo::{self, DEMO_PAGE_ID, DemoConfig, PokeKind};
use scifer_meta_sim::webhooks::SendMode;

use crate::helpers::{Receiver, SECRET, VERIFY_TOKEN, hmac_sha256_header};

#[tokio::test]
async fn demo_plays_signed_traffic_on_all_channels() {
    let rx = Receiver::ok().await;
    let mut config = DemoConfig::new(rx.url.clone(), AppSecret::new(SECRET));
    config.interval = Duration::ZERO;
    config.count = Some(14);
    let summary = demo::run_demo(config, std::future::pending()).await.unwrap();
    assert_eq!(summary.deliveries, 14);
    assert_eq!(summary.accepted, 14);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 14);
    let mut objects = std::collections::BTreeSet::new();
    for r in &reqs {
        assert!(r.body.is_ascii());
        assert_eq!(
            r.header("x-hub-signature-256"),
            Some(hmac_sha256_header(SECRET, &r.body).as_str())
        );
        objects.insert(r.json()["object"].as_str().unwrap().to_owned());
    }
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert_eq!(reqs[0].json()["entry"][0]["id"], DEMO_PAGE_ID);
}

#[tokio::test]
async fn demo_stops_on_shutdown() {
    let rx = Receiver::ok().await;
    let mut config = DemoConfig::new(rx.url.clone(), AppSecret::new(SECRET));
    config.interval = Duration::from_millis(5);
    let shutdown = async { rx.wait_for(3).await };
    let summary = tokio::time::timeout(Duration::from_secs(10), demo::run_demo(config, shutdown))
        .await
        .expect("demo stopped")
        .unwrap();
    assert!(summary.deliveries >= 2, "{summary:?}");
}

#[tokio::test]
async fn app_send_and_verify_commands() {
    let rx = Receiver::ok().await;
    let send = Command::Send(SendArgs {
        webhook_url: rx.url.clone(),
        app_secret: AppSecret::new(SECRET),
        kind: PokeKind::WhatsappText,
        text: "oi 👋".into(),
        customer: 0,
        mode: SendMode::Valid,
        retry: false,
    });
    assert!(app::run(send, std::future::pending()).await.unwrap());
    let v = rx.requests()[0].json();
    assert_eq!(v["object"], "whatsapp_business_account");
    assert_eq!(
        v["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"],
        "oi 👋"
    );

    let verify = |token: &str| {
        Command::Verify(VerifyArgs {
            webhook_url: rx.url.clone(),
            verify_token: token.into(),
            challenge: None,
        })
    };
    assert!(
        app::run(verify(VERIFY_TOKEN), std::future::pending())
            .await
            .unwrap()
    );
    assert!(!app::run(verify("nope"), std::future::pending()).await.unwrap());
}
