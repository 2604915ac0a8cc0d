//! GraphClient against a scripted Graph stand-in: the server records every request and answers
//! with Meta-shaped bodies and headers chosen by each test.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use scifer_graph::{
    AppSecret, ErrorKind, GraphClient, GraphConfig, GraphError, GraphRequest, ManualClock, ThrottleScope,
    Token, TokenType, UsagePolicy, UsageTracker,
};
use serde_json::{Value, json};
use url::Url;

const APP_ID: &str = "123456";
const APP_SECRET: &str = "test-app-secret-0123";
const USER_TOKEN: &str = "EAAGuserTOKENabcdef0123456789";
const PAGE_TOKEN: &str = "EAAGpageTOKENabcdef0123456789";

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn param(&self, key: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    fn authorization(&self) -> Option<&str> {
        self.headers.get("authorization").and_then(|v| v.to_str().ok())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/html".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

type Responder = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

struct Mock {
    responder: Box<Responder>,
    requests: Mutex<Vec<Recorded>>,
}

struct MockGraph {
    addr: SocketAddr,
    mock: Arc<Mock>,
}

impl MockGraph {
    /// Start a server answering request number `n` (0-based) with `responder(request, n)`.
    async fn start(responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let mock = Arc::new(Mock {
            responder: Box::new(responder),
            requests: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new().fallback(handle).with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, mock }
    }

    fn url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).unwrap()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.mock.requests.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.mock.requests.lock().unwrap().len()
    }
}

async fn handle(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    };
    let n = {
        let mut requests = mock.requests.lock().unwrap();
        requests.push(recorded.clone());
        requests.len() - 1
    };
    let reply = (mock.responder)(&recorded, n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

fn config(graph_url: Url) -> GraphConfig {
    GraphConfig {
        graph_url,
        dialog_url: Url::parse("https://www.facebook.com").unwrap(),
        version: "v25.0".into(),
        app_id: APP_ID.into(),
        app_secret: AppSecret::new(APP_SECRET.into()),
        timeout: Duration::from_secs(5),
        throttle_threshold_pct: 80,
    }
}

fn client(graph_url: Url) -> GraphClient {
    GraphClient::new(config(graph_url)).unwrap()
}

/// A client whose usage tracker runs on a manual clock.
fn client_with_clock(graph_url: Url) -> (GraphClient, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let tracker = UsageTracker::with_clock(UsagePolicy::new(80), clock.clone());
    let client = GraphClient::with_usage_tracker(config(graph_url), Arc::new(tracker)).unwrap();
    (client, clock)
}

/// Independent HMAC-SHA256 for expected proofs.
fn hmac_hex(key: &str, msg: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    hex::encode(ring::hmac::sign(&key, msg.as_bytes()).as_ref())
}

fn meta_error(e: GraphError) -> scifer_graph::MetaError {
    match e {
        GraphError::Meta(m) => m,
        other => panic!("expected a Meta error, got {other:?}"),
    }
}

fn throttle_body(code: i64) -> Value {
    json!({"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":code,"fbtrace_id":"Tthrottle"}})
}

fn send(object: &str) -> GraphRequest<'_> {
    GraphRequest::post(
        "me/messages",
        json!({"recipient":{"id":"PSID"},"messaging_type":"RESPONSE","message":{"text":"hi"}}),
    )
    .for_object(object)
}

fn ok_send() -> Reply {
    Reply::json(200, json!({"recipient_id":"PSID","message_id":"m_AbC123"}))
}

// --- auth and URLs -------------------------------------------------------------------------

