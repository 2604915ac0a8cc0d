use std::collections::HashSet;

use prost_types::Timestamp;
use scifer_proto::events::v1::{
    ChannelKind, HandoverKind, MetaEvent, UnhandledMetaItem, WhatsAppStatusKind, meta_event::Kind,
};
use serde_json::{Value, json};

use super::*;

const MESSENGER: &str = include_str!("../../tests/fixtures/messenger_batch.json");
const INSTAGRAM: &str = include_str!("../../tests/fixtures/instagram_batch.json");
const WHATSAPP: &str = include_str!("../../tests/fixtures/whatsapp_batch.json");

fn received_at() -> Timestamp {
    Timestamp {
        seconds: 1_767_225_900,
        nanos: 5,
    }
}

fn split(body: &str) -> Split {
    split_delivery(body.as_bytes(), "delivery-1", received_at()).unwrap()
}

fn event<'a>(split: &'a Split, id: &str) -> &'a MetaEvent {
    split
        .events
        .iter()
        .find(|e| e.event_id == id)
        .unwrap_or_else(|| panic!("no event {id}; have {:?}", ids(split)))
}

fn ids(split: &Split) -> Vec<&str> {
    split.events.iter().map(|e| e.event_id.as_str()).collect()
}

fn unhandled_with_field<'a>(split: &'a Split, field: &str) -> &'a UnhandledMetaItem {
    split
        .unhandled
        .iter()
        .find(|u| u.field == field)
        .unwrap_or_else(|| panic!("no unhandled item with field {field}: {:?}", split.unhandled))
}

fn raw(event: &MetaEvent) -> Value {
    serde_json::from_str(&event.raw_item_json).unwrap()
}

fn assert_all_ids_distinct(split: &Split) {
    let mut seen = HashSet::new();
    for id in split
        .events
        .iter()
        .map(|e| &e.event_id)
        .chain(split.unhandled.iter().map(|u| &u.event_id))
    {
        assert!(seen.insert(id.clone()), "duplicate id {id}");
    }
}

// ---- Messenger -------------------------------------------------------------------------------

#[test]
fn messenger_batch_maps_every_item() {
    let s = split(MESSENGER);
    // 13 messaging + 2 standby + 3 changes; the optin and the ratings change are unhandled.
    assert_eq!(s.events.len() + s.unhandled.len(), 18);
    assert_eq!(s.unhandled.len(), 2);
    assert_all_ids_distinct(&s);
    for e in &s.events {
        assert_eq!(e.delivery_id, "delivery-1");
        assert_eq!(e.received_at, Some(received_at()));
        assert_eq!(e.channel_kind, i32::from(ChannelKind::Messenger));
        assert!(e.business_account_id.is_empty());
        assert!(e.event_id.starts_with("fb:"), "{}", e.event_id);
    }
}

#[test]
fn messenger_inbound_message() {
    let s = split(MESSENGER);
    let e = event(&s, "fb:message:m_AbC123");
    assert_eq!(e.account_id, "111000111");
    assert!(!e.standby);
    let Some(Kind::Message(m)) = &e.kind else {
        panic!("{:?}", e.kind)
    };
    assert_eq!(m.external_id, "m_AbC123");
    assert_eq!(m.contact_id, "9001");
    assert_eq!(m.sent_at_ms, 1_767_225_600_000);
    assert_eq!(m.text, "hi, is this in stock? café");
    assert_eq!(m.quick_reply_payload, "STOCK_YES");
    assert_eq!(m.reply_to_external_id, "m_Prev456");
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].r#type, "image");
    assert_eq!(m.attachments[0].url, "https://cdn.example/x.jpg");
    assert_eq!(m.attachments[1].r#type, "sticker");
    assert_eq!(m.attachments[1].sticker_id, "369239263222822");
    assert!(!m.is_deleted && !m.is_unsupported);
    // The raw item is the messaging element itself, not the entry or the body.
    assert_eq!(raw(e)["message"]["mid"], "m_AbC123");
    assert_eq!(raw(e)["sender"]["id"], "9001");
}

#[test]
fn messenger_echo_uses_recipient_as_contact() {
    let s = split(MESSENGER);
    let Some(Kind::Echo(echo)) = &event(&s, "fb:echo:m_Echo789").kind else {
        panic!()
    };
    assert_eq!(echo.contact_id, "9001");
    assert_eq!(echo.external_id, "m_Echo789");
    assert_eq!(echo.text, "Yes, it is.");
    assert_eq!(echo.app_id, "1517776481860111");
    assert_eq!(echo.metadata, "ticket-42");
    assert_eq!(echo.sent_at_ms, 1_767_225_601_000);
}

