//! Configuration, readiness and fail-fast checks.

use scifer_plumbing::CancellationToken;
use scifer_test_support::{NatsServer, free_port, unique_prefix, wait_until};
use webhook_ingest::{Application, Config, StartupError};

use crate::helpers::{APP_SECRET, Settings, VERIFY_TOKEN, WAIT, config, env, messenger_message, sign};

fn without(vars: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    vars.into_iter().filter(|(k, _)| k != name).collect()
}

#[test]
fn secrets_are_required_and_named_when_missing() {
    let vars = env("nats://127.0.0.1:1", "t", &Settings::default());
    for name in ["META_APP_SECRET", "META_VERIFY_TOKEN"] {
        let err = scifer_plumbing::config::load_from::<Config>(None, without(vars.clone(), name))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&name.to_ascii_lowercase()), "{name}: {err}");
    }
}

#[test]
fn defaults_apply_and_secrets_never_print() {
    let vars = vec![
        ("META_APP_SECRET".to_string(), APP_SECRET.to_string()),
        ("META_VERIFY_TOKEN".to_string(), VERIFY_TOKEN.to_string()),
    ];
    let config = config(vars);
    assert_eq!(config.listen_addr, "127.0.0.1:8081");
    assert_eq!(config.admin_addr, "127.0.0.1:9081");
    assert_eq!(config.max_body_bytes, 3 * 1024 * 1024);
    assert_eq!(config.ingest_retention_days, 30);
    assert!(config.splitter_enabled);
    let printed = format!("{config:?}");
    assert!(
        !printed.contains(APP_SECRET) && !printed.contains(VERIFY_TOKEN),
        "{printed}"
    );
}

#[tokio::test]
async fn an_empty_app_secret_is_refused() {
    let mut vars = env("nats://127.0.0.1:1", "t", &Settings::default());
    vars.push(("META_APP_SECRET".into(), String::new()));
    let err = Application::build(config(vars)).await.err().unwrap();
    assert!(err.to_string().contains("META_APP_SECRET"), "{err}");
}

#[tokio::test]
async fn a_nats_max_payload_below_the_body_limit_fails_fast() {
    let nats = NatsServer::start().await;
    let settings = Settings {
        // The test server allows 8 MB; bodies of 8 MiB plus headers do not fit.
        env: vec![("MAX_BODY_BYTES".into(), (8 * 1024 * 1024).to_string())],
        ..Settings::default()
    };
    let app = Application::build(config(env(&nats.url(), &unique_prefix(), &settings)))
        .await
        .unwrap();
    let run = app.run_until_stopped(CancellationToken::new());
    let result = tokio::time::timeout(WAIT, run).await.unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, StartupError::MaxPayloadTooSmall { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("max_payload") && text.contains("MAX_BODY_BYTES"),
        "{text}"
    );
}

#[tokio::test]
async fn without_nats_it_is_alive_but_not_ready_and_refuses_deliveries_with_503() {
    crate::helpers::init();
    // Nothing listens there.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let app = Application::build(config(env(&url, &unique_prefix(), &Settings::default())))
        .await
        .unwrap();
    let base = format!("http://{}", app.http_addr().unwrap());
    let admin = format!("http://{}", app.admin_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let healthz = format!("{base}/healthz");
    wait_until(WAIT, || {
        let healthz = healthz.clone();
        async move { reqwest::get(&healthz).await.is_ok_and(|r| r.status() == 200) }
    })
    .await
    .unwrap();
    assert_eq!(
        reqwest::get(format!("{base}/readyz")).await.unwrap().status(),
        503
    );
    assert_eq!(
        reqwest::get(format!("{admin}/readyz")).await.unwrap().status(),
        503
    );
    let body = messenger_message("m_early");
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/meta"))
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);

    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "did not stop cleanly: {stopped:?}"
    );
}
