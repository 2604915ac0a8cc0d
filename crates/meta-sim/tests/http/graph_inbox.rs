//! What the inbox needs besides sending: the Conversations API (backfill), media URLs, thread
//! control (Conversation Routing), and the `/_sim/` steering of these for a separate process.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use scifer_meta_sim::demo::{DEMO_IG_ACCOUNT_ID, DEMO_PAGE_ID, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID};
use scifer_meta_sim::graph::PAGE_INBOX_APP_ID;

use crate::graph_app::{APP_ID, APP_SECRET, SimApp, events_for};
use crate::helpers::Receiver;

/// A message id as a path segment (Instagram ids are standard base64: `/` and `+`).
fn seg(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F").replace('+', "%2B")
}

fn first_event(delivery: &Value) -> &Value {
    &delivery["entry"][0]["messaging"][0]
}

#[tokio::test]
async fn conversations_api_lists_messenger_threads_newest_first_with_paging() {
    let app = SimApp::start().await;
    let page = app.page_token.clone();
    let tick = || app.sim.advance_clock(Duration::from_secs(1));
    let (c1, c2, c3) = ("6100000000000301", "6100000000000302", "6100000000000303");
    app.sim.set_customer_name(c1, "Ana Souza");
    let hello1 = app.sim.inbound_text(DEMO_PAGE_ID, c1, "hello 1").to_value();
    let hello1_mid = first_event(&hello1)["message"]["mid"]
        .as_str()
        .unwrap()
        .to_owned();
    tick();
    let reply = app.reply(c1, "reply 1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply_mid = reply.json()["message_id"].as_str().unwrap().to_owned();
    tick();
    app.sim.inbound_text(DEMO_PAGE_ID, c2, "hello 2");
    tick();
    app.sim.inbound_text(DEMO_PAGE_ID, c3, "hello 3");
    tick();
    app.sim.inbound_text(DEMO_PAGE_ID, c3, "more 3");

    let fields = "participants,updated_time,messages{id,message,from,to,created_time}";
    let r = app
        .get(
            &format!("/{DEMO_PAGE_ID}/conversations"),
            &page,
            &[("platform", "messenger"), ("fields", fields), ("limit", "2")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let customer_of = |conv: &Value| conv["participants"]["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(customer_of(&data[0]), c3);
    assert_eq!(customer_of(&data[1]), c2);
    assert!(data[0]["id"].as_str().unwrap().starts_with("t_"));
    assert_eq!(data[0]["messages"]["data"][0]["message"], "more 3");
    assert_eq!(data[0]["participants"]["data"][1]["id"], DEMO_PAGE_ID);

    let next = v["paging"]["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with(&app.base), "{next}");
    let r = app.call(Method::GET, &next, Some(&page), &[], None).await;
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{v}");
    assert!(v["paging"].get("next").is_none());
    let conv = &data[0];
    assert_eq!(customer_of(conv), c1);
    assert_eq!(
        conv["participants"]["data"][0],
        json!({"name": "Ana Souza", "email": format!("{c1}@facebook.com"), "id": c1})
    );
    let msgs = conv["messages"]["data"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["id"], reply_mid.as_str());
    assert_eq!(msgs[0]["message"], "reply 1");
    assert_eq!(msgs[0]["from"]["id"], DEMO_PAGE_ID);
    assert_eq!(msgs[0]["to"]["data"][0]["id"], c1);
    assert_eq!(msgs[1]["id"], hello1_mid.as_str());
    assert_eq!(msgs[1]["from"]["id"], c1);
    let created = msgs[1]["created_time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%z").is_ok(),
        "{created}"
    );
    assert!(conv["updated_time"].as_str().unwrap() > created);

    let r = app
        .get(
            &format!("/{DEMO_PAGE_ID}/conversations"),
            &page,
            &[("user_id", c2), ("fields", "id")],
        )
        .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);

    let r = app
        .get(
            &format!("/{}", seg(&hello1_mid)),
            &page,
            &[("fields", "id,message,from,to,created_time,attachments")],
        )
        .await;
    let m = r.json();
    assert_eq!(m["message"], "hello 1", "{}", r.body);
    assert_eq!(m["from"]["name"], "Ana Souza");
    assert!(m.get("attachments").is_none(), "no attachments, no key");

    // Nothing on Instagram yet, and the WhatsApp token cannot read a Page's inbox.
    let r = app
        .get(
            &format!("/{DEMO_PAGE_ID}/conversations"),
            &page,
            &[("platform", "instagram")],
        )
        .await;
    assert_eq!(r.json(), json!({"data": []}));
    let wa = app.wa_token.clone();
    let r = app.get(&format!("/{DEMO_PAGE_ID}/conversations"), &wa, &[]).await;
    assert_eq!(r.error(), (100, Some(33)));
}

#[tokio::test]
async fn instagram_conversations_show_only_the_20_most_recent_messages() {
    let app = SimApp::start().await;
    let page = app.page_token.clone();
    let igsid = "1780000000000301";
    let mut mids = Vec::new();
    for i in 0..25 {
        let d = app
            .sim
            .inbound_text(DEMO_IG_ACCOUNT_ID, igsid, &format!("m{i}"))
            .to_value();
        assert_eq!(d["object"], "instagram");
        mids.push(first_event(&d)["message"]["mid"].as_str().unwrap().to_owned());
        app.sim.advance_clock(Duration::from_secs(1));
    }
    let r = app
        .get(
            &format!("/{DEMO_PAGE_ID}/conversations"),
            &page,
            &[
                ("platform", "instagram"),
                ("fields", "id,participants,messages{id,message}"),
            ],
        )
        .await;
    let v = r.json();
    let conv = &v["data"][0];
    let conv_id = conv["id"].as_str().unwrap().to_owned();
    assert!(conv_id.starts_with("aWdf"), "{conv_id}");
    assert_eq!(
        conv["participants"]["data"][1],
        json!({"username": "scifer.demo.bakery", "id": DEMO_IG_ACCOUNT_ID})
    );
    let msgs = conv["messages"]["data"].as_array().unwrap();
    assert_eq!(msgs.len(), 20);
    assert_eq!(msgs[0]["message"], "m24");
    assert_eq!(msgs[19]["message"], "m5");
    assert!(conv["messages"]["paging"].get("next").is_none());

    let r = app
        .get(
            &format!("/{conv_id}"),
            &page,
            &[("fields", "message_count,can_reply,updated_time")],
        )
        .await;
    let v = r.json();
    assert_eq!(
        (v["message_count"].clone(), v["can_reply"].clone()),
        (json!(25), json!(true)),
        "{v}"
    );

    // The conversation's messages edge pages through the same 20.
    let mut seen = Vec::new();
    let mut r = app
        .get(
            &format!("/{conv_id}/messages"),
            &page,
            &[("fields", "message"), ("limit", "8")],
        )
        .await;
    loop {
        let v = r.json();
        seen.extend(v["data"].as_array().unwrap().iter().map(|m| m["message"].clone()));
        let Some(next) = v["paging"]["next"].as_str() else {
            break;
        };
        r = app.call(Method::GET, next, Some(&page), &[], None).await;
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[8], "m16");

    let r = app
        .get(
            &format!("/{}", seg(&mids[24])),
            &page,
            &[("fields", "message,from")],
        )
        .await;
    assert_eq!(
        r.json()["from"],
        json!({"username": igsid, "id": igsid}),
        "{}",
        r.body
    );
    let r = app
        .get(&format!("/{}", seg(&mids[0])), &page, &[("fields", "message")])
        .await;
    assert_eq!(r.error(), (100, Some(33)), "older than the 20 most recent");
}

#[tokio::test]
async fn attachment_urls_expire_on_the_simulated_clock() {
    let app = SimApp::start().await;
    let bytes = b"\x89PNG fake image".to_vec();
    let url = app.sim.media_url(bytes.clone(), "image/png");
    assert!(url.starts_with(&app.base), "{url}");
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);

    // An inbound attachment carries such a URL.
    let d = app
        .sim
        .inbound_media(DEMO_PAGE_ID, "6100000000000401", b"video".to_vec(), "video/mp4")
        .to_value();
    let att = &first_event(&d)["message"]["attachments"][0];
    assert_eq!(att["type"], "video");
    let inbound_url = att["payload"]["url"].as_str().unwrap().to_owned();
    assert_eq!(app.http.get(&inbound_url).send().await.unwrap().status(), 200);

    app.sim.advance_clock(Duration::from_secs(301));
    for u in [&url, &inbound_url] {
        assert_eq!(app.http.get(u).send().await.unwrap().status(), 403, "{u}");
    }
    let unknown = format!("{}/_media/nope", app.base);
    assert_eq!(app.http.get(&unknown).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn whatsapp_media_lookup_and_download_need_the_wabas_token() {
    let app = SimApp::start().await;
    let wa = app.wa_token.clone();
    let bytes = b"OggS voice note".to_vec();
    let media_id = app
        .sim
        .add_whatsapp_media(DEMO_PHONE_NUMBER_ID, bytes.clone(), "audio/ogg");
    let r = app.get(&format!("/{media_id}"), &wa, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    assert_eq!(v["messaging_product"], "whatsapp");
    assert_eq!(v["mime_type"], "audio/ogg");
    assert_eq!(v["sha256"], digest);
    assert_eq!(v["file_size"], bytes.len());
    assert_eq!(v["id"], media_id.as_str());
    let url = v["url"].as_str().unwrap().to_owned();

    let other_waba = app.sim.add_waba("Other");
    let other = app
        .sim
        .issue_system_user_token(&other_waba.id, &["whatsapp_business_messaging"]);
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 401);
    let r = app.http.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app.http.get(&url).bearer_auth(&wa).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(
        app.get(&format!("/{media_id}"), &other, &[]).await.error(),
        (100, Some(33))
    );

    // ~5 minutes later the URL is dead; asking again gives a fresh one.
    app.sim.advance_clock(Duration::from_secs(6 * 60));
    let r = app.http.get(&url).bearer_auth(&wa).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let fresh = app.get(&format!("/{media_id}"), &wa, &[]).await.json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, url);
    assert_eq!(
        app.http
            .get(&fresh)
            .bearer_auth(&wa)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Media a customer sends arrives as an id that resolves the same way.
    let d = app
        .sim
        .inbound_media(
            DEMO_PHONE_NUMBER_ID,
            "5511999990401",
            b"jpeg".to_vec(),
            "image/jpeg",
        )
        .to_value();
    let msg = &d["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(msg["type"], "image");
    let id = msg["image"]["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/{id}"), &wa, &[]).await.json()["file_size"], 4);
}

#[tokio::test]
async fn thread_control_decides_who_may_send_and_where_messages_arrive() {
    let app = SimApp::start().await;
    let page = app.page_token.clone();
    let psid = "6100000000000501";
    app.sim.customer_wrote(DEMO_PAGE_ID, psid, Utc::now());
    let (app_ref, page_ref) = (&app, &page);
    let owner = move || async move {
        app_ref
            .get("/me/thread_owner", page_ref, &[("recipient", psid)])
            .await
            .json()
    };
    assert_eq!(owner().await, json!({"data": []}), "idle");

    let r = app
        .post(
            "/me/pass_thread_control",
            &page,
            json!({"recipient": {"id": psid}, "target_app_id": PAGE_INBOX_APP_ID, "metadata": "human please"}),
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}), "{}", r.body);
    assert_eq!(
        owner().await,
        json!({"data": [{"thread_owner": {"app_id": PAGE_INBOX_APP_ID}}]})
    );
    assert_eq!(app.reply(psid, "bot here").await.error(), (10, Some(2_018_300)));
    let d = app.sim.inbound_text(DEMO_PAGE_ID, psid, "anyone?").to_value();
    assert!(d["entry"][0].get("messaging").is_none(), "{d}");
    assert_eq!(d["entry"][0]["standby"][0]["message"]["text"], "anyone?");
    let r = app
        .post(
            "/me/release_thread_control",
            &page,
            json!({"recipient": {"id": psid}}),
        )
        .await;
    assert_eq!(r.error(), (10, Some(2_018_300)), "only the owner releases");

    // The Page Inbox hands the thread back: we are told, and may send again.
    app.sim
        .pass_thread_control_as(PAGE_INBOX_APP_ID, DEMO_PAGE_ID, psid, APP_ID, Some("back to bot"));
    assert_eq!(app.sim.thread_owner(DEMO_PAGE_ID, psid).as_deref(), Some(APP_ID));
    assert_eq!(app.reply(psid, "bot again").await.status, 200);
    let d = app.sim.inbound_text(DEMO_PAGE_ID, psid, "thanks").to_value();
    assert_eq!(first_event(&d)["message"]["text"], "thanks");

    // It takes the thread away: we are told again.
    app.sim
        .take_thread_control_as(PAGE_INBOX_APP_ID, DEMO_PAGE_ID, psid, Some("agent took over"));
    let r = app
        .post(
            "/me/take_thread_control",
            &page,
            json!({"recipient": {"id": psid}}),
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}));
    let r = app
        .post(
            "/me/release_thread_control",
            &page,
            json!({"recipient": {"id": psid}}),
        )
        .await;
    assert_eq!(r.json(), json!({"success": true}));
    assert_eq!(owner().await, json!({"data": []}));
    let r = app
        .post(
            "/me/pass_thread_control",
            &page,
            json!({"recipient": {"id": psid}}),
        )
        .await;
    assert_eq!(r.error(), (100, None), "target_app_id is required");

    let hooks = app.settled_webhooks().await;
    let handovers: Vec<Value> = events_for(&hooks, psid)
        .into_iter()
        .filter(|e| e.get("pass_thread_control").is_some() || e.get("take_thread_control").is_some())
        .collect();
    assert_eq!(
        handovers.len(),
        2,
        "our own moves notify other apps, not us: {handovers:?}"
    );
    assert_eq!(
        handovers[0]["pass_thread_control"],
        json!({"previous_owner_app_id": PAGE_INBOX_APP_ID, "new_owner_app_id": APP_ID, "metadata": "back to bot"})
    );
    assert_eq!(
        handovers[1]["take_thread_control"],
        json!({"previous_owner_app_id": APP_ID, "new_owner_app_id": PAGE_INBOX_APP_ID, "metadata": "agent took over"})
    );
    assert!(
        app.sim
            .emitted_webhooks()
            .iter()
            .any(|e| e.field == "messaging_handovers")
    );

    // Our accepted calls are on record (refused ones and other apps' moves are not).
    let recorded: Vec<(String, Option<String>, Option<String>)> = app
        .sim
        .thread_control_calls()
        .into_iter()
        .inspect(|c| assert_eq!((c.page_id.as_str(), c.recipient.as_str()), (DEMO_PAGE_ID, psid)))
        .map(|c| (c.action, c.target_app_id, c.metadata))
        .collect();
    assert_eq!(
        recorded,
        vec![
            (
                "pass_thread_control".to_owned(),
                Some(PAGE_INBOX_APP_ID.to_owned()),
                Some("human please".to_owned())
            ),
            ("take_thread_control".to_owned(), None, None),
            ("release_thread_control".to_owned(), None, None),
        ]
    );
}

