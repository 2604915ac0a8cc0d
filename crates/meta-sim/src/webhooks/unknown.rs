//! Deliberately unknown shapes, so receivers prove they skip (and ideally count) what they do
//! not understand instead of failing the whole delivery. Meta adds fields and event types
//! without notice, and a 500 on an unknown event would make Meta retry it for days.

use serde_json::json;

use super::delivery::{Delivery, Entry, Item, Slot, object};
use super::messaging::{MessagingEvent, Platform};
use super::whatsapp::Business;

/// A delivery for an `object` no receiver knows (`user`-like future object).
pub fn object(entry_id: &str) -> Delivery {
    let mut entry = Entry::new(entry_id);
    entry.time = Some(chrono::Utc::now().timestamp());
    entry
        .changes
        .push(json!({ "field": "future_field", "value": { "anything": true } }));
    Delivery::new("scifer_unknown_object").with_entry(entry)
}

/// A Messenger `messaging[]` item whose event key is unknown (`messaging_future_event`).
pub fn messenger_event(page_id: &str, psid: &str) -> MessagingEvent {
    MessagingEvent::new(
        Platform::Messenger,
        page_id,
        psid,
        true,
        "messaging_future_event",
        json!({ "mid": crate::ids::messenger_mid(), "detail": "not documented yet" }),
    )
}

/// A Page `changes[]` item for an unknown field.
pub fn page_change(page_id: &str) -> Item {
    Item::change(
        object::PAGE,
        page_id,
        "future_page_field",
        json!({ "verb": "add", "thing_id": "1" }),
    )
    .with_entry_time(Some(chrono::Utc::now().timestamp()))
}

/// A Page entry with an unknown array next to `messaging`, plus one normal-looking key.
pub fn page_entry_with_unknown_array(page_id: &str) -> Delivery {
    let mut entry = Entry::new(page_id);
    entry.time = Some(chrono::Utc::now().timestamp_millis());
    entry.extra.insert("future_array".into(), json!([{ "x": 1 }]));
    Delivery::new(object::PAGE).with_entry(entry)
}

/// A WhatsApp change for an unknown field.
pub fn whatsapp_field(business: &Business) -> Item {
    business
        .change()
        .field("future_whatsapp_field")
        .extra("future", json!({ "x": 1 }))
        .into_item()
}

/// A WhatsApp inbound message of an unknown `type`.
pub fn whatsapp_message_type(business: &Business, wa_id: &str, name: &str) -> Item {
    let msg = super::whatsapp::Message::new(wa_id, "future_type", json!({ "opaque": "🛸" }));
    business
        .inbound(&super::whatsapp::Contact::new(wa_id, name), msg)
        .into_item()
}

/// A `messaging[]` item carrying an unknown key next to `sender`/`recipient` and no known
/// event key at all.
pub fn messaging_with_unknown_key(page_id: &str) -> Item {
    Item::raw(
        object::PAGE,
        page_id,
        Slot::Messaging,
        json!({
            "sender": { "id": "0" }, "recipient": { "id": page_id }, "timestamp": 0,
            "future_top_level_key": { "x": [1, 2, 3] }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_shapes_are_still_valid_envelopes() {
        let v = object("1").to_value();
        assert_eq!(v["object"], "scifer_unknown_object");
        assert_eq!(v["entry"][0]["changes"][0]["field"], "future_field");

        let v = messenger_event("p", "u").to_value();
        assert!(v.get("messaging_future_event").is_some());
        assert!(v.get("message").is_none());

        let b = Business::new("w", "n", "1");
        let v = Delivery::from_items([whatsapp_field(&b), whatsapp_message_type(&b, "1", "A")])
            .unwrap()
            .to_value();
        assert_eq!(v["entry"][0]["changes"][0]["field"], "future_whatsapp_field");
        assert_eq!(
            v["entry"][0]["changes"][1]["value"]["messages"][0]["type"],
            "future_type"
        );

        let v = Delivery::from_items([page_change("p"), messaging_with_unknown_key("p")])
            .unwrap()
            .to_value();
        assert_eq!(v["entry"][0]["changes"][0]["field"], "future_page_field");
        assert!(
            v["entry"][0]["messaging"][0]
                .get("future_top_level_key")
                .is_some()
        );
    }
}
