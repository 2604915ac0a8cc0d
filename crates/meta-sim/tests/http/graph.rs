//! The Graph API simulator over a real port, driven with reqwest like token-vault drives Meta.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use ring::hmac;
use serde_json::{Value, json};

use scifer_meta_sim::AppSecret;
use scifer_meta_sim::demo::{
    DEMO_DISPLAY_PHONE_NUMBER, DEMO_IG_ACCOUNT_ID, DEMO_IG_USERNAME, DEMO_PAGE_ID, DEMO_PAGE_NAME,
    DEMO_PHONE_NUMBER_ID, DEMO_SECOND_PAGE_ID, DEMO_USER_ID, DEMO_WABA_ID,
};
use scifer_meta_sim::graph::{GraphSim, GraphSimConfig};

const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "graph-test-secret";
const REDIRECT: &str = "https://app.example/oauth/callback";
const V: &str = "v25.0";

const PAGE_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "instagram_basic",
    "instagram_manage_messages",
];

fn config() -> GraphSimConfig {
    GraphSimConfig::new(APP_ID, AppSecret::new(APP_SECRET))
}

/// Independent of the crate: hex(HMAC-SHA256(app secret, token)).
fn proof(token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes());
    hex::encode(hmac::sign(&key, token.as_bytes()).as_ref())
}

fn app_token() -> String {
    format!("{APP_ID}|{APP_SECRET}")
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_json(&self, name: &str) -> Value {
        serde_json::from_str(self.header(name).unwrap_or_else(|| panic!("no {name} header"))).unwrap()
    }

    /// `(code, error_subcode)` of an error envelope.
    fn error(&self) -> (u64, Option<u64>) {
        let e = &self.json()["error"];
        assert!(e.is_object(), "not an error: {}", self.body);
        (e["code"].as_u64().unwrap(), e["error_subcode"].as_u64())
    }

    fn location(&self) -> reqwest::Url {
        reqwest::Url::parse(self.header("location").expect("a Location header")).unwrap()
    }
}

struct GraphApp {
    sim: GraphSim,
    base: String,
    http: reqwest::Client,
}

impl GraphApp {
    async fn start(sim: GraphSim) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = sim.clone();
        tokio::spawn(async move { server.serve(listener, std::future::pending()).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self { sim, base, http }
    }

    async fn empty() -> Self {
        Self::start(GraphSim::new(config())).await
    }

    /// A request; with a token it carries `Authorization: Bearer` and the right
    /// appsecret_proof unless `params` already has one.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        params: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut query: Vec<(String, String)> =
            params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            if !params.iter().any(|(k, _)| *k == "appsecret_proof") {
                query.push(("appsecret_proof".into(), proof(t)));
            }
            req = req.bearer_auth(t);
        }
        req = req.query(&query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, token: &str, params: &[(&str, &str)]) -> Resp {
        self.call(Method::GET, path, Some(token), params, None).await
    }

    async fn post(&self, path: &str, token: &str, params: &[(&str, &str)], body: Option<Value>) -> Resp {
        self.call(Method::POST, path, Some(token), params, body).await
    }

    async fn dialog(&self, scope: &str, state: &str) -> Resp {
        self.call(
            Method::GET,
            &format!("/{V}/dialog/oauth"),
            None,
            &[
                ("client_id", APP_ID),
                ("redirect_uri", REDIRECT),
                ("state", state),
                ("scope", scope),
                ("response_type", "code"),
            ],
            None,
        )
        .await
    }

    /// Dialog → code.
    async fn code(&self, scope: &str) -> String {
        let r = self.dialog(scope, "st").await;
        assert_eq!(r.status, 302, "{}", r.body);
        query_of(&r.location())["code"].clone()
    }

    async fn exchange(&self, params: &[(&str, &str)]) -> Resp {
        self.call(
            Method::GET,
            &format!("/{V}/oauth/access_token"),
            None,
            params,
            None,
        )
        .await
    }

    async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Resp {
        self.exchange(&[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ])
        .await
    }

