use std::time::Duration;

use scifer_meta_sim::AppSecret;
use scifer_meta_sim::webhooks::{RetryPolicy, SendMode, WebhookSender, whatsapp};

use crate::helpers::{Receiver, Reply, SECRET, dead_url, hmac_sha256_header};

fn delivery() -> scifer_meta_sim::webhooks::Delivery {
    let biz = whatsapp::Business::new("1", "2", "15550001111");
    biz.inbound(
        &whatsapp::Contact::new("491701234567", "Jürgen"),
        whatsapp::Message::text("491701234567", "Grüß Gott"),
    )
    .into_delivery()
}

fn ms(v: &[u64]) -> RetryPolicy {
    RetryPolicy::fixed(v.iter().map(|&m| Duration::from_millis(m)).collect())
}

#[tokio::test]
async fn retries_until_200_with_the_same_bytes() {
    let rx = Receiver::start(vec![Reply::status(503), Reply::status(503)], 1 << 20).await;
    let s = WebhookSender::new(AppSecret::new(SECRET)).unwrap();
    let report = s
        .deliver_with_retry(&rx.url, &delivery(), &SendMode::Valid, &ms(&[0, 30, 60, 120]))
        .await;
    assert!(report.delivered());
    assert_eq!(report.statuses(), vec![Some(503), Some(503), Some(200)]);
    assert_eq!(
        report.attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // Attempt 3 waited for the second delay (30 ms) after attempt 2.
    assert!(report.attempts[2].started_after >= Duration::from_millis(30));
    assert!(report.attempts[2].started_after >= report.attempts[1].started_after);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.body == reqs[0].body));
    for r in &reqs {
        assert_eq!(
            r.header("x-hub-signature-256"),
            Some(hmac_sha256_header(SECRET, &r.body).as_str())
        );
    }
}

#[tokio::test]
async fn gives_up_when_the_schedule_runs_out() {
    let rx = Receiver::start(vec![Reply::status(500); 10], 1 << 20).await;
    let s = WebhookSender::new(AppSecret::new(SECRET)).unwrap();
    let report = s
        .deliver_with_retry(&rx.url, &delivery(), &SendMode::Valid, &ms(&[1, 1]))
        .await;
    assert!(!report.delivered());
    assert_eq!(report.statuses(), vec![Some(500), Some(500), Some(500)]);
    assert_eq!(rx.requests().len(), 3);

    // A 2xx other than 200 is not what Meta wants either.
    let rx = Receiver::start(vec![Reply::status(204)], 1 << 20).await;
    let report = s
        .deliver_with_retry(&rx.url, &delivery(), &SendMode::Valid, &ms(&[1]))
        .await;
    assert_eq!(report.statuses(), vec![Some(204), Some(200)]);
}

#[tokio::test]
async fn connection_errors_and_timeouts_are_retried() {
    let s = WebhookSender::with_timeout(AppSecret::new(SECRET), Duration::from_millis(200)).unwrap();
    let url = dead_url().await;
    let report = s
        .deliver_with_retry(&url, &delivery(), &SendMode::Valid, &ms(&[1, 1]))
        .await;
    assert_eq!(report.statuses(), vec![None, None, None]);
    assert!(report.attempts.iter().all(|a| a.result.is_err()));

    // First answer is slower than the timeout: counted as a failure, then retried.
    let slow = Reply {
        status: 200,
        delay: Duration::from_secs(2),
    };
    let rx = Receiver::start(vec![slow], 1 << 20).await;
    let report = s
        .deliver_with_retry(&rx.url, &delivery(), &SendMode::Valid, &ms(&[1]))
        .await;
    assert_eq!(report.statuses(), vec![None, Some(200)]);
    assert!(report.delivered());
}

#[tokio::test]
async fn give_up_after_caps_the_schedule() {
    let rx = Receiver::start(vec![Reply::status(500); 10], 1 << 20).await;
    let s = WebhookSender::new(AppSecret::new(SECRET)).unwrap();
    let policy = RetryPolicy {
        delays: vec![Duration::from_millis(1), Duration::from_secs(3600)],
        give_up_after: Duration::from_secs(1),
    };
    let report = s
        .deliver_with_retry(&rx.url, &delivery(), &SendMode::Valid, &policy)
        .await;
    // The hour-long second delay would pass the 1 s cap, so it stops after two attempts.
    assert_eq!(report.attempts.len(), 2);
}