#[test]
fn messenger_delivery_and_read() {
    let s = split(MESSENGER);
    let Some(Kind::Delivery(d)) = &event(&s, "fb:delivery:9001:1767225602000").kind else {
        panic!()
    };
    assert_eq!(d.contact_id, "9001");
    assert_eq!(d.external_ids, vec!["m_Echo789".to_owned()]);
    assert_eq!(d.watermark_ms, 1_767_225_602_000);

    let Some(Kind::Read(r)) = &event(&s, "fb:read:9001:1767225603000").kind else {
        panic!()
    };
    assert_eq!(r.contact_id, "9001");
    assert_eq!(r.watermark_ms, 1_767_225_603_000);
    assert!(r.external_id.is_empty());
}

#[test]
fn messenger_reactions_react_and_unreact() {
    let s = split(MESSENGER);
    let Some(Kind::Reaction(r)) = &event(&s, "fb:reaction:m_Echo789:9001:react:1767225604000").kind else {
        panic!()
    };
    assert!(r.added);
    assert_eq!(r.target_external_id, "m_Echo789");
    assert_eq!(r.emoji, "❤");
    assert_eq!(r.reaction, "love");
    assert_eq!(r.at_ms, 1_767_225_604_000);

    let Some(Kind::Reaction(r)) = &event(&s, "fb:reaction:m_Echo789:9001:unreact:1767225605000").kind else {
        panic!()
    };
    assert!(!r.added);
    assert!(r.emoji.is_empty());
}

#[test]
fn messenger_edit_and_postback() {
    let s = split(MESSENGER);
    let Some(Kind::Edit(e)) = &event(&s, "fb:edit:m_AbC123:1").kind else {
        panic!()
    };
    assert_eq!(e.external_id, "m_AbC123");
    assert_eq!(e.text, "hi, is this in stock in blue?");
    assert_eq!(e.num_edit, 1);
    assert_eq!(e.contact_id, "9001");

    let Some(Kind::Postback(p)) = &event(&s, "fb:postback:m_Post1").kind else {
        panic!()
    };
    assert_eq!(p.title, "Get Started");
    assert_eq!(p.payload, "GET_STARTED");
    assert_eq!(p.external_id, "m_Post1");
    assert_eq!(p.at_ms, 1_767_225_607_000);
}

#[test]
fn messenger_handover_events() {
    let s = split(MESSENGER);
    let Some(Kind::Handover(h)) = &event(&s, "fb:handover:9001:pass:1767225608000").kind else {
        panic!()
    };
    assert_eq!(h.kind, i32::from(HandoverKind::Pass));
    assert!(
        h.previous_owner_app_id.is_empty(),
        "null previous owner maps to empty"
    );
    assert_eq!(h.new_owner_app_id, "222");
    assert_eq!(h.metadata, "escalate: billing");

    let Some(Kind::Handover(h)) = &event(&s, "fb:handover:9001:take:1767225609000").kind else {
        panic!()
    };
    assert_eq!(h.kind, i32::from(HandoverKind::Take));
    assert_eq!(h.previous_owner_app_id, "222");

    let Some(Kind::Handover(h)) = &event(&s, "fb:handover:9001:request:1767225610000").kind else {
        panic!()
    };
    assert_eq!(h.kind, i32::from(HandoverKind::Request));
    assert_eq!(h.new_owner_app_id, "333");

    let Some(Kind::Handover(h)) = &event(&s, "fb:handover:9001:app_roles:1767225611000").kind else {
        panic!()
    };
    assert_eq!(h.kind, i32::from(HandoverKind::AppRoles));
}

#[test]
fn messenger_standby_items_are_flagged_and_mapped() {
    let s = split(MESSENGER);
    let m = event(&s, "fb:message:m_Standby1");
    assert!(m.standby);
    assert_eq!(m.account_id, "222000222");

    // A standby postback has neither mid nor payload: the id falls back to psid and timestamp.
    let p = event(&s, "fb:postback:9002:1767225701000");
    assert!(p.standby);
    let Some(Kind::Postback(p)) = &p.kind else {
        panic!()
    };
    assert_eq!(p.title, "Talk to a human");
    assert!(p.payload.is_empty());

    assert_eq!(s.events.iter().filter(|e| e.standby).count(), 2);
}

#[test]
fn messenger_unknown_messaging_key_is_unhandled() {
    let s = split(MESSENGER);
    let u = unhandled_with_field(&s, "optin");
    assert_eq!(u.object, "page");
    assert_eq!(u.account_id, "111000111");
    assert_eq!(u.delivery_id, "delivery-1");
    assert_eq!(u.received_at, Some(received_at()));
    assert!(u.reason.contains("optin"), "{}", u.reason);
    assert!(u.event_id.starts_with("fb:unhandled:h:"));
    let raw: Value = serde_json::from_str(&u.raw_item_json).unwrap();
    assert_eq!(raw["optin"]["payload"], "X");
}