    /// Dialog → code → short-lived user token.
    async fn login(&self, scope: &str) -> String {
        let code = self.code(scope).await;
        let r = self.exchange_code(&code, REDIRECT).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    async fn debug_token(&self, input: &str) -> Value {
        let r = self
            .call(
                Method::GET,
                &format!("/{V}/debug_token"),
                None,
                &[("input_token", input), ("access_token", &app_token())],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"].clone()
    }

    /// The Page tokens `me/accounts` hands out, by Page id.
    async fn page_tokens(&self, user_token: &str) -> HashMap<String, String> {
        let r = self
            .get(
                &format!("/{V}/me/accounts"),
                user_token,
                &[("fields", "id,access_token")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["access_token"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn query_of(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn scopes_of(debug: &Value) -> Vec<String> {
    debug["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn full_login_flow_connects_a_page_with_instagram() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "Padaria Ana");
    let ig = app.sim.link_instagram(&page.id, "padaria.ana");
    let bare = app.sim.add_page(&user.id, "Ana Café");

    // Dialog: state comes back byte for byte; a scope the user cannot grant is not granted.
    let state = "a b&c=é/?%";
    let r = app
        .dialog(
            "pages_show_list,pages_messaging,pages_manage_metadata,instagram_basic,ads_management",
            state,
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.location();
    assert_eq!(loc.as_str().split('?').next(), Some(REDIRECT));
    let q = query_of(&loc);
    assert_eq!(q["state"], state);
    assert!(q["code"].len() > 20);
    assert!(!q.contains_key("error"));

    let r = app.exchange_code(&q["code"], REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let short = r.json();
    assert_eq!(short["token_type"], "bearer");
    assert_eq!(short["expires_in"], 5400);
    let short = short["access_token"].as_str().unwrap().to_owned();
    assert!(short.starts_with("EAAG"));

    let r = app
        .exchange(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("fb_exchange_token", &short),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expires_in"], 5_183_944);
    let long = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_ne!(long, short);

    let r = app
        .get(
            &format!("/{V}/me/accounts"),
            &long,
            &[("fields", "id,name,access_token,tasks")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], page.id.as_str());
    assert_eq!(data[0]["name"], "Padaria Ana");
    assert_eq!(data[1]["name"], "Ana Café");
    assert!(data[0]["tasks"].as_array().unwrap().contains(&json!("MODERATE")));
    let page_token = data[0]["access_token"].as_str().unwrap().to_owned();
    assert_ne!(page_token, long);

    let r = app
        .get(
            &format!("/{V}/{}", page.id),
            &long,
            &[("fields", "id,name,instagram_business_account{id,username}")],
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"id": page.id, "name": "Padaria Ana",
               "instagram_business_account": {"id": ig, "username": "padaria.ana"}})
    );
    let r = app
        .get(
            &format!("/{V}/{}", bare.id),
            &long,
            &[("fields", "id,instagram_business_account")],
        )
        .await;
    assert_eq!(r.json(), json!({"id": bare.id}));
    let r = app
        .get(&format!("/{V}/{ig}"), &page_token, &[("fields", "id,username")])
        .await;
    assert_eq!(r.json(), json!({"id": ig, "username": "padaria.ana"}));
    // The Page itself hands out its token too.
    let r = app
        .get(&format!("/{V}/{}", page.id), &long, &[("fields", "access_token")])
        .await;
    assert_eq!(r.json()["access_token"], page_token.as_str());

    let r = app
        .post(
            &format!("/{V}/{}/subscribed_apps", page.id),
            &page_token,
            &[(
                "subscribed_fields",
                "messages,messaging_postbacks,message_echoes,feed",
            )],
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}));
    let fields = vec!["messages", "messaging_postbacks", "message_echoes", "feed"];
    assert_eq!(app.sim.subscribed_fields(&page.id).unwrap(), fields);
    let r = app
        .get(&format!("/{V}/{}/subscribed_apps", page.id), &page_token, &[])
        .await;
    assert_eq!(
        r.json(),
        json!({"data": [{"id": APP_ID, "name": "Scifer", "subscribed_fields": fields}]})
    );

    let d = app.debug_token(&page_token).await;
    assert_eq!(d["type"], "PAGE");
    assert_eq!(d["app_id"], APP_ID);
    assert_eq!(d["profile_id"], page.id.as_str());
    assert_eq!(d["user_id"], user.id.as_str());
    assert_eq!(d["is_valid"], true);
    assert_eq!(d["expires_at"], 0);
    let scopes = scopes_of(&d);
    assert!(scopes.contains(&"pages_messaging".to_owned()));
    assert!(scopes.contains(&"public_profile".to_owned()));
    assert!(!scopes.contains(&"ads_management".to_owned()));
    assert!(
        !scopes.contains(&"instagram_manage_messages".to_owned()),
        "not requested"
    );
    let granular = d["granular_scopes"].as_array().unwrap();
    let messaging = granular.iter().find(|g| g["scope"] == "pages_messaging").unwrap();
    assert_eq!(messaging["target_ids"], json!([page.id, bare.id]));
    let d = app.debug_token(&long).await;
    assert_eq!(d["type"], "USER");
    assert!(d["expires_at"].as_i64().unwrap() > d["issued_at"].as_i64().unwrap() + 5_000_000);
    assert!(d.get("profile_id").is_none());

    // The call log says what kind of token went where, and never the token.
    let calls = app.sim.calls();
    let accounts = calls
        .iter()
        .find(|c| c.path == format!("/{V}/me/accounts"))
        .unwrap();
    assert_eq!(accounts.token_kind.as_deref(), Some("USER"));
    assert!(accounts.had_appsecret_proof);
    let subscribe = calls.iter().find(|c| c.method == "POST").unwrap();
    assert_eq!(subscribe.token_kind.as_deref(), Some("PAGE"));
    let log = format!("{calls:?}");
    let issued = app.sim.issued_tokens();
    for t in [&short, &long, &page_token] {
        assert!(!log.contains(t.as_str()));
        assert!(issued.contains(t));
    }
}

#[tokio::test]
async fn me_accounts_pages_with_absolute_cursor_links() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let ids: Vec<String> = (0..3)
        .map(|i| app.sim.add_page(&user.id, &format!("P{i}")).id)
        .collect();
    let token = app.sim.issue_user_token(&user.id, &["pages_show_list"], true);
    let r = app
        .get(
            &format!("/{V}/me/accounts"),
            &token,
            &[("fields", "id,name"), ("limit", "2")],
        )
        .await;
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["id"], ids[1].as_str());
    assert!(v["paging"]["cursors"]["after"].is_string());
    assert!(v["paging"].get("previous").is_none());
    let next = reqwest::Url::parse(v["paging"]["next"].as_str().unwrap()).unwrap();
    assert_eq!(
        format!("{}://{}", next.scheme(), next.host_str().unwrap()),
        app.base.rsplit_once(':').unwrap().0
    );
    assert_eq!(next.path(), format!("/{V}/me/accounts"));
    let q = query_of(&next);
    assert_eq!((q["limit"].as_str(), q["fields"].as_str()), ("2", "id,name"));

    // Follow it exactly as given (Bearer token + proof).
    let r = app
        .http
        .get(next)
        .bearer_auth(&token)
        .query(&[("appsecret_proof", proof(&token))])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!([{"id": ids[2], "name": "P2"}]));
    assert!(v["paging"].get("next").is_none());
    assert!(v["paging"]["previous"].is_string());

    // Without pages_show_list: a permission error.
    let other = app.sim.issue_user_token(&user.id, &["pages_messaging"], false);
    app.sim.revoke_scope(&user.id, "pages_show_list");
    let r = app.get(&format!("/{V}/me/accounts"), &other, &[]).await;
    assert_eq!(r.error().0, 10);
}

#[tokio::test]
async fn dialog_cancel_and_unknown_app() {
    let app = GraphApp::empty().await;
    app.sim.add_user("Ana", PAGE_SCOPES);
    app.sim.set_dialog_denies(true);
    let r = app.dialog("pages_show_list", "xyz").await;
    assert_eq!(r.status, 302);
    let q = query_of(&r.location());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_reason"], "user_denied");
    assert!(!q["error_description"].is_empty());
    assert_eq!(q["state"], "xyz");
    assert!(!q.contains_key("code"));

    let r = app
        .call(
            Method::GET,
            &format!("/{V}/dialog/oauth"),
            None,
            &[("client_id", "999"), ("redirect_uri", REDIRECT), ("state", "s")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.header("location").is_none());
}

#[tokio::test]
async fn code_exchange_errors_reuse_mismatch_expiry_and_bad_secret() {
    let app = GraphApp::empty().await;
    app.sim.add_user("Ana", PAGE_SCOPES);

    let code = app.code("pages_show_list").await;
    let r = app.exchange_code(&code, "https://app.example/other").await;
    assert_eq!((r.status, r.error()), (400, (100, Some(36008))));
    assert_eq!(r.json()["error"]["type"], "OAuthException");
    assert_eq!(app.exchange_code(&code, REDIRECT).await.status, 200);
    let r = app.exchange_code(&code, REDIRECT).await;
    assert_eq!(r.error(), (100, Some(36009)));

    let code = app.code("pages_show_list").await;
    app.sim.advance_clock(Duration::from_secs(11 * 60));
    assert_eq!(
        app.exchange_code(&code, REDIRECT).await.error(),
        (100, Some(36007))
    );

    let code = app.code("pages_show_list").await;
    let r = app
        .exchange(&[
            ("client_id", APP_ID),
            ("client_secret", "wrong"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert_eq!((r.status, r.error()), (400, (1, None)));
    assert_eq!(r.json()["error"]["message"], "Error validating client secret.");
    // The failed attempt did not burn the code.
    assert_eq!(app.exchange_code(&code, REDIRECT).await.status, 200);

    let r = app
        .exchange(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
        ])
        .await;
    let t = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(t.starts_with(&format!("{APP_ID}|")));
    assert_eq!(app.debug_token(&t).await["type"], "APP");
}

#[tokio::test]
async fn appsecret_proof_required_wrong_and_right() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let token = app.sim.issue_user_token(&user.id, &["pages_show_list"], false);
    let path = format!("/{V}/me");

    let r = app.call(Method::GET, &path, None, &[], None).await;
    assert_eq!(r.error(), (104, None));

    // Token in the query string, no proof.
    let r = app
        .call(Method::GET, &path, None, &[("access_token", &token)], None)
        .await;
    assert_eq!(r.error(), (100, None));
    assert_eq!(
        r.json()["error"]["message"],
        "API calls from the server require an appsecret_proof argument"
    );
    assert_eq!(r.json()["error"]["type"], "GraphMethodException");

    let r = app
        .call(
            Method::GET,
            &path,
            Some(&token),
            &[("appsecret_proof", &proof("other"))],
            None,
        )
        .await;
    assert_eq!(r.error(), (100, None));
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid appsecret_proof provided in the API argument"
    );

    let r = app.get(&path, &token, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"id": user.id, "name": "Ana"}));
    let log = app.sim.calls();
    assert_eq!(
        log.iter().map(|c| c.had_appsecret_proof).collect::<Vec<_>>(),
        [false, false, true, true]
    );
    assert_eq!(log[0].token_kind, None);

    // An app that does not require it accepts calls without a proof, but still checks one.
    let mut cfg = config();
    cfg.require_appsecret_proof = false;
    let lax = GraphApp::start(GraphSim::new(cfg)).await;
    let u = lax.sim.add_user("Bo", &[]);
    let t = lax.sim.issue_user_token(&u.id, &[], false);
    let r = lax
        .call(Method::GET, &path, None, &[("access_token", &t)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = lax
        .call(Method::GET, &path, Some(&t), &[("appsecret_proof", "00")], None)
        .await;
    assert_eq!(r.error(), (100, None));
}

#[tokio::test]
async fn invalidated_and_expired_tokens_are_190() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "P");
    let long = app.sim.issue_user_token(&user.id, PAGE_SCOPES, true);
    let page_token = app.page_tokens(&long).await[&page.id].clone();

    // Expiry on the simulated clock: the user token dies (463), its Page token lives on.
    app.sim.advance_clock(Duration::from_secs(61 * 24 * 3600));
    let r = app.get(&format!("/{V}/me/accounts"), &long, &[]).await;
    assert_eq!((r.status, r.error()), (400, (190, Some(463))));
    let d = app.debug_token(&long).await;
    assert_eq!(d["is_valid"], false);
    assert_eq!(d["error"]["subcode"], 463);
    assert_eq!(d["error"]["code"], 190);
    assert_eq!(app.get(&format!("/{V}/me"), &page_token, &[]).await.status, 200);

    // A password change (460) on a fresh token; Page tokens derived from it die too.
    let fresh = app.sim.issue_user_token(&user.id, PAGE_SCOPES, true);
    let derived = app.page_tokens(&fresh).await[&page.id].clone();
    app.sim.invalidate_token(&fresh, 460);
    let r = app.get(&format!("/{V}/me/accounts"), &fresh, &[]).await;
    assert_eq!(r.error(), (190, Some(460)));
    assert!(r.header("www-authenticate").unwrap().starts_with("OAuth "));
    assert_eq!(
        app.get(&format!("/{V}/me"), &derived, &[]).await.error(),
        (190, Some(460))
    );
    let d = app.debug_token(&fresh).await;
    assert_eq!(
        (d["is_valid"].clone(), d["error"]["subcode"].clone()),
        (json!(false), json!(460))
    );
    assert_eq!(d["type"], "USER");

    // Every Page token of the Page.
    app.sim.invalidate_tokens_of_page(&page.id, 492);
    assert_eq!(
        app.get(&format!("/{V}/me"), &page_token, &[]).await.error(),
        (190, Some(492))
    );

    // A token Meta never issued.
    assert_eq!(
        app.get(&format!("/{V}/me"), "EAAGnotatoken", &[]).await.error(),
        (190, None)
    );
    let d = app.debug_token("EAAGnotatoken").await;
    assert_eq!(
        (d["is_valid"].clone(), d["error"]["code"].clone()),
        (json!(false), json!(190))
    );
}

#[tokio::test]
async fn revoked_scope_leaves_debug_token_and_breaks_calls() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "P");
    let long = app.sim.issue_user_token(&user.id, PAGE_SCOPES, true);
    let page_token = app.page_tokens(&long).await[&page.id].clone();

    app.sim.revoke_scope(&user.id, "pages_manage_metadata");
    let scopes = scopes_of(&app.debug_token(&page_token).await);
    assert!(
        !scopes.contains(&"pages_manage_metadata".to_owned()),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"pages_messaging".to_owned()));
    let r = app
        .post(
            &format!("/{V}/{}/subscribed_apps", page.id),
            &page_token,
            &[("subscribed_fields", "feed")],
            None,
        )
        .await;
    let (code, _) = r.error();
    assert!(code == 10 || (200..300).contains(&code), "{}", r.body);
    assert_eq!(app.sim.subscribed_fields(&page.id), None);

    app.sim.revoke_scope(&page_token, "pages_messaging");
    let r = app
        .post(
            &format!("/{V}/me/messages"),
            &page_token,
            &[],
            Some(json!({"recipient": {"id": "1"}, "message": {"text": "hi"}})),
        )
        .await;
    assert_eq!(r.error(), (230, None));
    assert!(app.sim.sent_messages().is_empty());
}

#[tokio::test]
async fn throttles_fail_with_codes_and_usage_headers_then_clear() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "P");
    let other = app.sim.add_page(&user.id, "Q");
    let long = app.sim.issue_user_token(&user.id, PAGE_SCOPES, true);
    let tokens = app.page_tokens(&long).await;
    let page_token = &tokens[&page.id];

    app.sim.throttle(&page.id, 80001, 7, Some(2));
    for _ in 0..2 {
        let r = app.get(&format!("/{V}/me"), page_token, &[]).await;
        assert_eq!((r.status, r.error()), (400, (80001, None)));
        assert_eq!(r.json()["error"]["is_transient"], true);
        let buc = r.header_json("x-business-use-case-usage");
        assert_eq!(buc[&page.id][0]["type"], "pages");
        assert_eq!(buc[&page.id][0]["estimated_time_to_regain_access"], 7);
        assert_eq!(buc[&page.id][0]["call_count"], 100);
    }
    let r = app.get(&format!("/{V}/me"), page_token, &[]).await;
    assert_eq!(r.status, 200, "cleared after 2 calls: {}", r.body);
    assert!(r.header("x-business-use-case-usage").is_none());

    app.sim.throttle(&page.id, 32, 3, None);
    for _ in 0..3 {
        let r = app.get(&format!("/{V}/{}", page.id), &long, &[]).await;
        assert_eq!(r.error(), (32, None));
        assert_eq!(
            r.header_json("x-business-use-case-usage")[&page.id][0]["estimated_time_to_regain_access"],
            3
        );
    }
    assert_eq!(
        app.get(&format!("/{V}/{}", other.id), &long, &[]).await.status,
        200
    );
    app.sim.clear_throttle(&page.id);
    assert_eq!(
        app.get(&format!("/{V}/{}", page.id), &long, &[]).await.status,
        200
    );

    // App-level: every call, whatever object.
    app.sim.throttle(APP_ID, 4, 1, Some(1));
    let r = app.get(&format!("/{V}/{}", other.id), &long, &[]).await;
    assert_eq!(r.error(), (4, None));
    assert_eq!(r.header_json("x-app-usage")["call_count"], 100);
    assert_eq!(
        app.get(&format!("/{V}/{}", other.id), &long, &[]).await.status,
        200
    );
}