#[tokio::test]
async fn call_sends_bearer_and_appsecret_proof_and_no_token_in_url() {
    let server = MockGraph::start(|_, _| ok_send()).await;
    // RFC 4231 test case 2 as (app secret, token): the proof is a published value.
    let mut cfg = config(server.url());
    cfg.app_secret = AppSecret::new("Jefe".into());
    let client = GraphClient::new(cfg).unwrap();
    let token = Token::new("what do ya want for nothing?".into());

    let response = client
        .call(send("PAGE1").query("notification_type", "REGULAR"), &token)
        .await
        .unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.body["message_id"], "m_AbC123");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/v25.0/me/messages");
    assert_eq!(r.authorization(), Some("Bearer what do ya want for nothing?"));
    assert_eq!(
        r.param("appsecret_proof").as_deref(),
        Some("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    assert_eq!(r.param("notification_type").as_deref(), Some("REGULAR"));
    assert_eq!(r.param("access_token"), None);
    assert!(!r.query.contains("want"), "token in query: {}", r.query);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(sent["recipient"]["id"], "PSID");
}

#[tokio::test]
async fn graph_url_path_prefix_is_kept_and_ids_are_single_segments() {
    let server = MockGraph::start(|_, _| ok_send()).await;
    let client = client(server.url().join("/graph").unwrap());
    client
        .call(
            GraphRequest::post("1234/messages", json!({})),
            &Token::new(PAGE_TOKEN.into()),
        )
        .await
        .unwrap();
    assert_eq!(server.requests()[0].path, "/graph/v25.0/1234/messages");

    // An id cannot smuggle extra path segments.
    let err = client
        .subscribe_app("1/../../evil", &[], &Token::new(PAGE_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Config(_)), "{err:?}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn call_refuses_credentials_in_the_query() {
    let server = MockGraph::start(|_, _| ok_send()).await;
    let client = client(server.url());
    let req = GraphRequest::get("me").query("access_token", USER_TOKEN);
    let err = client
        .call(req, &Token::new(USER_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Config(_)));
    assert!(!err.to_string().contains(USER_TOKEN));
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn dialog_url_has_all_oauth_parameters() {
    let client = client(Url::parse("https://graph.facebook.com").unwrap());
    let url = client.dialog_url(
        "https://app.example/callback?x=1",
        "st4te",
        &["pages_show_list", "pages_messaging"],
    );
    assert_eq!(url.origin().ascii_serialization(), "https://www.facebook.com");
    assert_eq!(url.path(), "/v25.0/dialog/oauth");
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let expect = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        q,
        vec![
            expect("client_id", APP_ID),
            expect("redirect_uri", "https://app.example/callback?x=1"),
            expect("state", "st4te"),
            expect("scope", "pages_show_list,pages_messaging"),
            expect("response_type", "code"),
        ]
    );
}

// --- OAuth and debug_token ---------------------------------------------------------------

#[tokio::test]
async fn exchange_code_with_and_without_redirect_uri() {
    let server = MockGraph::start(|_, n| {
        Reply::json(
            200,
            json!({"access_token": format!("EAAGissued{n}"), "token_type":"bearer","expires_in":5183944}),
        )
    })
    .await;
    let client = client(server.url());

    let issued = client
        .exchange_code("CODE-1", Some("https://app.example/cb"))
        .await
        .unwrap();
    assert_eq!(issued.token.expose(), "EAAGissued0");
    assert_eq!(issued.expires_in, Some(5183944));

    let embedded = client.exchange_code("CODE-2", None).await.unwrap();
    assert_eq!(embedded.token.expose(), "EAAGissued1");

    let requests = server.requests();
    let (with, without) = (&requests[0], &requests[1]);
    assert_eq!(with.method, Method::GET);
    assert_eq!(with.path, "/v25.0/oauth/access_token");
    assert_eq!(with.param("client_id").as_deref(), Some(APP_ID));
    assert_eq!(with.param("client_secret").as_deref(), Some(APP_SECRET));
    assert_eq!(with.param("code").as_deref(), Some("CODE-1"));
    assert_eq!(
        with.param("redirect_uri").as_deref(),
        Some("https://app.example/cb")
    );
    assert_eq!(with.authorization(), None);
    assert_eq!(without.param("code").as_deref(), Some("CODE-2"));
    assert_eq!(without.param("redirect_uri"), None);
}

#[tokio::test]
async fn exchange_long_lived_sends_fb_exchange_token() {
    let server = MockGraph::start(|_, _| {
        Reply::json(
            200,
            json!({"access_token":"EAAGlong","token_type":"bearer","expires_in":5183944}),
        )
    })
    .await;
    let client = client(server.url());
    let long = client
        .exchange_long_lived(&Token::new(USER_TOKEN.into()))
        .await
        .unwrap();
    assert_eq!(long.token.expose(), "EAAGlong");
    let r = &server.requests()[0];
    assert_eq!(r.param("grant_type").as_deref(), Some("fb_exchange_token"));
    assert_eq!(r.param("fb_exchange_token").as_deref(), Some(USER_TOKEN));
    assert_eq!(r.param("client_secret").as_deref(), Some(APP_SECRET));
}

/// The exact body of reference/meta-platform.md §6.2.
const DEBUG_TOKEN_VALID: &str = r#"{"data":{"app_id":"123","type":"PAGE","application":"My CRM","profile_id":"PAGE_ID",
    "is_valid":true,"issued_at":1767225600,"expires_at":0,"data_access_expires_at":1775001600,
    "scopes":["pages_messaging","pages_manage_metadata"],
    "granular_scopes":[{"scope":"pages_messaging","target_ids":["PAGE_ID"]}],
    "user_id":"10215"}}"#;