#[test]
fn page_feed_changes() {
    let s = split(MESSENGER);
    let comment = s
        .events
        .iter()
        .find(|e| e.event_id.starts_with("fb:change:feed:5001_7001:add:"))
        .unwrap();
    assert_eq!(comment.account_id, "111000111");
    let Some(Kind::Change(c)) = &comment.kind else {
        panic!()
    };
    assert_eq!(c.field, "feed");
    assert_eq!(c.item, "comment");
    assert_eq!(c.verb, "add");
    assert_eq!(c.object_id, "5001_7001");
    assert_eq!(c.parent_id, "111000111_5001");
    assert_eq!(c.from_id, "4242");
    assert_eq!(c.from_name, "Jane Doe");
    assert_eq!(c.text, "Love this!");
    assert_eq!(c.created_at_ms, 1_767_225_790_000);
    assert_eq!(raw(comment)["field"], "feed");

    let reaction = s
        .events
        .iter()
        .find(|e| e.event_id.starts_with("fb:change:feed:111000111_5001:add:"))
        .unwrap();
    let Some(Kind::Change(c)) = &reaction.kind else {
        panic!()
    };
    assert_eq!(c.item, "reaction");
    assert_eq!(c.from_id, "4243");

    let u = unhandled_with_field(&s, "ratings");
    assert!(u.reason.contains("ratings"));
}

#[test]
fn feed_changes_on_the_same_object_in_the_same_second_stay_distinct() {
    let body = |from: &str| {
        json!({"object":"page","entry":[{"id":"1","time":1767225600,"changes":[{"field":"feed","value":{
            "item":"reaction","verb":"add","post_id":"1_2","from":{"id":from},"reaction_type":"like",
            "created_time":1767225600}}]}]})
        .to_string()
    };
    let a = split(&body("7"));
    let b = split(&body("8"));
    assert_ne!(a.events[0].event_id, b.events[0].event_id);
}

#[test]
fn feed_change_without_created_time_uses_entry_time_in_seconds() {
    let body = json!({"object":"page","entry":[{"id":"1","time":1767225600,"changes":[
        {"field":"feed","value":{"item":"status","verb":"add","post_id":"1_2","message":"hello"}}]}]});
    let s = split(&body.to_string());
    let Some(Kind::Change(c)) = &s.events[0].kind else {
        panic!()
    };
    assert_eq!(c.created_at_ms, 1_767_225_600_000);
    assert_eq!(c.object_id, "1_2");
}

// ---- Instagram -------------------------------------------------------------------------------

#[test]
fn instagram_batch_maps_every_item() {
    let s = split(INSTAGRAM);
    assert_eq!(s.events.len(), 9);
    assert_eq!(s.unhandled.len(), 1);
    assert_all_ids_distinct(&s);
    for e in &s.events {
        assert_eq!(e.channel_kind, i32::from(ChannelKind::Instagram));
        assert_eq!(e.account_id, "17841400000000000");
        assert!(e.event_id.starts_with("ig:"));
    }
}

