//! The Send APIs' messaging windows (meta-platform.md §3.2–§3.4), the webhooks that follow a
//! send, and WhatsApp templates, against the simulator on a real port with a real receiver.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use scifer_meta_sim::AppSecret;
use scifer_meta_sim::demo::{DEMO_IG_ACCOUNT_ID, DEMO_PAGE_ID, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID};
use scifer_meta_sim::graph::{
    RecipientBehaviour, TemplateCategory, TemplateStatus, UnknownRecipients, WebhookTiming,
    WhatsAppReengagement,
};
use scifer_meta_sim::webhooks::RetryPolicy;

use crate::graph_app::{APP_ID, SimApp, events_for, statuses_of};
use crate::helpers::{Receiver, Reply};

const HOUR: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ch {
    Messenger,
    Instagram,
    WhatsApp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200 (WhatsApp: followed by a `sent` status).
    Ok,
    /// A synchronous Graph error `(code, subcode)`.
    Err(u64, Option<u64>),
    /// WhatsApp: 200, then a `failed` status with 131047.
    AsyncFail,
}

fn order_update(language: &str, params: usize) -> Value {
    let parameters: Vec<Value> = (0..params)
        .map(|i| json!({"type": "text", "text": format!("#{i}")}))
        .collect();
    json!({"name": "order_update", "language": {"code": language},
           "components": [{"type": "body", "parameters": parameters}]})
}

fn whatsapp_body(to: &str, kind: &str) -> Value {
    match kind {
        "template" => json!({"messaging_product": "whatsapp", "to": to, "type": "template",
                             "template": order_update("en_US", 1)}),
        _ => {
            json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "Your order shipped."}})
        }
    }
}

fn messenger_body(to: &str, kind: &str) -> Value {
    let mut b = json!({"recipient": {"id": to}, "message": {"text": "Hello"}});
    match kind {
        "RESPONSE" | "UPDATE" => b["messaging_type"] = kind.into(),
        "HUMAN_AGENT" => {
            b["messaging_type"] = "MESSAGE_TAG".into();
            b["tag"] = "HUMAN_AGENT".into();
        }
        _ => {
            b["messaging_type"] = "MESSAGE_TAG".into();
            b["tag"] = kind.into();
        }
    }
    b
}