#[tokio::test]
async fn debug_token_sends_input_in_query_and_app_token_as_bearer() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: DEBUG_TOKEN_VALID.as_bytes().to_vec(),
            delay: Duration::ZERO,
        },
        _ => Reply::json(
            200,
            json!({"data":{"app_id":"123","type":"USER","is_valid":false,"expires_at":1767225600,"scopes":[],
                "error":{"code":190,"message":"Error validating access token: Session has expired","subcode":463},"user_id":"10215"}}),
        ),
    })
    .await;
    let client = client(server.url());

    let info = client.debug_token(&Token::new(PAGE_TOKEN.into())).await.unwrap();
    assert!(info.is_valid);
    assert_eq!(info.token_type, TokenType::Page);
    assert_eq!(info.app_id, "123");
    assert_eq!(info.profile_id.as_deref(), Some("PAGE_ID"));
    assert_eq!(info.user_id.as_deref(), Some("10215"));
    assert_eq!(info.scopes, vec!["pages_messaging", "pages_manage_metadata"]);
    assert_eq!(info.granular_scopes.len(), 1);
    assert_eq!(info.granular_scopes[0].target_ids, vec!["PAGE_ID"]);
    assert_eq!(info.expires_at, None, "expires_at 0 means never");
    assert_eq!(info.data_access_expires_at, Some(1775001600));
    assert_eq!(info.error, None);

    let invalid = client.debug_token(&Token::new(USER_TOKEN.into())).await.unwrap();
    assert!(!invalid.is_valid);
    assert_eq!(invalid.token_type, TokenType::User);
    assert_eq!(invalid.expires_at, Some(1767225600));
    assert_eq!(invalid.error, Some((190, Some(463))));

    let r = &server.requests()[0];
    assert_eq!(r.path, "/v25.0/debug_token");
    let app_token = format!("{APP_ID}|{APP_SECRET}");
    assert_eq!(r.authorization(), Some(format!("Bearer {app_token}").as_str()));
    assert_eq!(r.param("input_token").as_deref(), Some(PAGE_TOKEN));
    assert_eq!(r.param("access_token"), None);
    assert_eq!(r.param("appsecret_proof"), Some(hmac_hex(APP_SECRET, &app_token)));
    assert!(!r.query.contains(APP_SECRET), "app secret in query");
}

// --- errors --------------------------------------------------------------------------------