#[test]
fn instagram_messages_echo_and_flags() {
    let s = split(INSTAGRAM);
    let Some(Kind::Message(m)) = &event(&s, "ig:message:aWdfZAG1faXRlbToxOklH").kind else {
        panic!()
    };
    assert_eq!(m.contact_id, "6001");
    assert_eq!(m.text, "price?");
    assert!(m.reply_to_external_id.is_empty(), "story replies carry no mid");
    assert_eq!(m.attachments[0].r#type, "ig_reel");
    assert_eq!(m.attachments[0].url, "https://lookaside.example/r");

    let Some(Kind::Message(m)) = &event(&s, "ig:message:aWdfZAG1faXRlbToxOklI").kind else {
        panic!()
    };
    assert!(m.is_deleted);
    let Some(Kind::Message(m)) = &event(&s, "ig:message:aWdfZAG1faXRlbToxOklJ").kind else {
        panic!()
    };
    assert!(m.is_unsupported);

    let Some(Kind::Echo(e)) = &event(&s, "ig:echo:aWdfZAG1faXRlbToxOklK").kind else {
        panic!()
    };
    assert_eq!(e.contact_id, "6001");
    assert_eq!(e.text, "$10");
}

#[test]
fn instagram_seen_and_reaction() {
    let s = split(INSTAGRAM);
    let Some(Kind::Read(r)) = &event(&s, "ig:read:aWdfZAG1faXRlbToxOklK").kind else {
        panic!()
    };
    assert_eq!(r.external_id, "aWdfZAG1faXRlbToxOklK");
    assert_eq!(r.watermark_ms, 0);
    assert_eq!(r.contact_id, "6001");

    let id = "ig:reaction:aWdfZAG1faXRlbToxOklK:6001:react:1767225604000";
    let Some(Kind::Reaction(r)) = &event(&s, id).kind else {
        panic!()
    };
    assert!(r.added);
    assert_eq!(r.emoji, "❤\u{fe0f}");
}

#[test]
fn instagram_comments_and_mentions() {
    let s = split(INSTAGRAM);
    let find = |prefix: &str| {
        s.events
            .iter()
            .find(|e| e.event_id.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {:?}", ids(&s)))
    };
    let Some(Kind::Change(c)) = &find("ig:change:comments:17900000000000001:-:").kind else {
        panic!()
    };
    assert_eq!(c.field, "comments");
    assert_eq!(c.item, "comment");
    assert_eq!(c.text, "nice!");
    assert_eq!(c.from_id, "6002");
    assert_eq!(c.from_name, "jane");
    assert_eq!(
        c.parent_id, "17800000000000000",
        "top-level comment hangs off its media"
    );
    assert_eq!(c.created_at_ms, 1_767_225_700_000);

    let Some(Kind::Change(c)) = &find("ig:change:live_comments:17900000000000002:-:").kind else {
        panic!()
    };
    assert_eq!(
        c.parent_id, "17900000000000001",
        "a reply hangs off its parent comment"
    );

    let Some(Kind::Change(c)) = &find("ig:change:mentions:17900000000000003:-:").kind else {
        panic!()
    };
    assert_eq!(c.object_id, "17900000000000003");
    assert_eq!(c.parent_id, "17800000000000005");

    let u = unhandled_with_field(&s, "story_insights");
    assert_eq!(u.object, "instagram");
    assert!(u.event_id.starts_with("ig:unhandled:h:"));
}

// ---- WhatsApp --------------------------------------------------------------------------------

#[test]
fn whatsapp_batch_maps_every_item() {
    let s = split(WHATSAPP);
    // 12 messages (one without id/sender) + 6 statuses (one unknown) + 1 system error
    // + 1 template update (an event since issue 5) + 1 message of another WABA.
    assert_eq!(s.events.len() + s.unhandled.len(), 21);
    assert_eq!(s.unhandled.len(), 3, "{:?}", s.unhandled);
    assert_all_ids_distinct(&s);
    for e in &s.events {
        assert_eq!(e.channel_kind, i32::from(ChannelKind::Whatsapp));
        assert!(e.event_id.starts_with("wa:"));
    }
}

#[test]
fn whatsapp_text_with_contact_name_and_context() {
    let s = split(WHATSAPP);
    let e = event(&s, "wa:message:wamid.TEXT1");
    assert_eq!(e.account_id, "106540352242922");
    assert_eq!(e.business_account_id, "WABA_1");
    assert_eq!(raw(e)["id"], "wamid.TEXT1");
    let Some(Kind::Message(m)) = &e.kind else { panic!() };
    assert_eq!(m.contact_id, "5511999990000");
    assert_eq!(m.contact_name, "Ana");
    assert_eq!(m.text, "oi, tudo bem? é");
    assert_eq!(m.sent_at_ms, 1_767_225_600_000);
    assert_eq!(m.reply_to_external_id, "wamid.BIZ1");
    assert_eq!(m.message_type, "text");

    let other = event(&s, "wa:message:wamid.OTHER1");
    assert_eq!(other.account_id, "206540352242922");
    assert_eq!(other.business_account_id, "WABA_2");
    let Some(Kind::Message(m)) = &other.kind else {
        panic!()
    };
    assert_eq!(m.contact_name, "Carla");
}

#[test]
fn whatsapp_media() {
    let s = split(WHATSAPP);
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.IMG1").kind else {
        panic!()
    };
    assert_eq!(m.message_type, "image");
    assert!(m.text.is_empty());
    let a = &m.attachments[0];
    assert_eq!(
        (
            a.r#type.as_str(),
            a.media_id.as_str(),
            a.mime_type.as_str(),
            a.sha256.as_str()
        ),
        ("image", "MEDIA_IMG", "image/jpeg", "abc123")
    );
    assert_eq!(a.caption, "look");

    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.DOC1").kind else {
        panic!()
    };
    assert_eq!(m.attachments[0].r#type, "document");
    assert_eq!(m.attachments[0].filename, "invoice.pdf");
    assert_eq!(m.attachments[0].mime_type, "application/pdf");
}

#[test]
fn whatsapp_interactive_and_button_replies() {
    let s = split(WHATSAPP);
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.BTN1").kind else {
        panic!()
    };
    assert_eq!(
        (m.text.as_str(), m.quick_reply_payload.as_str()),
        ("Yes", "YES_ID")
    );
    assert_eq!(m.message_type, "interactive");
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.LIST1").kind else {
        panic!()
    };
    assert_eq!(
        (m.text.as_str(), m.quick_reply_payload.as_str()),
        ("Blue", "ROW_2")
    );
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.TPL1").kind else {
        panic!()
    };
    assert_eq!(
        (m.text.as_str(), m.quick_reply_payload.as_str()),
        ("Stop promotions", "STOP_PROMOS")
    );
    assert_eq!(m.message_type, "button");
}

#[test]
fn whatsapp_reactions() {
    let s = split(WHATSAPP);
    let Some(Kind::Reaction(r)) = &event(&s, "wa:reaction:wamid.REACT1").kind else {
        panic!()
    };
    assert!(r.added);
    assert_eq!(r.emoji, "😮");
    assert_eq!(r.target_external_id, "wamid.BIZ1");
    assert_eq!(r.contact_id, "5511999990000");
    let Some(Kind::Reaction(r)) = &event(&s, "wa:reaction:wamid.REACT2").kind else {
        panic!()
    };
    assert!(!r.added);
    assert_eq!(r.target_external_id, "wamid.BIZ1");
    assert!(!s.events.iter().any(|e| e.event_id == "wa:message:wamid.REACT1"));
}