#[tokio::test]
async fn admin_mirrors_steer_a_simulator_in_another_process() {
    let app = SimApp::start().await;
    let other = Receiver::ok().await;
    let admin = |path: &str, body: Value| {
        let req = app.http.post(format!("{}/_sim/{path}", app.base)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let ok = json!({"success": true});
    assert_eq!(
        admin(
            "set_webhook_target",
            json!({"url": other.url, "app_secret": APP_SECRET})
        )
        .await,
        (200, ok.clone())
    );
    let psid = "6100000000000601";
    let (s, _) = admin(
        "customer_wrote",
        json!({"object_id": DEMO_PAGE_ID, "customer_id": psid, "message_id": "m_admin1", "text": "hi there"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(app.reply(psid, "hello!").await.status, 200);
    let page = app.page_token.clone();
    assert_eq!(
        app.get("/m_admin1", &page, &[("fields", "message")]).await.json()["message"],
        "hi there"
    );
    let two_days_ago = (Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    admin(
        "customer_wrote",
        json!({"object_id": DEMO_PAGE_ID, "customer_id": "6100000000000602", "at": two_days_ago}),
    )
    .await;
    assert_eq!(
        app.reply("6100000000000602", "late").await.error(),
        (10, Some(2_018_278))
    );
    let (s, _) = admin("customer_wrote", json!({"object_id": "404", "customer_id": "x"})).await;
    assert_eq!(s, 404);

    let (s, v) = admin(
        "add_template",
        json!({"waba_id": DEMO_WABA_ID, "name": "receipt", "language": "pt_BR",
               "category": "UTILITY", "status": "PENDING", "body_params": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin(
            "set_template_status",
            json!({"template_id": id, "status": "REJECTED", "reason": "INVALID_FORMAT"})
        )
        .await,
        (200, ok.clone())
    );
    let (s, v) = admin(
        "inbound_text",
        json!({"object_id": DEMO_PAGE_ID, "customer_id": psid, "text": "via admin"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(first_event(&v["delivery"])["message"]["text"], "via admin");

    tokio::time::timeout(Duration::from_secs(10), app.sim.webhooks_settled())
        .await
        .unwrap();
    let bodies: Vec<Value> = other.requests().iter().map(|r| r.json()).collect();
    let rejected = bodies
        .iter()
        .find(|b| b["entry"][0]["changes"][0]["field"] == "message_template_status_update")
        .expect("status update at the new target");
    assert_eq!(
        rejected["entry"][0]["changes"][0]["value"]["reason"],
        "INVALID_FORMAT"
    );
    assert_eq!(rejected["entry"][0]["changes"][0]["value"]["event"], "REJECTED");
    assert!(
        bodies
            .iter()
            .any(|b| first_event(b)["message"]["text"] == "via admin")
    );
    let emitted: Value = app
        .http
        .get(format!("{}/_sim/emitted_webhooks", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields: Vec<&str> = emitted
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["message_echoes", "message_template_status_update", "messages"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
}

#[tokio::test]
async fn demo_traffic_teaches_the_graph_side_who_wrote() {
    use scifer_meta_sim::AppSecret;
    use scifer_meta_sim::demo::{self, DEMO_CUSTOMERS, DemoConfig};

    let app = SimApp::start().await;
    let rx = Receiver::ok().await;
    let mut config = DemoConfig::new(rx.url.clone(), AppSecret::new(APP_SECRET));
    config.interval = Duration::ZERO;
    // Scene 0: a Messenger customer writes, the reply is echoed, delivered and read.
    config.count = Some(4);
    config.graph = Some(app.sim.clone());
    demo::run_demo(config, std::future::pending()).await.unwrap();
    let ana = &DEMO_CUSTOMERS[0];
    let page = app.page_token.clone();
    let r = app
        .get(
            &format!("/{DEMO_PAGE_ID}/conversations"),
            &page,
            &[("user_id", ana.psid), ("fields", "messages{message,from}")],
        )
        .await;
    let msgs = r.json()["data"][0]["messages"]["data"].clone();
    assert_eq!(
        msgs.as_array().map(Vec::len),
        Some(1),
        "echoes are not customer messages: {msgs}"
    );
    assert_eq!(msgs[0]["message"], ana.lines[0]);
    assert_eq!(msgs[0]["from"]["id"], ana.psid);
}