#[tokio::test]
async fn meta_error_envelope_is_decoded() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::json(
            400,
            json!({"error":{"message":"(#100) Param recipient[id] must be a valid ID string","type":"OAuthException",
                "code":100,"error_subcode":2018001,"is_transient":false,"fbtrace_id":"A6LJylpZRKw2xKLFsAP-cJh"}}),
        ),
        1 => Reply::json(500, json!({"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":2,"is_transient":true}}))
            .header("x-fb-trace-id", "HdrTrace1"),
        _ => Reply::json(
            200,
            json!({"error":{"message":"Error validating access token: The session has been invalidated because the user changed their password.",
                "type":"OAuthException","code":190,"error_subcode":460,"fbtrace_id":"AbC123"}}),
        ),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let e = meta_error(client.call(send("PAGE1"), &token).await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!((e.code, e.subcode), (100, Some(2018001)));
    assert_eq!(e.http_status, 400);
    assert!(!e.is_transient);
    assert_eq!(e.error_type.as_deref(), Some("OAuthException"));
    assert_eq!(e.fbtrace_id.as_deref(), Some("A6LJylpZRKw2xKLFsAP-cJh"));
    assert_eq!(e.message, "(#100) Param recipient[id] must be a valid ID string");

    let e = meta_error(client.call(send("PAGE1"), &token).await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.is_transient);
    assert_eq!(e.http_status, 500);
    assert_eq!(
        e.fbtrace_id.as_deref(),
        Some("HdrTrace1"),
        "falls back to the header"
    );

    // An error object inside a 200 is still an error.
    let e = meta_error(client.call(send("PAGE1"), &token).await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::TokenInvalid);
    assert_eq!((e.code, e.subcode, e.http_status), (190, Some(460), 200));
}