#[test]
fn whatsapp_other_types_and_hidden_numbers() {
    let s = split(WHATSAPP);
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.LOC1").kind else {
        panic!()
    };
    assert_eq!(m.message_type, "location");
    assert!(!m.is_unsupported);

    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.UNSUP1").kind else {
        panic!()
    };
    assert!(m.is_unsupported);
    assert_eq!(m.message_type, "unsupported");

    // A user hiding their number is identified by the business-scoped user id.
    let Some(Kind::Message(m)) = &event(&s, "wa:message:wamid.HIDDEN1").kind else {
        panic!()
    };
    assert_eq!(m.contact_id, "BR.5555");
    assert_eq!(m.contact_name, "Hidden Bob");
    assert_eq!(m.attachments[0].r#type, "audio");
    assert_eq!(m.attachments[0].mime_type, "audio/ogg; codecs=opus");

    let u = s
        .unhandled
        .iter()
        .find(|u| u.reason.contains("without id or sender"))
        .unwrap();
    assert_eq!(u.account_id, "106540352242922");
    assert!(u.raw_item_json.contains("no id, no sender"));
}

#[test]
fn whatsapp_statuses() {
    let s = split(WHATSAPP);
    let status = |id: &str| match &event(&s, id).kind {
        Some(Kind::WhatsappStatus(st)) => st.clone(),
        other => panic!("{other:?}"),
    };
    let sent = status("wa:status:wamid.BIZ1:sent");
    assert_eq!(sent.status, i32::from(WhatsAppStatusKind::Sent));
    assert_eq!(sent.recipient_id, "5511999990000");
    assert_eq!(sent.biz_opaque_callback_data, "order-77");
    assert_eq!(sent.at_ms, 1_767_225_700_000);
    assert_eq!(
        status("wa:status:wamid.BIZ1:delivered").status,
        i32::from(WhatsAppStatusKind::Delivered)
    );
    assert_eq!(
        status("wa:status:wamid.BIZ1:read").status,
        i32::from(WhatsAppStatusKind::Read)
    );
    assert_eq!(
        status("wa:status:wamid.BIZ3:played").status,
        i32::from(WhatsAppStatusKind::Played)
    );

    let failed = status("wa:status:wamid.BIZ2:failed");
    assert_eq!(failed.status, i32::from(WhatsAppStatusKind::Failed));
    assert_eq!(failed.error_code, 131_047);
    assert_eq!(failed.error_title, "Re-engagement message");
    assert_eq!(
        failed.error_detail,
        "More than 24 hours have passed since the recipient last replied."
    );

    let unknown = s.unhandled.iter().find(|u| u.reason.contains("deleted")).unwrap();
    assert!(unknown.raw_item_json.contains("wamid.BIZ4"));
}

#[test]
fn whatsapp_system_errors_and_other_fields_are_unhandled() {
    let s = split(WHATSAPP);
    let system = s.unhandled.iter().find(|u| u.reason.contains("131000")).unwrap();
    assert_eq!(system.field, "messages");
    assert_eq!(system.account_id, "106540352242922");
    assert!(system.reason.contains("system error"));

    assert!(
        !s.unhandled
            .iter()
            .any(|u| u.field == "message_template_status_update"),
        "template status updates are events now"
    );
}

// ---- WhatsApp template status (issue 5) -----------------------------------------------------

fn template_update(value: Value, time: Option<i64>) -> Split {
    let mut entry =
        json!({"id":"WABA_9","changes":[{"field":"message_template_status_update","value":value}]});
    if let Some(t) = time {
        entry["time"] = json!(t);
    }
    split(&json!({"object":"whatsapp_business_account","entry":[entry]}).to_string())
}

fn template_status(event: &MetaEvent) -> &scifer_proto::events::v1::TemplateStatusUpdate {
    match &event.kind {
        Some(Kind::TemplateStatus(t)) => t,
        other => panic!("not a template status: {other:?}"),
    }
}

#[test]
fn whatsapp_template_status_update_names_the_waba_and_the_template() {
    let s = template_update(
        json!({"event":"REJECTED","message_template_id":1234567890123456u64,"message_template_name":"order_update",
            "message_template_language":"en_US","message_template_category":"UTILITY","reason":"INVALID_FORMAT"}),
        Some(1_767_225_900),
    );
    assert!(s.unhandled.is_empty(), "{:?}", s.unhandled);
    let e = &s.events[0];
    assert_eq!(
        e.event_id,
        "wa:template_status:1234567890123456:REJECTED:1767225900"
    );
    assert_eq!(e.account_id, "WABA_9", "templates belong to the WABA");
    assert_eq!(e.business_account_id, "WABA_9");
    assert_eq!(e.channel_kind, i32::from(ChannelKind::Whatsapp));
    let t = template_status(e);
    assert_eq!(
        (
            t.waba_id.as_str(),
            t.template_id.as_str(),
            t.name.as_str(),
            t.language.as_str()
        ),
        ("WABA_9", "1234567890123456", "order_update", "en_US")
    );
    assert_eq!(
        (t.status.as_str(), t.reason.as_str(), t.category.as_str()),
        ("REJECTED", "INVALID_FORMAT", "UTILITY")
    );
    assert_eq!(t.at_ms, 1_767_225_900_000);
}

