//! A tiny receiver on 127.0.0.1:0 that records every request exactly as it arrived and answers
//! from a script, so tests can assert on bytes and headers without sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::get;
use ring::hmac;
use tokio::sync::watch;

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone)]
struct AppState {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    count: Arc<watch::Sender<usize>>,
}

pub struct Receiver {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Receiver<usize>,
}

impl Receiver {
    /// Answers the scripted replies in order, then 200 forever; bodies above `body_limit`
    /// get axum's 413.
    pub async fn start(script: Vec<Reply>, body_limit: usize) -> Self {
        let (tx, rx) = watch::channel(0);
        let state = AppState {
            recorded: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            count: Arc::new(tx),
        };
        let recorded = state.recorded.clone();
        let app = Router::new()
            .route("/webhook", get(handshake).post(record))
            .layer(DefaultBodyLimit::max(body_limit))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/webhook"),
            recorded,
            count: rx,
        }
    }

    pub async fn ok() -> Self {
        Self::start(Vec::new(), 2 * 1024 * 1024).await
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// Wait (with a deadline, never a fixed sleep) until `n` POSTs were recorded.
    pub async fn wait_for(&self, n: usize) {
        let mut rx = self.count.clone();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|c| *c >= n))
            .await
            .expect("receiver got the requests in time")
            .expect("receiver alive");
    }
}

async fn record(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let reply = s.script.lock().unwrap().pop_front().unwrap_or(Reply::status(200));
    {
        let mut rec = s.recorded.lock().unwrap();
        rec.push(Recorded {
            method,
            uri,
            headers,
            body,
        });
        s.count.send_replace(rec.len());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        "EVENT_RECEIVED".to_owned(),
    )
}

/// Behaves like a correct receiver's GET handler, and records the query it saw.
async fn handshake(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    s.recorded.lock().unwrap().push(Recorded {
        method: Method::GET,
        uri,
        headers,
        body: Bytes::new(),
    });
    let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
        && q.get("hub.verify_token").map(String::as_str) == Some(VERIFY_TOKEN);
    match (ok, q.get("hub.challenge")) {
        (true, Some(c)) => (StatusCode::OK, [("content-type", "text/plain")], c.clone()),
        _ => (
            StatusCode::FORBIDDEN,
            [("content-type", "text/plain")],
            String::new(),
        ),
    }
}

/// An independent HMAC, not the crate's code.
pub fn hmac_sha256_header(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

pub fn hmac_sha1_header(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    format!("sha1={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// A URL on which nothing listens: bind a port, then free it.
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/webhook")
}