#[tokio::test]
async fn error_messages_echoing_secrets_are_redacted() {
    let server = MockGraph::start(|r, _| {
        let echoed = r
            .authorization()
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_owned();
        Reply::json(
            400,
            json!({"error":{"message":format!("Malformed access token {echoed}"),"type":"OAuthException","code":190}}),
        )
    })
    .await;
    let client = client(server.url());
    let err = client
        .call(send("PAGE1"), &Token::new(PAGE_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(PAGE_TOKEN), "{err}");
    assert!(!format!("{err:?}").contains(PAGE_TOKEN));
    assert_eq!(meta_error(err).message, "Malformed access token ***");
}

#[tokio::test]
async fn non_json_error_bodies_map_by_status() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::raw(502, "<html>Bad Gateway</html>"),
        1 => Reply::raw(404, "<html>Not Found</html>"),
        _ => Reply::raw(200, "<html>hello</html>"),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let e = client.call(send("P"), &token).await.unwrap_err();
    assert!(matches!(e, GraphError::Transport(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Transient);

    let e = client.call(send("P"), &token).await.unwrap_err();
    assert!(matches!(e, GraphError::Decode(_)), "{e:?}");

    let e = client.call(send("P"), &token).await.unwrap_err();
    assert!(matches!(e, GraphError::Decode(_)), "{e:?}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = MockGraph::start(|_, _| {
        let big = format!("{{\"data\":\"{}\"}}", "x".repeat(scifer_graph::MAX_BODY_BYTES));
        Reply::raw(200, &big)
    })
    .await;
    let client = client(server.url());
    let err = client
        .call(GraphRequest::get("me"), &Token::new(USER_TOKEN.into()))
        .await
        .unwrap_err();
    match err {
        GraphError::Decode(msg) => assert!(msg.contains("exceeds"), "{msg}"),
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = MockGraph::start(|_, _| ok_send()).await;
    let target = elsewhere.url().join("/steal").unwrap().to_string();
    let server = MockGraph::start(move |_, _| Reply::raw(302, "").header("location", target.clone())).await;
    let client = client(server.url());
    let err = client
        .call(GraphRequest::get("me"), &Token::new(USER_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Decode(_)), "{err:?}");
    assert_eq!(elsewhere.count(), 0);
}

/// A port nothing listens on.
async fn closed_port_url() -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{addr}")).unwrap()
}

fn assert_no_secrets(err: &GraphError, secrets: &[&str]) {
    let display = err.to_string();
    let debug = format!("{err:?}");
    for secret in secrets {
        assert!(!display.contains(secret), "{secret} in Display: {display}");
        assert!(!debug.contains(secret), "{secret} in Debug: {debug}");
    }
}

#[tokio::test]
async fn transport_errors_do_not_leak_tokens_or_secrets() {
    let client = client(closed_port_url().await);
    let input = Token::new(PAGE_TOKEN.into());
    let err = client.debug_token(&input).await.unwrap_err();
    assert!(matches!(err, GraphError::Transport(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Transient);
    let app_token = format!("{APP_ID}|{APP_SECRET}");
    let proof = hmac_hex(APP_SECRET, &app_token);
    assert_no_secrets(
        &err,
        &[PAGE_TOKEN, APP_SECRET, &proof, "input_token", "debug_token"],
    );

    let err = client
        .exchange_code("SECRET-OAUTH-CODE", Some("https://app.example/cb"))
        .await
        .unwrap_err();
    assert_no_secrets(&err, &[APP_SECRET, "SECRET-OAUTH-CODE"]);

    let err = client
        .exchange_long_lived(&Token::new(USER_TOKEN.into()))
        .await
        .unwrap_err();
    assert_no_secrets(&err, &[APP_SECRET, USER_TOKEN]);
}

#[tokio::test]
async fn timeouts_do_not_leak_tokens() {
    let server = MockGraph::start(|_, _| {
        let mut r = ok_send();
        r.delay = Duration::from_secs(3);
        r
    })
    .await;
    let mut cfg = config(server.url());
    cfg.timeout = Duration::from_millis(200);
    let client = GraphClient::new(cfg).unwrap();
    let err = client
        .debug_token(&Token::new(PAGE_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Transport(_)), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_no_secrets(&err, &[PAGE_TOKEN, APP_SECRET]);
}

// --- usage and throttling ------------------------------------------------------------------

#[tokio::test]
async fn usage_headers_are_recorded_from_success_and_error_responses() {
    let server = MockGraph::start(|_, n| match n {
        0 => ok_send()
            .header("x-app-usage", r#"{"call_count":28,"total_time":25,"total_cputime":25}"#)
            .header(
                "x-business-use-case-usage",
                r#"{"PAGE1":[{"type":"pages","call_count":85,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":0}]}"#,
            ),
        _ => Reply::json(400, json!({"error":{"message":"bad","code":100}}))
            .header("x-app-usage", r#"{"call_count":41,"total_time":12,"total_cputime":3}"#)
            .header(
                "x-business-use-case-usage",
                r#"{"PAGE1":[{"type":"messenger","call_count":50,"total_cputime":61,"total_time":30,"estimated_time_to_regain_access":0}]}"#,
            ),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    client.call(send("PAGE1"), &token).await.unwrap();
    let s = client.usage().snapshot();
    assert_eq!(s.app.pct, 28);
    assert_eq!(s.app.by_type["call_count"], 28);
    assert_eq!(s.objects["PAGE1"].pct, 85);
    assert_eq!(s.objects["PAGE1"].by_type["pages"], 85);

    client.call(send("PAGE1"), &token).await.unwrap_err();
    let s = client.usage().snapshot();
    assert_eq!(s.app.pct, 41);
    assert_eq!(s.objects["PAGE1"].pct, 61);
    assert_eq!(s.objects["PAGE1"].by_type["messenger"], 61);
    assert_eq!(s.objects["PAGE1"].blocked_until, None);
}

#[tokio::test]
async fn page_throttle_blocks_that_page_locally_until_backoff_passes() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::json(400, throttle_body(32)),
        _ => ok_send(),
    })
    .await;
    let (client, clock) = client_with_clock(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let e = meta_error(client.call(send("PAGE1"), &token).await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::Throttled);
    let retry = e.retry_after.expect("throttled errors carry retry_after");
    assert!(
        retry >= Duration::from_secs(60) && retry < Duration::from_secs(75),
        "{retry:?}"
    );
    assert_eq!(server.count(), 1);

    // Same Page: refused without reaching the server.
    match client.call(send("PAGE1"), &token).await.unwrap_err() {
        GraphError::Throttled { retry_after, scope } => {
            assert_eq!(scope, ThrottleScope::BusinessObject("PAGE1".into()));
            assert_eq!(retry_after, retry);
        }
        other => panic!("expected a local refusal, got {other:?}"),
    }
    assert_eq!(server.count(), 1);
    let snap = client.usage().snapshot();
    assert_eq!(snap.objects["PAGE1"].blocked_for, Some(retry));

    // Another Page is not affected.
    client.call(send("PAGE2"), &token).await.unwrap();
    assert_eq!(server.count(), 2);

    // Once the backoff has passed, the Page is called again.
    clock.advance(retry);
    client.call(send("PAGE1"), &token).await.unwrap();
    assert_eq!(server.count(), 3);
    assert_eq!(client.usage().snapshot().objects["PAGE1"].strikes, 0);
}

#[tokio::test]
async fn app_throttle_refuses_every_call() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::json(400, throttle_body(4)),
        _ => ok_send(),
    })
    .await;
    let (client, clock) = client_with_clock(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let e = meta_error(client.call(send("PAGE1"), &token).await.unwrap_err());
    let retry = e.retry_after.unwrap();
    for object in ["PAGE1", "PAGE2"] {
        match client.call(send(object), &token).await.unwrap_err() {
            GraphError::Throttled { scope, .. } => assert_eq!(scope, ThrottleScope::App),
            other => panic!("expected a local refusal, got {other:?}"),
        }
    }
    assert!(matches!(
        client.debug_token(&token).await.unwrap_err(),
        GraphError::Throttled { .. }
    ));
    assert_eq!(server.count(), 1);

    clock.advance(retry);
    client.call(send("PAGE2"), &token).await.unwrap();
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn business_use_case_throttle_waits_for_the_regain_estimate() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::json(400, throttle_body(80007)).header(
            "x-business-use-case-usage",
            r#"{"WABA1":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":5}]}"#,
        ),
        _ => Reply::json(200, json!({"id":"WABA1","name":"Acme"})),
    })
    .await;
    let (client, clock) = client_with_clock(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let e = meta_error(client.waba_name("WABA1", &token).await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::Throttled);
    assert_eq!(e.retry_after, Some(Duration::from_secs(300)));

    clock.advance(Duration::from_secs(299));
    assert!(matches!(
        client.waba_name("WABA1", &token).await.unwrap_err(),
        GraphError::Throttled { .. }
    ));
    assert_eq!(server.count(), 1);

    clock.advance(Duration::from_secs(1));
    assert_eq!(client.waba_name("WABA1", &token).await.unwrap(), "Acme");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn calls_slow_down_above_the_usage_threshold() {
    let server = MockGraph::start(|_, n| match n {
        // 90 % with threshold 80 → half of max_delay.
        0 => ok_send().header(
            "x-app-usage",
            r#"{"call_count":90,"total_time":10,"total_cputime":10}"#,
        ),
        _ => ok_send(),
    })
    .await;
    let mut policy = UsagePolicy::new(80);
    policy.max_delay = Duration::from_millis(600);
    let tracker = Arc::new(UsageTracker::new(policy));
    let client = GraphClient::with_usage_tracker(config(server.url()), tracker).unwrap();
    let token = Token::new(PAGE_TOKEN.into());

    client.call(send("PAGE1"), &token).await.unwrap();
    assert_eq!(
        client.usage().admit(Some("PAGE1")).unwrap(),
        Duration::from_millis(300)
    );

    let started = Instant::now();
    client.call(send("PAGE1"), &token).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "not slowed down: {elapsed:?}"
    );

    // That response carried no usage header: usage is low again, no more delay.
    assert_eq!(client.usage().admit(Some("PAGE1")).unwrap(), Duration::ZERO);
}

// --- listings and assets -------------------------------------------------------------------

#[tokio::test]
async fn me_accounts_follows_same_origin_next_links() {
    let base = Arc::new(Mutex::new(String::new()));
    let base_for_server = base.clone();
    let server = MockGraph::start(move |_, n| {
        let base = base_for_server.lock().unwrap().clone();
        let page = |id: &str, next: Option<String>| {
            let mut body = json!({"data":[{"id":id,"name":format!("Page {id}"),
                "access_token":format!("EAAGpage{id}"),"tasks":["MANAGE","MESSAGING"]}]});
            if let Some(next) = next {
                body["paging"] = json!({"cursors":{"after":"c"},"next":next});
            }
            Reply::json(200, body)
        };
        match n {
            // Meta-style next link echoing credentials: they must not be sent back in the URL.
            0 => page(
                "1",
                Some(format!(
                    "{base}/v25.0/me/accounts?access_token={USER_TOKEN}&limit=100&after=c1"
                )),
            ),
            1 => page("2", Some(format!("{base}/v25.0/me/accounts?limit=100&after=c2"))),
            _ => page("3", None),
        }
    })
    .await;
    *base.lock().unwrap() = server.url().as_str().trim_end_matches('/').to_owned();
    let client = client(server.url());

    let pages = client.me_accounts(&Token::new(USER_TOKEN.into())).await.unwrap();
    let ids: Vec<&str> = pages.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(pages[1].token.expose(), "EAAGpage2");
    assert_eq!(pages[1].name, "Page 2");
    assert_eq!(pages[1].tasks, ["MANAGE", "MESSAGING"]);
    assert!(!format!("{:?}", pages[0]).contains("EAAGpage1"));

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].param("fields").as_deref(),
        Some("id,name,access_token,tasks")
    );
    assert_eq!(requests[1].param("after").as_deref(), Some("c1"));
    assert_eq!(requests[2].param("after").as_deref(), Some("c2"));
    let proof = hmac_hex(APP_SECRET, USER_TOKEN);
    for r in &requests {
        assert_eq!(r.path, "/v25.0/me/accounts");
        assert_eq!(r.authorization(), Some(format!("Bearer {USER_TOKEN}").as_str()));
        assert!(!r.query.contains(USER_TOKEN), "token in URL: {}", r.query);
        assert_eq!(r.param("appsecret_proof").as_deref(), Some(proof.as_str()));
    }
}

#[tokio::test]
async fn me_accounts_refuses_a_foreign_next_link() {
    let foreign = MockGraph::start(|_, _| Reply::json(200, json!({"data":[]}))).await;
    let foreign_next = format!("{}v25.0/me/accounts?after=c1", foreign.url());
    let server = MockGraph::start(move |_, _| {
        Reply::json(
            200,
            json!({"data":[{"id":"1","name":"One","access_token":"EAAGpage1","tasks":[]}],
                   "paging":{"next":foreign_next.clone()}}),
        )
    })
    .await;
    let client = client(server.url());

    let err = client
        .me_accounts(&Token::new(USER_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Decode(_)), "{err:?}");
    assert_eq!(server.count(), 1);
    assert_eq!(foreign.count(), 0, "the token must not reach another origin");
}

#[tokio::test]
async fn paging_is_bounded() {
    let base = Arc::new(Mutex::new(String::new()));
    let base_for_server = base.clone();
    let server = MockGraph::start(move |_, n| {
        let base = base_for_server.lock().unwrap().clone();
        Reply::json(
            200,
            json!({"data":[{"id":"1","display_phone_number":"+1 555","verified_name":"A"}],
                   "paging":{"next":format!("{base}/v25.0/WABA1/phone_numbers?after=c{n}")}}),
        )
    })
    .await;
    *base.lock().unwrap() = server.url().as_str().trim_end_matches('/').to_owned();
    let client = client(server.url());
    let err = client
        .waba_phone_numbers("WABA1", &Token::new(PAGE_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Decode(_)), "{err:?}");
    assert_eq!(server.count(), scifer_graph::MAX_PAGES);
}

#[tokio::test]
async fn page_instagram_account_present_and_absent() {
    let server = MockGraph::start(|_, n| match n {
        0 => Reply::json(
            200,
            json!({"instagram_business_account":{"id":"17841400000000001","username":"acme"},"id":"PAGE1"}),
        ),
        _ => Reply::json(200, json!({"id":"PAGE2"})),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let ig = client
        .page_instagram_account("PAGE1", &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ig.id, "17841400000000001");
    assert_eq!(ig.username.as_deref(), Some("acme"));
    assert_eq!(
        client.page_instagram_account("PAGE2", &token).await.unwrap(),
        None
    );

    let r = &server.requests()[0];
    assert_eq!(r.path, "/v25.0/PAGE1");
    assert_eq!(
        r.param("fields").as_deref(),
        Some("instagram_business_account{id,username}")
    );
    assert_eq!(r.authorization(), Some(format!("Bearer {PAGE_TOKEN}").as_str()));
}

#[tokio::test]
async fn subscribed_apps_subscribe_list_and_unsubscribe() {
    let server = MockGraph::start(|r, _| match (r.method.as_str(), r.path.as_str()) {
        ("POST" | "DELETE", _) => Reply::json(200, json!({"success":true})),
        (_, "/v25.0/PAGE1/subscribed_apps") => Reply::json(
            200,
            json!({"data":[{"id":"999","name":"Other","subscribed_fields":["feed"]},
                           {"id":APP_ID,"name":"Scifer","subscribed_fields":["messages","feed"]}]}),
        ),
        (_, "/v25.0/WABA1/subscribed_apps") => Reply::json(
            200,
            json!({"data":[{"whatsapp_business_api_data":{"id":APP_ID,"link":"https://x","name":"Scifer"}}]}),
        ),
        _ => Reply::json(200, json!({"data":[]})),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    client
        .subscribe_app("PAGE1", &["messages", "messaging_postbacks", "feed"], &token)
        .await
        .unwrap();
    client.subscribe_app("WABA1", &[], &token).await.unwrap();
    assert_eq!(
        client.subscribed_fields("PAGE1", &token).await.unwrap(),
        Some(vec!["messages".to_owned(), "feed".to_owned()])
    );
    assert_eq!(
        client.subscribed_fields("WABA1", &token).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(client.subscribed_fields("PAGE9", &token).await.unwrap(), None);
    client.unsubscribe_app("PAGE1", &token).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path, "/v25.0/PAGE1/subscribed_apps");
    assert_eq!(
        requests[0].param("subscribed_fields").as_deref(),
        Some("messages,messaging_postbacks,feed")
    );
    assert_eq!(requests[1].param("subscribed_fields"), None);
    assert_eq!(requests[5].method, Method::DELETE);
    assert_eq!(requests[5].path, "/v25.0/PAGE1/subscribed_apps");
}

#[tokio::test]
async fn subscribe_without_success_is_an_error() {
    let server = MockGraph::start(|_, _| Reply::json(200, json!({"success":false}))).await;
    let client = client(server.url());
    let err = client
        .subscribe_app("PAGE1", &["messages"], &Token::new(PAGE_TOKEN.into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn waba_phone_numbers_and_name() {
    let server = MockGraph::start(|r, _| match r.path.as_str() {
        "/v25.0/WABA1/phone_numbers" => Reply::json(
            200,
            json!({"data":[{"id":"PN1","display_phone_number":"+55 11 99999-0000","verified_name":"Acme"},
                           {"id":"PN2","display_phone_number":"+1 555 0100"}]}),
        ),
        _ => Reply::json(200, json!({"id":"WABA1","name":"Acme WABA"})),
    })
    .await;
    let client = client(server.url());
    let token = Token::new(PAGE_TOKEN.into());

    let numbers = client.waba_phone_numbers("WABA1", &token).await.unwrap();
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0].id, "PN1");
    assert_eq!(numbers[0].display_phone_number, "+55 11 99999-0000");
    assert_eq!(numbers[0].verified_name.as_deref(), Some("Acme"));
    assert_eq!(numbers[1].verified_name, None);
    assert_eq!(client.waba_name("WABA1", &token).await.unwrap(), "Acme WABA");

    let requests = server.requests();
    assert_eq!(
        requests[0].param("fields").as_deref(),
        Some("id,display_phone_number,verified_name")
    );
    assert_eq!(requests[1].path, "/v25.0/WABA1");
    assert_eq!(requests[1].param("fields").as_deref(), Some("name"));
}
