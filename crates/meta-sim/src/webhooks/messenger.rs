//! Messenger (`object = page`) deliveries: `entry[].messaging[]` with millisecond timestamps.
//!
//! Every function takes the Page id and the customer's PSID and returns a [`MessagingEvent`]
//! whose ids are fresh unless pinned with its setters.

use serde_json::{Map, Value, json};

use super::messaging::{self as m, Platform};
pub use super::messaging::{AttachmentKind, Handover, MessagingEvent, Reaction};

const P: Platform = Platform::Messenger;

/// A text message from the customer.
pub fn text(page_id: &str, psid: &str, text: &str) -> MessagingEvent {
    m::text(P, page_id, psid, text)
}

/// An image/video/audio/file attachment from the customer.
pub fn attachment(page_id: &str, psid: &str, kind: AttachmentKind, url: &str) -> MessagingEvent {
    m::attachment(P, page_id, psid, kind, url)
}

/// A sticker (since June 2026 a `sticker` attachment with `payload.sticker_id`). With
/// `with_image_copy`, also add the `image` attachment Meta sent during the 90-day transition.
pub fn sticker(page_id: &str, psid: &str, sticker_id: u64, with_image_copy: bool) -> MessagingEvent {
    let mut attachments = Vec::new();
    if with_image_copy {
        attachments.push(json!({
            "type": "image",
            "payload": { "url": format!("https://scontent.xx.fbcdn.net/v/sticker/{sticker_id}.png"), "sticker_id": sticker_id }
        }));
    }
    attachments.push(json!({ "type": "sticker", "payload": { "sticker_id": sticker_id } }));
    let mut body = Map::new();
    body.insert("attachments".into(), Value::Array(attachments));
    m::message(P, page_id, psid, body)
}

/// A quick-reply tap: the button's title as `text` plus `quick_reply.payload`.
pub fn quick_reply(page_id: &str, psid: &str, title: &str, payload: &str) -> MessagingEvent {
    let mut body = Map::new();
    body.insert("text".into(), json!(title));
    body.insert("quick_reply".into(), json!({ "payload": payload }));
    m::message(P, page_id, psid, body)
}

/// A postback (button or Get Started tap); carries a `mid` since v11.0.
pub fn postback(page_id: &str, psid: &str, title: &str, payload: &str) -> MessagingEvent {
    let body = json!({ "mid": P.new_mid(page_id), "title": title, "payload": payload });
    MessagingEvent::new(P, page_id, psid, true, "postback", body)
}

/// A reaction to message `target_mid`.
pub fn reaction(page_id: &str, psid: &str, target_mid: &str, reaction: &Reaction) -> MessagingEvent {
    m::reaction(P, page_id, psid, target_mid, reaction)
}

/// A customer edited message `mid` (`message_edit`).
pub fn edit(page_id: &str, psid: &str, mid: &str, new_text: &str, num_edit: u32) -> MessagingEvent {
    let body = json!({ "mid": mid, "text": new_text, "num_edit": num_edit });
    MessagingEvent::new(P, page_id, psid, true, "message_edit", body)
}

/// The echo of a message the Page sent: sender is the Page, `is_echo`, `app_id` of the sending
/// app, and `metadata` when the Send API call carried one.
pub fn echo(page_id: &str, psid: &str, app_id: u64, text: &str, metadata: Option<&str>) -> MessagingEvent {
    let e = m::echo(P, page_id, psid, app_id, text);
    match metadata {
        Some(md) => e.field("metadata", json!(md)),
        None => e,
    }
}

/// Delivery receipt: every message before `watermark` (ms) was delivered; `mids` may be empty,
/// in which case the key is omitted as Meta sometimes does.
pub fn delivery(page_id: &str, psid: &str, mids: &[String], watermark_ms: i64) -> MessagingEvent {
    let mut body = Map::new();
    if !mids.is_empty() {
        body.insert("mids".into(), json!(mids));
    }
    body.insert("watermark".into(), json!(watermark_ms));
    MessagingEvent::new(P, page_id, psid, true, "delivery", Value::Object(body))
}