#[tokio::test]
async fn messaging_windows_table() {
    let app = SimApp::start().await;
    let now = Utc::now();
    let ages = [
        ("inside 24h", HOUR),
        ("24h-7d", 3 * 24 * HOUR),
        ("after 7d", 8 * 24 * HOUR),
    ];
    const M: u64 = 2_018_278;
    const IG: u64 = 2_534_022;
    let kinds = ["RESPONSE", "UPDATE", "HUMAN_AGENT", "POST_PURCHASE_UPDATE"];
    let mut cases: Vec<(Ch, usize, &str, Expect)> = Vec::new();
    for (ch, sub) in [(Ch::Messenger, M), (Ch::Instagram, IG)] {
        let out = Expect::Err(10, Some(sub));
        let table = [
            [Expect::Ok, Expect::Ok, Expect::Ok, Expect::Err(100, None)],
            [out, out, Expect::Ok, Expect::Err(100, None)],
            [out, out, out, Expect::Err(100, None)],
        ];
        for (age, row) in table.iter().enumerate() {
            for (kind, want) in kinds.iter().zip(row) {
                cases.push((ch, age, kind, *want));
            }
        }
    }
    for (age, text) in [(0, Expect::Ok), (1, Expect::AsyncFail), (2, Expect::AsyncFail)] {
        cases.push((Ch::WhatsApp, age, "text", text));
        cases.push((Ch::WhatsApp, age, "template", Expect::Ok));
    }

    let mut whatsapp_outcomes = Vec::new();
    for (i, (ch, age, kind, want)) in cases.iter().enumerate() {
        let (label, secs) = ages[*age];
        let wrote = now - chrono::Duration::seconds(secs);
        let customer = match ch {
            Ch::Messenger => format!("61{i:014}"),
            Ch::Instagram => format!("17{i:014}"),
            Ch::WhatsApp => format!("5511{i:09}"),
        };
        let object = match ch {
            Ch::Messenger => DEMO_PAGE_ID,
            Ch::Instagram => DEMO_IG_ACCOUNT_ID,
            Ch::WhatsApp => DEMO_PHONE_NUMBER_ID,
        };
        app.sim.customer_wrote(object, &customer, wrote);
        let r = match ch {
            Ch::WhatsApp => {
                app.send_whatsapp(DEMO_PHONE_NUMBER_ID, whatsapp_body(&customer, kind))
                    .await
            }
            _ => app.send_messenger(messenger_body(&customer, kind)).await,
        };
        let what = format!("{ch:?} {label} {kind}: {}", r.body);
        match want {
            Expect::Ok | Expect::AsyncFail => {
                assert_eq!(r.status, 200, "{what}");
                if *ch == Ch::Instagram {
                    assert!(
                        r.json()["message_id"].as_str().unwrap().starts_with("aWdf"),
                        "{what}"
                    );
                }
                if *ch == Ch::WhatsApp {
                    let m = &r.json()["messages"][0];
                    let accepted = m.get("message_status").map(|s| s == "accepted");
                    assert_eq!(accepted, (*kind == "template").then_some(true), "{what}");
                    whatsapp_outcomes.push((m["id"].as_str().unwrap().to_owned(), *want, what));
                }
            }
            Expect::Err(code, sub) => assert_eq!(r.error(), (*code, *sub), "{what}"),
        }
    }

    let hooks = app.settled_webhooks().await;
    for (wamid, want, what) in whatsapp_outcomes {
        let statuses = statuses_of(&hooks, &wamid);
        match want {
            Expect::AsyncFail => {
                assert_eq!(statuses.len(), 1, "{what}");
                assert_eq!(statuses[0]["status"], "failed", "{what}");
                assert_eq!(statuses[0]["errors"][0]["code"], 131_047, "{what}");
            }
            _ => assert_eq!(statuses[0]["status"], "sent", "{what}"),
        }
    }
}

#[tokio::test]
async fn never_seen_recipients_ad_windows_and_the_demo_policy() {
    let app = SimApp::start().await;
    let r = app.reply("6199999999999999", "hi").await;
    assert_eq!(r.error(), (100, Some(2_018_001)));
    assert!(
        app.sim.sent_messages().is_empty(),
        "refused sends are not recorded"
    );

    // A click-to-Messenger ad keeps the window open for 7 days.
    let four_days_ago = Utc::now() - chrono::Duration::days(4);
    app.sim
        .customer_wrote_via_ad(DEMO_PAGE_ID, "6100000000000077", four_days_ago);
    app.sim
        .customer_wrote(DEMO_PAGE_ID, "6100000000000078", four_days_ago);
    assert_eq!(app.reply("6100000000000077", "still open").await.status, 200);
    assert_eq!(
        app.reply("6100000000000078", "closed").await.error(),
        (10, Some(2_018_278))
    );
    // The simulated clock closes windows too.
    app.sim.advance_clock(Duration::from_secs(4 * 24 * 3600));
    assert_eq!(
        app.reply("6100000000000077", "now closed").await.error(),
        (10, Some(2_018_278))
    );

    // The demo world's default: people nobody heard of are inside the window.
    app.sim.set_unknown_recipients(UnknownRecipients::InWindow);
    assert_eq!(app.reply("6199999999999999", "hi").await.status, 200);
}