#[test]
fn whatsapp_template_status_ids_are_stable_and_tell_repeats_apart() {
    let value = json!({"event":"PAUSED","message_template_id":"42","message_template_name":"promo",
        "message_template_language":"pt_BR","reason":"NONE"});
    let first = template_update(value.clone(), Some(100));
    let retry = template_update(value.clone(), Some(100));
    let later = template_update(value.clone(), Some(200));
    assert_eq!(first.events[0].event_id, retry.events[0].event_id);
    assert_ne!(first.events[0].event_id, later.events[0].event_id);
    assert_eq!(
        template_status(&first.events[0]).reason,
        "",
        "NONE means no reason"
    );
    // No entry time: a hashed id over the item, still stable.
    let untimed = template_update(value.clone(), None);
    assert!(untimed.events[0].event_id.starts_with("wa:template_status:h:"));
    assert_eq!(
        untimed.events[0].event_id,
        template_update(value, None).events[0].event_id
    );
    assert_eq!(template_status(&untimed.events[0]).at_ms, 0);
}

#[test]
fn whatsapp_template_status_without_id_or_event_is_unhandled() {
    let s = template_update(json!({"message_template_name":"x"}), Some(1));
    assert!(s.events.is_empty());
    let u = unhandled_with_field(&s, "message_template_status_update");
    assert_eq!(u.account_id, "WABA_9");
}

#[test]
fn whatsapp_value_without_phone_number_id_is_kept_whole() {
    let body = json!({"object":"whatsapp_business_account","entry":[{"id":"W","changes":[
        {"field":"messages","value":{"messages":[{"from":"1","id":"wamid.X","type":"text","text":{"body":"a"}}]}}]}]});
    let s = split(&body.to_string());
    assert!(s.events.is_empty());
    assert_eq!(s.unhandled.len(), 1);
    assert!(s.unhandled[0].raw_item_json.contains("wamid.X"));
}

// ---- ids -------------------------------------------------------------------------------------

#[test]
fn ids_are_stable_across_batch_shapes() {
    // The same items alone, or re-batched with others under a different entry time, in a
    // different delivery received later.
    let batched = split(MESSENGER);
    let item = json!({"sender":{"id":"9001"},"recipient":{"id":"111000111"},"timestamp":1767225605000u64,
        "reaction":{"mid":"m_Echo789","action":"unreact"}});
    let alone =
        json!({"object":"page","entry":[{"id":"111000111","time":1767229999999u64,"messaging":[item]}]});
    let alone = split_delivery(
        alone.to_string().as_bytes(),
        "delivery-2",
        Timestamp { seconds: 1, nanos: 0 },
    )
    .unwrap();
    let id = &alone.events[0].event_id;
    assert_eq!(id, "fb:reaction:m_Echo789:9001:unreact:1767225605000");
    assert!(batched.events.iter().any(|e| &e.event_id == id));

    // Hash-based ids (feed changes, unhandled items) survive re-batching too.
    let feed_item: Value =
        serde_json::from_str::<Value>(MESSENGER).unwrap()["entry"][2]["changes"][0].clone();
    let ratings_item: Value =
        serde_json::from_str::<Value>(MESSENGER).unwrap()["entry"][2]["changes"][2].clone();
    let rebatched = json!({"object":"page","entry":[
        {"id":"111000111","time":1767239999,"changes":[ratings_item, feed_item]}]});
    let rebatched = split(&rebatched.to_string());
    let feed_id = &rebatched.events[0].event_id;
    assert!(batched.events.iter().any(|e| &e.event_id == feed_id), "{feed_id}");
    assert_eq!(
        rebatched.unhandled[0].event_id,
        unhandled_with_field(&batched, "ratings").event_id
    );
}

#[test]
fn whatsapp_ids_are_stable_across_batch_shapes() {
    let batched = split(WHATSAPP);
    let body = json!({"object":"whatsapp_business_account","entry":[{"id":"WABA_1","changes":[
        {"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},
         "statuses":[{"id":"wamid.BIZ2","status":"failed","timestamp":"1767225707","recipient_id":"5511999990000"}],
         "messages":[{"from":"5511999990000","id":"wamid.LOC1","timestamp":"1767225608","type":"location"}]}}]}]});
    let alone = split(&body.to_string());
    for e in &alone.events {
        assert!(
            batched.events.iter().any(|b| b.event_id == e.event_id),
            "{}",
            e.event_id
        );
    }
    assert_eq!(alone.events.len(), 2);
}

