//! The demo-world Graph simulator on a real port with a webhook receiver as its target, for
//! the messaging tests (`graph_send.rs`, `graph_inbox.rs`).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use ring::hmac;
use serde_json::{Value, json};

use scifer_meta_sim::AppSecret;
use scifer_meta_sim::demo::{DEMO_PAGE_ID, DEMO_USER_ID};
use scifer_meta_sim::graph::{GraphSim, GraphSimConfig, UnknownRecipients, WebhookTiming};
use scifer_meta_sim::webhooks::RetryPolicy;
use scifer_meta_sim::webhooks::sign::{SIGNATURE_256_HEADER, sha256_header_value};

use crate::helpers::Receiver;

/// Numeric, as Meta's are: echoes carry it as a number.
pub const APP_ID: &str = "1234567890";
pub const APP_SECRET: &str = "graph-send-secret";
pub const V: &str = "v25.0";

pub const PAGE_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "instagram_basic",
    "instagram_manage_messages",
];

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `(code, error_subcode)` of an error envelope.
    pub fn error(&self) -> (u64, Option<u64>) {
        let e = &self.json()["error"];
        assert!(e.is_object(), "not an error: {}", self.body);
        (e["code"].as_u64().unwrap(), e["error_subcode"].as_u64())
    }
}

pub struct SimApp {
    pub sim: GraphSim,
    pub base: String,
    pub http: reqwest::Client,
    pub page_token: String,
    pub wa_token: String,
    pub receiver: Receiver,
}

fn proof(token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes());
    hex::encode(hmac::sign(&key, token.as_bytes()).as_ref())
}

/// Short delays keep the suite fast; the order is what matters.
pub fn fast_timing() -> WebhookTiming {
    WebhookTiming {
        first: Duration::from_millis(5),
        between: Duration::from_millis(5),
        retry: RetryPolicy::none(),
    }
}

impl SimApp {
    /// The demo world, strict about recipients who never wrote (as Meta), webhooks to a
    /// receiver, a Page token of the demo Page and the demo WABA's token.
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = GraphSim::with_demo_world(GraphSimConfig::new(APP_ID, AppSecret::new(APP_SECRET)));
        sim.set_unknown_recipients(UnknownRecipients::Reject);
        sim.set_webhook_timing(fast_timing());
        let receiver = Receiver::ok().await;
        sim.set_webhook_target(receiver.url.clone(), AppSecret::new(APP_SECRET))
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = sim.clone();
        tokio::spawn(async move { server.serve(listener, std::future::pending()).await.unwrap() });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let wa_token = sim.demo_system_user_token().unwrap();
        let mut app = Self {
            sim,
            base,
            http,
            page_token: String::new(),
            wa_token,
            receiver,
        };
        let user = app.sim.issue_user_token(DEMO_USER_ID, PAGE_SCOPES, true);
        let r = app
            .get("/me/accounts", &user, &[("fields", "id,access_token")])
            .await;
        let tokens: HashMap<String, String> = r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["access_token"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        app.page_token = tokens[DEMO_PAGE_ID].clone();
        app
    }

    /// A Graph call under `/{V}`; with a token it carries `Authorization: Bearer` and the
    /// appsecret_proof.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{V}{path}", self.base)
        };
        let mut req = self.http.request(method, url).query(query);
        if let Some(t) = token {
            req = req.bearer_auth(t).query(&[("appsecret_proof", proof(t))]);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str, token: &str, query: &[(&str, &str)]) -> Resp {
        self.call(Method::GET, path, Some(token), query, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), &[], Some(body)).await
    }

    /// `POST /me/messages` with the Page token.
    pub async fn send_messenger(&self, body: Value) -> Resp {
        let token = self.page_token.clone();
        self.post("/me/messages", &token, body).await
    }

    /// A text `RESPONSE` to `recipient`.
    pub async fn reply(&self, recipient: &str, text: &str) -> Resp {
        self.send_messenger(
            json!({"recipient": {"id": recipient}, "messaging_type": "RESPONSE",
                                   "message": {"text": text}}),
        )
        .await
    }

    /// `POST /{phone}/messages` with the WABA token.
    pub async fn send_whatsapp(&self, phone: &str, body: Value) -> Resp {
        let token = self.wa_token.clone();
        self.post(&format!("/{phone}/messages"), &token, body).await
    }

    /// Wait until the simulator has sent every queued webhook, then return what the receiver
    /// got, each body's `X-Hub-Signature-256` checked with the crate's signing code.
    pub async fn settled_webhooks(&self) -> Vec<Value> {
        tokio::time::timeout(Duration::from_secs(10), self.sim.webhooks_settled())
            .await
            .expect("webhooks settle in time");
        let secret = AppSecret::new(APP_SECRET);
        self.receiver
            .requests()
            .into_iter()
            .map(|r| {
                assert_eq!(
                    r.header(SIGNATURE_256_HEADER),
                    Some(sha256_header_value(&secret, &r.body).as_str()),
                    "signed like Meta"
                );
                r.json()
            })
            .collect()
    }
}

/// The `messaging[]` (or `standby[]`) events of Messenger/Instagram webhooks for `customer`.
pub fn events_for(webhooks: &[Value], customer: &str) -> Vec<Value> {
    webhooks
        .iter()
        .flat_map(|w| w["entry"].as_array().cloned().unwrap_or_default())
        .flat_map(|e| {
            let mut v = e["messaging"].as_array().cloned().unwrap_or_default();
            v.extend(e["standby"].as_array().cloned().unwrap_or_default());
            v
        })
        .filter(|ev| ev["sender"]["id"] == customer || ev["recipient"]["id"] == customer)
        .collect()
}

/// The WhatsApp `statuses[]` of message `wamid`, in arrival order.
pub fn statuses_of(webhooks: &[Value], wamid: &str) -> Vec<Value> {
    webhooks
        .iter()
        .flat_map(|w| w["entry"].as_array().cloned().unwrap_or_default())
        .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
        .flat_map(|c| c["value"]["statuses"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["id"] == wamid)
        .collect()
}