#[tokio::test]
async fn messenger_send_is_followed_by_echo_delivery_and_read_in_order() {
    let app = SimApp::start().await;
    let psid = "6100000000000100";
    app.sim.customer_wrote(DEMO_PAGE_ID, psid, app.sim.now());
    let r = app
        .send_messenger(json!({"recipient": {"id": psid}, "messaging_type": "RESPONSE",
                               "message": {"text": "Yes, it is.", "metadata": "ticket-42"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mid = r.json()["message_id"].as_str().unwrap().to_owned();

    let hooks = app.settled_webhooks().await;
    assert_eq!(hooks.len(), 3, "{hooks:?}");
    assert!(
        hooks
            .iter()
            .all(|h| h["object"] == "page" && h["entry"][0]["id"] == DEMO_PAGE_ID)
    );
    let events = events_for(&hooks, psid);
    let echo = &events[0];
    assert_eq!(echo["sender"]["id"], DEMO_PAGE_ID);
    assert_eq!(echo["recipient"]["id"], psid);
    assert_eq!(
        echo["message"],
        json!({"mid": mid, "is_echo": true, "app_id": APP_ID.parse::<u64>().unwrap(),
               "metadata": "ticket-42", "text": "Yes, it is."})
    );
    assert_eq!(events[1]["delivery"]["mids"], json!([mid]));
    let delivered_at = events[1]["delivery"]["watermark"].as_i64().unwrap();
    assert!(delivered_at >= echo["timestamp"].as_i64().unwrap());
    assert!(events[2]["read"]["watermark"].as_i64().unwrap() >= delivered_at);
    assert_eq!(events[1]["sender"]["id"], psid, "receipts come from the customer");

    let fields: Vec<String> = app.sim.emitted_webhooks().into_iter().map(|e| e.field).collect();
    assert_eq!(fields, ["message_echoes", "message_deliveries", "message_reads"]);
    assert!(app.sim.emitted_webhooks().iter().all(|e| e.status == Some(200)));
}

#[tokio::test]
async fn instagram_send_is_followed_by_echo_and_seen() {
    let app = SimApp::start().await;
    let igsid = "1780000000000100";
    app.sim.customer_wrote(DEMO_IG_ACCOUNT_ID, igsid, app.sim.now());
    let r = app.reply(igsid, "oi").await;
    let mid = r.json()["message_id"].as_str().unwrap().to_owned();
    let hooks = app.settled_webhooks().await;
    assert!(hooks.iter().all(|h| h["object"] == "instagram"));
    let events = events_for(&hooks, igsid);
    assert_eq!(events.len(), 2, "no delivery receipts on Instagram: {events:?}");
    assert_eq!(events[0]["message"]["is_echo"], true);
    assert_eq!(events[0]["message"]["mid"], mid.as_str());
    assert_eq!(events[1]["read"], json!({"mid": mid}));
    let fields: Vec<String> = app.sim.emitted_webhooks().into_iter().map(|e| e.field).collect();
    assert_eq!(fields, ["messages", "messaging_seen"]);
}

#[tokio::test]
async fn the_http_answer_never_waits_for_the_webhooks() {
    let app = SimApp::start().await;
    // A receiver that takes 3 s per webhook, reached without any delay.
    let slow = Receiver::start(
        vec![
            Reply {
                status: 200,
                delay: Duration::from_secs(3),
            };
            3
        ],
        1 << 20,
    )
    .await;
    app.sim
        .set_webhook_target(slow.url.clone(), AppSecret::new("x"))
        .unwrap();
    app.sim.set_webhook_timing(WebhookTiming {
        first: Duration::ZERO,
        between: Duration::ZERO,
        retry: RetryPolicy::none(),
    });
    app.sim
        .customer_wrote(DEMO_PAGE_ID, "6100000000000200", app.sim.now());
    let started = Instant::now();
    let r = app.reply("6100000000000200", "quick").await;
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The echo is on its way meanwhile.
    slow.wait_for(1).await;
}

#[tokio::test]
async fn whatsapp_statuses_follow_a_send_with_callback_data_and_can_stop_at_sent() {
    let app = SimApp::start().await;
    let (ana, bea) = ("5511999990100", "5511999990101");
    for c in [ana, bea] {
        app.sim.customer_wrote(DEMO_PHONE_NUMBER_ID, c, app.sim.now());
    }
    app.sim.set_recipient_behaviour(
        bea,
        RecipientBehaviour {
            delivers: false,
            reads: false,
        },
    );
    let mut wamids = Vec::new();
    for c in [ana, bea] {
        let mut body = whatsapp_body(c, "text");
        body["biz_opaque_callback_data"] = "order-77".into();
        let r = app.send_whatsapp(DEMO_PHONE_NUMBER_ID, body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        wamids.push(r.json()["messages"][0]["id"].as_str().unwrap().to_owned());
    }
    let hooks = app.settled_webhooks().await;
    let ana_statuses = statuses_of(&hooks, &wamids[0]);
    let kinds: Vec<&str> = ana_statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sent", "delivered", "read"]);
    for s in &ana_statuses {
        assert_eq!(s["biz_opaque_callback_data"], "order-77");
        assert_eq!(s["recipient_id"], ana);
        assert_eq!(s["pricing"]["type"], "free_customer_service");
    }
    let change = &hooks[0]["entry"][0]["changes"][0];
    assert_eq!(hooks[0]["entry"][0]["id"], DEMO_WABA_ID);
    assert_eq!(
        change["value"]["metadata"]["phone_number_id"],
        DEMO_PHONE_NUMBER_ID
    );
    let bea_statuses = statuses_of(&hooks, &wamids[1]);
    assert_eq!(bea_statuses.len(), 1, "left at sent: {bea_statuses:?}");
    assert_eq!(bea_statuses[0]["status"], "sent");
}

#[tokio::test]
async fn whatsapp_outside_the_window_fails_async_by_default_and_sync_when_asked() {
    let app = SimApp::start().await;
    let ana = "5511999990200";
    app.sim.customer_wrote(
        DEMO_PHONE_NUMBER_ID,
        ana,
        Utc::now() - chrono::Duration::hours(30),
    );
    let mut body = whatsapp_body(ana, "text");
    body["biz_opaque_callback_data"] = "order-78".into();
    let r = app.send_whatsapp(DEMO_PHONE_NUMBER_ID, body.clone()).await;
    assert_eq!(r.status, 200, "accepted first: {}", r.body);
    let wamid = r.json()["messages"][0]["id"].as_str().unwrap().to_owned();
    let hooks = app.settled_webhooks().await;
    let statuses = statuses_of(&hooks, &wamid);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let failed = &statuses[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["biz_opaque_callback_data"], "order-78");
    let err = &failed["errors"][0];
    assert_eq!(err["code"], 131_047);
    assert_eq!(err["title"], "Re-engagement message");
    assert!(err["message"].is_string());
    assert!(
        err["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("24 hours")
    );

    app.sim.set_whatsapp_reengagement(WhatsAppReengagement::Sync);
    let r = app.send_whatsapp(DEMO_PHONE_NUMBER_ID, body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), (131_047, None));
    assert_eq!(r.json()["error"]["error_data"]["messaging_product"], "whatsapp");
    // A template still goes out, billed as utility outside the window.
    let r = app
        .send_whatsapp(DEMO_PHONE_NUMBER_ID, whatsapp_body(ana, "template"))
        .await;
    assert_eq!(r.json()["messages"][0]["message_status"], "accepted");
    let wamid = r.json()["messages"][0]["id"].as_str().unwrap().to_owned();
    let hooks = app.settled_webhooks().await;
    let sent = &statuses_of(&hooks, &wamid)[0];
    assert_eq!(
        sent["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"})
    );
}

#[tokio::test]
async fn templates_endpoint_sends_and_status_update_webhook() {
    let app = SimApp::start().await;
    let wa = app.wa_token.clone();
    let r = app
        .get(&format!("/{DEMO_WABA_ID}/message_templates"), &wa, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].as_array().unwrap().clone();
    let names: Vec<(&str, &str)> = data
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("order_update", "APPROVED"),
            ("hello_world", "APPROVED"),
            ("spring_sale", "PENDING")
        ]
    );
    let order = &data[0];
    assert_eq!(order["language"], "en_US");
    assert_eq!(order["category"], "UTILITY");
    assert_eq!(order["components"][0]["type"], "BODY");
    assert!(order["components"][0]["text"].as_str().unwrap().contains("{{1}}"));
    assert!(order["id"].is_string());

    // Paging and filters.
    let r = app
        .get(
            &format!("/{DEMO_WABA_ID}/message_templates"),
            &wa,
            &[("fields", "name,status"), ("limit", "2")],
        )
        .await;
    let page1 = r.json();
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert!(page1["data"][0].get("components").is_none());
    let after = page1["paging"]["cursors"]["after"].as_str().unwrap().to_owned();
    assert!(page1["paging"]["next"].as_str().unwrap().contains("after="));
    let r = app
        .get(
            &format!("/{DEMO_WABA_ID}/message_templates"),
            &wa,
            &[("fields", "name"), ("limit", "2"), ("after", &after)],
        )
        .await;
    assert_eq!(
        r.json()["data"],
        json!([{"name": "spring_sale", "id": data[2]["id"]}])
    );
    let r = app
        .get(
            &format!("/{DEMO_WABA_ID}/message_templates"),
            &wa,
            &[("status", "PENDING")],
        )
        .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);

    // Sends: only approved templates in their language with the right parameters.
    let paused = app.sim.add_template(
        DEMO_WABA_ID,
        "paused_one",
        "en_US",
        TemplateCategory::Marketing,
        TemplateStatus::Paused,
        0,
    );
    app.sim.add_template(
        DEMO_WABA_ID,
        "disabled_one",
        "en_US",
        TemplateCategory::Marketing,
        TemplateStatus::Disabled,
        0,
    );
    let send = |template: Value| {
        app.send_whatsapp(
            DEMO_PHONE_NUMBER_ID,
            json!({"messaging_product": "whatsapp", "to": "5511999990300", "type": "template", "template": template}),
        )
    };
    let named = |name: &str| json!({"name": name, "language": {"code": "en_US"}});
    assert_eq!(send(order_update("en_US", 1)).await.status, 200);
    assert_eq!(
        send(named("hello_world")).await.json()["messages"][0]["message_status"],
        "accepted"
    );
    let r = send(order_update("pt_BR", 1)).await;
    assert_eq!(r.error(), (132_001, None));
    assert!(
        r.json()["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("pt_BR")
    );
    assert_eq!(send(order_update("en_US", 2)).await.error(), (132_000, None));
    assert_eq!(send(named("spring_sale")).await.error(), (132_001, None));
    assert_eq!(send(named("paused_one")).await.error(), (132_015, None));
    assert_eq!(send(named("disabled_one")).await.error(), (132_016, None));
    assert_eq!(send(named("no_such_template")).await.error(), (132_001, None));

    // Review finishes: the WABA hears of it.
    app.settled_webhooks().await;
    let before = app.receiver.requests().len();
    app.sim
        .set_template_status(&paused, TemplateStatus::Approved, None);
    assert_eq!(send(named("paused_one")).await.status, 200);
    let hooks = app.settled_webhooks().await;
    let update = hooks[before..]
        .iter()
        .find(|h| h["entry"][0]["changes"][0]["field"] == "message_template_status_update")
        .expect("a template status webhook");
    assert_eq!(update["object"], "whatsapp_business_account");
    assert_eq!(update["entry"][0]["id"], DEMO_WABA_ID);
    let value = &update["entry"][0]["changes"][0]["value"];
    assert_eq!(value["event"], "APPROVED");
    assert_eq!(value["message_template_id"], paused.parse::<u64>().unwrap());
    assert_eq!(value["message_template_name"], "paused_one");
    assert_eq!(value["message_template_language"], "en_US");
    assert_eq!(value["reason"], "NONE");
}