#[test]
fn hashed_fallback_ids_are_stable_and_distinct() {
    // No mid: the message id falls back to a hash of the item and the account.
    let body = |text: &str, time: u64| {
        json!({"object":"page","entry":[{"id":"1","time":time,"messaging":[
            {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"text":text}}]}]})
        .to_string()
    };
    let a = split(&body("hello", 10));
    let a_again = split(&body("hello", 99));
    let b = split(&body("bye", 10));
    let id = &a.events[0].event_id;
    assert!(id.starts_with("fb:message:h:"), "{id}");
    assert_eq!(id, &a_again.events[0].event_id);
    assert_ne!(id, &b.events[0].event_id);
}

#[test]
fn ids_with_unsafe_characters_fall_back_to_a_hash() {
    let body = json!({"object":"page","entry":[{"id":"1","messaging":[
        {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m:1\r\nX: y","text":"a"}}]}]});
    let s = split(&body.to_string());
    let id = &s.events[0].event_id;
    assert!(id.starts_with("fb:message:h:"), "{id}");
    let Some(Kind::Message(m)) = &s.events[0].kind else {
        panic!()
    };
    assert_eq!(
        m.external_id, "m:1\r\nX: y",
        "the payload keeps Meta's id as sent"
    );
}

#[test]
fn different_items_get_different_ids_across_channels() {
    let mut all = Vec::new();
    for body in [MESSENGER, INSTAGRAM, WHATSAPP] {
        let s = split(body);
        all.extend(s.events.into_iter().map(|e| e.event_id));
        all.extend(s.unhandled.into_iter().map(|u| u.event_id));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
}

#[test]
fn same_unknown_item_on_two_accounts_gets_two_ids() {
    let body = json!({"object":"page","entry":[
        {"id":"1","messaging":[{"sender":{"id":"2"},"timestamp":5,"optin":{"ref":"x"}}]},
        {"id":"9","messaging":[{"sender":{"id":"2"},"timestamp":5,"optin":{"ref":"x"}}]}]});
    let s = split(&body.to_string());
    assert_eq!(s.unhandled.len(), 2);
    assert_ne!(s.unhandled[0].event_id, s.unhandled[1].event_id);
}

// ---- unknown shapes and malformed bodies -----------------------------------------------------

#[test]
fn unknown_object_keeps_each_entry() {
    let body =
        json!({"object":"user","entry":[{"id":"u1","time":1,"changes":[{"field":"email"}]},{"id":"u2"}]});
    let s = split(&body.to_string());
    assert!(s.events.is_empty());
    assert_eq!(s.unhandled.len(), 2);
    assert_eq!(s.unhandled[0].object, "user");
    assert_eq!(s.unhandled[0].account_id, "u1");
    assert!(s.unhandled[0].reason.contains("unknown object"));
    assert!(s.unhandled[0].event_id.starts_with("meta:unhandled:h:"));
    assert_ne!(s.unhandled[0].event_id, s.unhandled[1].event_id);
}

#[test]
fn objects_without_entries_are_kept_whole() {
    for body in [
        json!({"hello":"world"}),
        json!({"object":"page"}),
        json!({"object":"page","entry":{}}),
    ] {
        let s = split(&body.to_string());
        assert!(s.events.is_empty());
        assert_eq!(s.unhandled.len(), 1, "{body}");
        let raw: Value = serde_json::from_str(&s.unhandled[0].raw_item_json).unwrap();
        assert_eq!(raw, body);
    }
}

#[test]
fn unexpected_entry_shapes_are_unhandled() {
    let body = json!({"object":"page","entry":[
        "not an object",
        {"id":"1","time":5},
        {"id":"2","messaging":{"not":"an array"}},
        {"id":"3","messaging":[42, ["positional"], {"sender":{"id":"4"},"timestamp":1}]},
        {"id":"4","hop_context":[{"app_id":1}]}
    ]});
    let s = split(&body.to_string());
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(s.unhandled.len(), 7, "{:#?}", s.unhandled);
    assert!(s.unhandled.iter().any(|u| u.reason == "entry is not an object"));
    assert!(s.unhandled.iter().any(|u| u.reason == "entry without items"));
    assert!(s.unhandled.iter().any(|u| u.reason.contains("not an array")));
    assert!(s.unhandled.iter().any(|u| u.field == "hop_context"));
    assert!(
        s.unhandled
            .iter()
            .any(|u| u.reason == "messaging item without an event")
    );
    assert_all_ids_distinct(&s);
}

#[test]
fn whatsapp_entry_with_messaging_array_is_unhandled() {
    let body = json!({"object":"whatsapp_business_account","entry":[{"id":"W","messaging":[{"x":1}]}]});
    let s = split(&body.to_string());
    assert_eq!(s.unhandled.len(), 1);
    assert_eq!(s.unhandled[0].field, "messaging");
}

#[test]
fn messaging_item_without_sender_is_unhandled() {
    let body = json!({"object":"page","entry":[{"id":"1","messaging":[
        {"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m_1","text":"a"}}]}]});
    let s = split(&body.to_string());
    assert!(s.events.is_empty());
    assert_eq!(s.unhandled[0].field, "message");
    assert!(s.unhandled[0].reason.contains("sender.id"));
}

#[test]
fn lenient_scalars_do_not_lose_items() {
    // Numeric ids, string timestamps and a malformed nested object still map.
    let body = json!({"object":"page","entry":[{"id":111,"messaging":[
        {"sender":{"id":9001},"recipient":{"id":111},"timestamp":"1767225600000",
         "message":{"mid":"m_1","text":"a","quick_reply":"oops","attachments":[{"type":"file","payload":null},"junk"]}}]}]});
    let s = split(&body.to_string());
    let e = event(&s, "fb:message:m_1");
    assert_eq!(e.account_id, "111");
    let Some(Kind::Message(m)) = &e.kind else { panic!() };
    assert_eq!(m.contact_id, "9001");
    assert_eq!(m.sent_at_ms, 1_767_225_600_000);
    assert!(m.quick_reply_payload.is_empty());
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].r#type, "file");
}

#[test]
fn malformed_bodies_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "json"),
        (b"not json", "json"),
        (b"{\"object\":\"page\"", "json"),
        (b"{\"object\":\"page\"} trailing", "json"),
        (b"{\"a\":\"\xff\"}", "json"),
        (br#"{"a":"\ud800"}"#, "json"),
        (br#"{"a":1e400}"#, "json"),
        (b"[]", "array"),
        (b"\"page\"", "string"),
        (b"null", "null"),
        (b"12", "number"),
        (b"true", "boolean"),
    ];
    for (body, expected) in cases {
        let split_err = split_delivery(body, "d", received_at()).unwrap_err();
        let peek_err = peek_object(body).unwrap_err();
        let show = String::from_utf8_lossy(body);
        match (&split_err, &peek_err) {
            (MalformedDelivery::NotJson(_), MalformedDelivery::NotJson(_)) => {
                assert_eq!(*expected, "json", "{show}");
            }
            (MalformedDelivery::NotAnObject { found: a }, MalformedDelivery::NotAnObject { found: b }) => {
                assert_eq!((a, b), (expected, expected), "{show}");
            }
            other => panic!("{show}: split and peek disagree: {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_rejected_by_both_split_and_peek() {
    let deep = format!(
        "{{\"object\":\"page\",\"x\":{}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(matches!(
        split_delivery(deep.as_bytes(), "d", received_at()),
        Err(MalformedDelivery::NotJson(_))
    ));
    assert!(matches!(
        peek_object(deep.as_bytes()),
        Err(MalformedDelivery::NotJson(_))
    ));
}

#[test]
fn peek_object_reads_the_channel() {
    assert_eq!(
        peek_object(MESSENGER.as_bytes()).unwrap(),
        Some(ChannelKind::Messenger)
    );
    assert_eq!(
        peek_object(INSTAGRAM.as_bytes()).unwrap(),
        Some(ChannelKind::Instagram)
    );
    assert_eq!(
        peek_object(WHATSAPP.as_bytes()).unwrap(),
        Some(ChannelKind::Whatsapp)
    );
    assert_eq!(peek_object(br#"{"object":"user","entry":[]}"#).unwrap(), None);
    assert_eq!(peek_object(br#"{"entry":[]}"#).unwrap(), None);
    assert_eq!(peek_object(br#"{"object":5}"#).unwrap(), None);
    assert_eq!(peek_object(br#"{"object":{"nested":["page"]}}"#).unwrap(), None);
    assert_eq!(
        peek_object(br#" {"entry":[{"object":"page"}],"object":"instagram"} "#).unwrap(),
        Some(ChannelKind::Instagram)
    );
    // Duplicate keys: the last one wins, as in the full parse.
    assert_eq!(
        peek_object(br#"{"object":"page","object":"whatsapp_business_account"}"#).unwrap(),
        Some(ChannelKind::Whatsapp)
    );
    let s = split(r#"{"object":"page","object":"whatsapp_business_account","entry":[]}"#);
    assert!(s.events.is_empty() && s.unhandled.is_empty());
}

#[test]
fn peek_accepts_what_split_accepts() {
    for body in [
        MESSENGER,
        INSTAGRAM,
        WHATSAPP,
        r#"{"object":"page","entry":[{"x":"\ud83d\ude00 caf\u00e9 \/"}]}"#,
        r#"{"object":"page","n":[1.5e300,-0,12345678901234567890]}"#,
        "{}",
    ] {
        assert!(peek_object(body.as_bytes()).is_ok(), "{body}");
        assert!(
            split_delivery(body.as_bytes(), "d", received_at()).is_ok(),
            "{body}"
        );
    }
}