/// Read receipt: everything before `watermark` (ms) was read.
pub fn read(page_id: &str, psid: &str, watermark_ms: i64) -> MessagingEvent {
    MessagingEvent::new(
        P,
        page_id,
        psid,
        true,
        "read",
        json!({ "watermark": watermark_ms }),
    )
}

/// A handover event (`messaging_handovers`) for the thread with `psid`.
pub fn handover(page_id: &str, psid: &str, event: &Handover, metadata: Option<&str>) -> MessagingEvent {
    m::handover(P, page_id, psid, event, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::delivery::Delivery;

    const PAGE: &str = "104857600000001";
    const PSID: &str = "6120000000000001";

    #[test]
    fn text_message_shape() {
        let e = text(PAGE, PSID, "hi, is this in stock?").timestamp_ms(1_767_225_600_000);
        let mid = e.mid_value().unwrap().to_owned();
        let v = e.into_delivery().to_value();
        assert_eq!(v["object"], "page");
        let entry = &v["entry"][0];
        assert_eq!(entry["id"], PAGE);
        assert_eq!(entry["time"], 1_767_225_600_000_i64);
        let ev = &entry["messaging"][0];
        assert_eq!(ev["sender"]["id"], PSID);
        assert_eq!(ev["recipient"]["id"], PAGE);
        // Milliseconds, as a JSON number.
        assert!(ev["timestamp"].is_i64());
        assert_eq!(ev["timestamp"], 1_767_225_600_000_i64);
        assert_eq!(ev["message"]["text"], "hi, is this in stock?");
        assert_eq!(ev["message"]["mid"], mid.as_str());
        assert!(mid.starts_with("m_"));
    }

    #[test]
    fn timestamps_default_to_now_in_ms() {
        let before = m::now_ms();
        let e = text(PAGE, PSID, "x");
        assert!(e.timestamp() >= before && e.timestamp() < before + 60_000);
        // ms, not seconds: far beyond any seconds-based timestamp for centuries.
        assert!(e.timestamp() > 1_000_000_000_000);
    }

    #[test]
    fn mids_are_unique_but_pinnable() {
        assert_ne!(
            text(PAGE, PSID, "a").mid_value(),
            text(PAGE, PSID, "a").mid_value()
        );
        assert_eq!(text(PAGE, PSID, "a").mid("m_fixed").mid_value(), Some("m_fixed"));
    }

    #[test]
    fn attachments_and_stickers() {
        let v = attachment(PAGE, PSID, AttachmentKind::Video, "https://cdn.example/v.mp4").to_value();
        assert_eq!(v["message"]["attachments"][0]["type"], "video");
        assert_eq!(
            v["message"]["attachments"][0]["payload"]["url"],
            "https://cdn.example/v.mp4"
        );
        for (kind, name) in [
            (AttachmentKind::Image, "image"),
            (AttachmentKind::Audio, "audio"),
            (AttachmentKind::File, "file"),
        ] {
            let v = attachment(PAGE, PSID, kind, "https://x/y").to_value();
            assert_eq!(v["message"]["attachments"][0]["type"], name);
        }
        let v = sticker(PAGE, PSID, 369_239_263_222_822, true).to_value();
        let atts = v["message"]["attachments"].as_array().unwrap();
        assert_eq!(atts.len(), 2);
        assert_eq!(atts[1]["type"], "sticker");
        assert_eq!(atts[1]["payload"]["sticker_id"], 369_239_263_222_822_u64);
        assert_eq!(
            sticker(PAGE, PSID, 1, false).to_value()["message"]["attachments"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn quick_reply_postback_reaction_edit() {
        let v = quick_reply(PAGE, PSID, "Yes", "STOCK_YES").to_value();
        assert_eq!(v["message"]["quick_reply"]["payload"], "STOCK_YES");
        assert_eq!(v["message"]["text"], "Yes");

        let v = postback(PAGE, PSID, "Get Started", "GET_STARTED").to_value();
        assert_eq!(v["postback"]["payload"], "GET_STARTED");
        assert!(v["postback"]["mid"].as_str().unwrap().starts_with("m_"));
        let standby = postback(PAGE, PSID, "Get Started", "GET_STARTED").standby();
        assert!(standby.to_value()["postback"].get("payload").is_none());
        let d = standby.into_delivery().to_value();
        assert!(d["entry"][0].get("messaging").is_none());
        assert_eq!(d["entry"][0]["standby"].as_array().unwrap().len(), 1);

        let react = Reaction::React {
            reaction: "love".into(),
            emoji: "❤".into(),
        };
        let v = reaction(PAGE, PSID, "m_target", &react).to_value();
        assert_eq!(
            v["reaction"],
            json!({"mid": "m_target", "action": "react", "reaction": "love", "emoji": "❤"})
        );
        let v = reaction(PAGE, PSID, "m_target", &Reaction::Unreact).to_value();
        assert_eq!(v["reaction"], json!({"mid": "m_target", "action": "unreact"}));

        let v = edit(PAGE, PSID, "m_target", "fixed typo", 1).to_value();
        assert_eq!(
            v["message_edit"],
            json!({"mid": "m_target", "text": "fixed typo", "num_edit": 1})
        );
    }

    #[test]
    fn echo_is_from_the_page() {
        let v = echo(
            PAGE,
            PSID,
            1_517_776_481_860_111,
            "Yes, it is.",
            Some("ticket-42"),
        )
        .to_value();
        assert_eq!(v["sender"]["id"], PAGE);
        assert_eq!(v["recipient"]["id"], PSID);
        assert_eq!(v["message"]["is_echo"], true);
        assert!(v["message"]["app_id"].is_u64());
        assert_eq!(v["message"]["metadata"], "ticket-42");
        assert!(
            echo(PAGE, PSID, 1, "x", None).to_value()["message"]
                .get("metadata")
                .is_none()
        );
    }

    #[test]
    fn deliveries_and_reads() {
        let v = delivery(PAGE, PSID, &["m_1".to_owned()], 1_767_225_602_000).to_value();
        assert_eq!(v["delivery"]["mids"], json!(["m_1"]));
        assert_eq!(v["delivery"]["watermark"], 1_767_225_602_000_i64);
        assert!(
            delivery(PAGE, PSID, &[], 5).to_value()["delivery"]
                .get("mids")
                .is_none()
        );
        let v = read(PAGE, PSID, 1_767_225_603_000).to_value();
        assert_eq!(v["read"], json!({"watermark": 1_767_225_603_000_i64}));
    }

    #[test]
    fn handover_events() {
        let pass = Handover::Pass {
            previous_owner_app_id: None,
            new_owner_app_id: "222".into(),
        };
        let v = handover(PAGE, PSID, &pass, Some("escalate: billing")).to_value();
        assert!(v["pass_thread_control"]["previous_owner_app_id"].is_null());
        assert_eq!(v["pass_thread_control"]["new_owner_app_id"], "222");
        assert_eq!(v["pass_thread_control"]["metadata"], "escalate: billing");
        let req = Handover::Request {
            requested_owner_app_id: "333".into(),
        };
        assert_eq!(
            handover(PAGE, PSID, &req, None).to_value()["request_thread_control"]["requested_owner_app_id"],
            "333"
        );
        let take = Handover::Take {
            previous_owner_app_id: Some("222".into()),
            new_owner_app_id: "111".into(),
        };
        assert_eq!(handover(PAGE, PSID, &take, None).key(), "take_thread_control");
    }

    #[test]
    fn batch_mixing_pages() {
        let d = Delivery::from_items([
            text(PAGE, PSID, "one").into_item(),
            text("104857600000002", PSID, "two").into_item(),
            read(PAGE, PSID, 1).into_item(),
        ])
        .unwrap();
        let v = d.to_value();
        assert_eq!(v["entry"].as_array().unwrap().len(), 2);
        assert_eq!(v["entry"][0]["messaging"].as_array().unwrap().len(), 2);
    }
}