#[tokio::test]
async fn set_usage_headers_ride_on_every_response() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let waba = app.sim.add_waba("Biz");
    let token = app.sim.issue_user_token(&user.id, &[], false);
    let r = app.get(&format!("/{V}/me"), &token, &[]).await;
    assert!(r.header("x-app-usage").is_none() && r.header("x-business-use-case-usage").is_none());

    app.sim.set_usage(None, 42);
    app.sim.set_usage(Some(&waba.id), 77);
    for path in [format!("/{V}/me"), format!("/{V}/404404")] {
        let r = app.get(&path, &token, &[]).await;
        assert_eq!(
            r.header_json("x-app-usage"),
            json!({"call_count": 42, "total_cputime": 42, "total_time": 42})
        );
        let entry = &r.header_json("x-business-use-case-usage")[&waba.id][0];
        assert_eq!(entry["type"], "whatsapp_business_management");
        assert_eq!(entry["call_count"], 77);
        assert_eq!(entry["estimated_time_to_regain_access"], 0);
    }
}

#[tokio::test]
async fn whatsapp_phone_numbers_subscriptions_and_embedded_signup() {
    let app = GraphApp::empty().await;
    let waba = app.sim.add_waba("Padaria");
    let phone = app
        .sim
        .add_phone_number(&waba.id, "+55 11 99999-0000", "Padaria Ana");
    let token = app.sim.issue_system_user_token(
        &waba.id,
        &["whatsapp_business_management", "whatsapp_business_messaging"],
    );

    let r = app
        .get(&format!("/{V}/{}/phone_numbers", waba.id), &token, &[])
        .await;
    let data = &r.json()["data"];
    assert_eq!(data.as_array().unwrap().len(), 1);
    assert_eq!(data[0]["id"], phone.as_str());
    assert_eq!(data[0]["display_phone_number"], "+55 11 99999-0000");
    assert_eq!(data[0]["verified_name"], "Padaria Ana");
    assert_eq!(data[0]["quality_rating"], "GREEN");
    let r = app
        .get(&format!("/{V}/{}", waba.id), &token, &[("fields", "id,name")])
        .await;
    assert_eq!(r.json(), json!({"id": waba.id, "name": "Padaria"}));

    let r = app
        .post(&format!("/{V}/{}/subscribed_apps", waba.id), &token, &[], None)
        .await;
    assert_eq!(r.json(), json!({"success": true}));
    assert!(
        app.sim
            .subscribed_fields(&waba.id)
            .unwrap()
            .contains(&"messages".to_owned())
    );
    let r = app
        .get(&format!("/{V}/{}/subscribed_apps", waba.id), &token, &[])
        .await;
    assert_eq!(r.json()["data"][0]["whatsapp_business_api_data"]["id"], APP_ID);
    assert!(r.json()["data"][0].get("override_callback_uri").is_none());
    app.sim.drop_subscription(&waba.id);
    assert_eq!(app.sim.subscribed_fields(&waba.id), None);
    assert_eq!(
        app.get(&format!("/{V}/{}/subscribed_apps", waba.id), &token, &[])
            .await
            .json(),
        json!({"data": []})
    );
    let r = app
        .post(
            &format!("/{V}/{}/subscribed_apps", waba.id),
            &token,
            &[],
            Some(json!({"override_callback_uri": "https://hooks.example/wa", "verify_token": "vt"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .get(&format!("/{V}/{}/subscribed_apps", waba.id), &token, &[])
        .await;
    assert_eq!(
        r.json()["data"][0]["override_callback_uri"],
        "https://hooks.example/wa"
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/{V}/{}/subscribed_apps", waba.id),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}));
    assert_eq!(app.sim.subscribed_fields(&waba.id), None);

    // Embedded Signup: the code is exchanged without redirect_uri for a system-user token.
    let other = app.sim.add_waba("Other");
    let code = app
        .sim
        .embedded_signup_code(&other.id, &["whatsapp_business_management"]);
    let r = app
        .exchange(&[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("code", &code),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let es_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let d = app.debug_token(&es_token).await;
    assert_eq!(d["type"], "SYSTEM_USER");
    assert_eq!(d["expires_at"], 0);
    assert_eq!(d["granular_scopes"][0]["target_ids"], json!([other.id]));
    let r = app
        .exchange(&[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("code", &code),
        ])
        .await;
    assert_eq!(r.error(), (100, Some(36009)));
    let code = app
        .sim
        .embedded_signup_code(&other.id, &["whatsapp_business_management"]);
    assert_eq!(
        app.exchange_code(&code, REDIRECT).await.error(),
        (100, Some(36008))
    );
    assert_eq!(
        app.post(
            &format!("/{V}/{}/subscribed_apps", other.id),
            &es_token,
            &[],
            None
        )
        .await
        .status,
        200
    );
    // It sees its WABA only.
    let r = app
        .get(&format!("/{V}/{}/phone_numbers", waba.id), &es_token, &[])
        .await;
    assert_eq!(r.error(), (100, Some(33)));

    // Without whatsapp_business_management the WABA endpoints refuse.
    app.sim.revoke_scope(&es_token, "whatsapp_business_management");
    let r = app
        .post(
            &format!("/{V}/{}/subscribed_apps", other.id),
            &es_token,
            &[],
            None,
        )
        .await;
    assert_eq!(r.error(), (10, None));
}

#[tokio::test]
async fn send_apis_answer_like_meta_and_are_recorded() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "P");
    let ig = app.sim.link_instagram(&page.id, "p.ig");
    app.sim.add_instagram_user(&ig, "1780000000000042");
    let long = app.sim.issue_user_token(&user.id, PAGE_SCOPES, true);
    let page_token = app.page_tokens(&long).await[&page.id].clone();
    let waba = app.sim.add_waba("W");
    let phone = app.sim.add_phone_number(&waba.id, "15550001111", "W");
    let wa_token = app
        .sim
        .issue_system_user_token(&waba.id, &["whatsapp_business_messaging"]);
    // The Send APIs only reach people who wrote within the window (graph_send.rs covers it).
    let now = app.sim.now();
    for (object, customer) in [
        (page.id.as_str(), "6120000000000001"),
        (page.id.as_str(), "6120000000000002"),
        (ig.as_str(), "1780000000000001"),
        (ig.as_str(), "1780000000000042"),
        (phone.as_str(), "5511999990001"),
    ] {
        app.sim.customer_wrote(object, customer, now);
    }

    let messenger = json!({"recipient": {"id": "6120000000000001"}, "messaging_type": "RESPONSE",
                           "message": {"text": "Olá! 👋"}});
    let r = app
        .post(
            &format!("/{V}/me/messages"),
            &page_token,
            &[],
            Some(messenger.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mid = r.json()["message_id"].as_str().unwrap().to_owned();
    assert!(mid.starts_with("m_"));
    assert_eq!(r.json()["recipient_id"], "6120000000000001");

    // Form-encoded, on the Page id.
    let r = app
        .post(
            &format!("/{V}/{}/messages", page.id),
            &page_token,
            &[
                ("recipient", r#"{"id":"6120000000000002"}"#),
                ("message", r#"{"text":"form"}"#),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = app
        .post(
            &format!("/{V}/{ig}/messages"),
            &page_token,
            &[],
            Some(json!({"recipient": {"id": "1780000000000001"}, "message": {"text": "oi"}})),
        )
        .await;
    assert!(
        r.json()["message_id"].as_str().unwrap().starts_with("aWdf"),
        "{}",
        r.body
    );
    // /me/messages to a known IGSID goes out from the Instagram account.
    let r = app
        .post(
            &format!("/{V}/me/messages"),
            &page_token,
            &[],
            Some(json!({"recipient": {"id": "1780000000000042"}, "message": {"text": "ig"}})),
        )
        .await;
    assert!(
        r.json()["message_id"].as_str().unwrap().starts_with("aWdf"),
        "{}",
        r.body
    );

    let r = app
        .post(
            &format!("/{V}/{phone}/messages"),
            &wa_token,
            &[],
            Some(json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+55 11 99999-0001",
                        "type": "text", "text": {"body": "Pedido enviado"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["messaging_product"], "whatsapp");
    assert_eq!(
        v["contacts"],
        json!([{"input": "+55 11 99999-0001", "wa_id": "5511999990001"}])
    );
    let wamid = v["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."));

    // Refusals: a user token (210), no messaging_product (100), sender actions and read
    // receipts succeed without being messages.
    let r = app
        .post(&format!("/{V}/me/messages"), &long, &[], Some(messenger.clone()))
        .await;
    assert_eq!(r.error(), (210, None));
    let r = app
        .post(
            &format!("/{V}/{phone}/messages"),
            &wa_token,
            &[],
            Some(json!({"to": "1", "text": {"body": "x"}})),
        )
        .await;
    assert_eq!(r.error(), (100, None));
    let r = app
        .post(
            &format!("/{V}/me/messages"),
            &page_token,
            &[],
            Some(json!({"recipient": {"id": "6120000000000001"}, "sender_action": "typing_on"})),
        )
        .await;
    assert_eq!(r.json(), json!({"recipient_id": "6120000000000001"}));
    let r = app
        .post(
            &format!("/{V}/{phone}/messages"),
            &wa_token,
            &[],
            Some(json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid})),
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}));

    let sent = app.sim.sent_messages();
    let summary: Vec<(&str, &str)> = sent
        .iter()
        .map(|s| (s.sender_object_id.as_str(), s.recipient.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (page.id.as_str(), "6120000000000001"),
            (page.id.as_str(), "6120000000000002"),
            (ig.as_str(), "1780000000000001"),
            (ig.as_str(), "1780000000000042"),
            (phone.as_str(), "+55 11 99999-0001"),
        ]
    );
    assert_eq!(sent[0].body, messenger);
    assert_eq!(sent[0].message_id, mid);
    assert_eq!(sent[1].body["message"]["text"], "form");
    assert_eq!(sent[4].message_id, wamid);
}

#[tokio::test]
async fn error_envelope_and_headers_for_unknown_objects() {
    let app = GraphApp::empty().await;
    let user = app.sim.add_user("Ana", PAGE_SCOPES);
    let page = app.sim.add_page(&user.id, "P");
    let token = app.sim.issue_user_token(&user.id, &[], false);

    let r = app.get("/v23.0/4242424242", &token, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("facebook-api-version"), Some("v23.0"));
    assert!(r.header("x-fb-rev").is_some_and(|v| !v.is_empty()));
    let trace = r.header("x-fb-trace-id").unwrap().to_owned();
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], 100);
    assert_eq!(e["error_subcode"], 33);
    assert_eq!(e["type"], "GraphMethodException");
    assert_eq!(e["is_transient"], false);
    assert_eq!(e["fbtrace_id"], trace.as_str());
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Object with ID '4242424242' does not exist")
    );
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");

    let r = app
        .get(&format!("/{V}/{}", page.id), &token, &[("fields", "id,nope")])
        .await;
    assert_eq!(r.error(), (100, None));
    assert!(r.json()["error"].get("error_subcode").is_none());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nonexisting field (nope)")
    );
    let r = app.get(&format!("/{V}/{}/nope", page.id), &token, &[]).await;
    assert_eq!(r.error(), (100, None));
    let r = app.get(&format!("/{V}/{}/a/b", page.id), &token, &[]).await;
    assert_eq!(r.error(), (2500, None));
    let r = app.get(&format!("/{V}/{}", page.id), &token, &[]).await;
    assert_eq!(r.header("facebook-api-version"), Some(V));
    assert_eq!(r.json(), json!({"id": page.id, "name": "P"}));
    // The Page token requirement.
    let r = app
        .post(
            &format!("/{V}/{}/subscribed_apps", page.id),
            &token,
            &[("subscribed_fields", "feed")],
            None,
        )
        .await;
    assert_eq!(r.error(), (210, None));
}

#[tokio::test]
async fn demo_world_and_admin_surface() {
    let app = GraphApp::start(GraphSim::with_demo_world(config())).await;
    assert_eq!(app.sim.consenting_user_id(), DEMO_USER_ID);
    let user_token = app
        .login(
            "pages_show_list,pages_messaging,pages_manage_metadata,instagram_basic,instagram_manage_messages",
        )
        .await;
    let tokens = app.page_tokens(&user_token).await;
    assert_eq!(tokens.len(), 2);
    assert!(tokens.contains_key(DEMO_SECOND_PAGE_ID));
    let page_token = tokens[DEMO_PAGE_ID].clone();
    let r = app
        .get(
            &format!("/{V}/{DEMO_PAGE_ID}"),
            &user_token,
            &[("fields", "name,instagram_business_account{id,username}")],
        )
        .await;
    assert_eq!(r.json()["name"], DEMO_PAGE_NAME);
    assert_eq!(
        r.json()["instagram_business_account"],
        json!({"id": DEMO_IG_ACCOUNT_ID, "username": DEMO_IG_USERNAME})
    );
    let wa = app.sim.demo_system_user_token().unwrap();
    let r = app
        .get(&format!("/{V}/{DEMO_WABA_ID}/phone_numbers"), &wa, &[])
        .await;
    assert_eq!(r.json()["data"][0]["id"], DEMO_PHONE_NUMBER_ID);
    assert_eq!(
        r.json()["data"][0]["display_phone_number"],
        DEMO_DISPLAY_PHONE_NUMBER
    );

    // Steering over HTTP, as a separate process would.
    let admin = |path: &str, body: Value| {
        let req = app.http.post(format!("{}/_sim/{path}", app.base)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = admin(
        "throttle",
        json!({"object_id": DEMO_PAGE_ID, "code": 80006, "minutes_to_regain": 2, "calls": 1}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"success": true})));
    let r = app
        .post(
            &format!("/{V}/me/messages"),
            &page_token,
            &[],
            Some(json!({"recipient": {"id": "6120000000000001"}, "message": {"text": "hi"}})),
        )
        .await;
    assert_eq!(r.error(), (80006, None));
    assert_eq!(
        r.header_json("x-business-use-case-usage")[DEMO_PAGE_ID][0]["type"],
        "messenger"
    );

    admin("set_usage", json!({"call_count_pct": 55})).await;
    let r = app.get(&format!("/{V}/me"), &page_token, &[]).await;
    assert_eq!(r.header_json("x-app-usage")["call_count"], 55);

    let (s, v) = admin("nope", json!({})).await;
    assert_eq!(s, 404, "{v}");

    app.post(
        &format!("/{V}/{DEMO_PAGE_ID}/subscribed_apps"),
        &page_token,
        &[("subscribed_fields", "messages")],
        None,
    )
    .await;
    admin("drop_subscription", json!({"object_id": DEMO_PAGE_ID})).await;
    assert_eq!(app.sim.subscribed_fields(DEMO_PAGE_ID), None);

    admin(
        "revoke_scope",
        json!({"owner": user_token, "scope": "pages_messaging"}),
    )
    .await;
    assert!(!scopes_of(&app.debug_token(&page_token).await).contains(&"pages_messaging".to_owned()));

    let (_, v) = admin(
        "embedded_signup_code",
        json!({"waba_id": DEMO_WABA_ID, "scopes": ["whatsapp_business_messaging"]}),
    )
    .await;
    let r = app
        .exchange(&[
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("code", v["code"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (s, v) = admin("invalidate_token", json!({"token": page_token, "subcode": 467})).await;
    assert_eq!((s, v), (200, json!({"success": true})));
    assert_eq!(
        app.get(&format!("/{V}/me"), &page_token, &[]).await.error(),
        (190, Some(467))
    );
    let (s, _) = admin(
        "invalidate_token",
        json!({"token": "EAAGunknown", "subcode": 467}),
    )
    .await;
    assert_eq!(s, 404);

    let calls = app
        .http
        .get(format!("{}/_sim/calls", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(calls.contains("/me/accounts"));
    assert!(!calls.contains(&user_token) && !calls.contains(&page_token));
}

#[tokio::test]
async fn graph_command_serves_the_demo_world() {
    use scifer_meta_sim::app;
    use scifer_meta_sim::cli::{Command, GraphArgs};

    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cmd = Command::Graph(GraphArgs {
        addr,
        app_id: APP_ID.into(),
        app_secret: AppSecret::new(APP_SECRET),
    });
    let server = tokio::spawn(app::run(cmd, async move {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/{V}/debug_token");
    let query = [("input_token", "x".to_owned()), ("access_token", app_token())];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body: Value = loop {
        match http.get(&url).query(&query).send().await {
            Ok(r) => break r.json().await.unwrap(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("graph command never listened: {e}"),
        }
    };
    assert_eq!(body["data"]["is_valid"], false);
    stop.send(()).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    );
}
