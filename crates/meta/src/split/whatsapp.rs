//! `changes[]` of WhatsApp Business Accounts: `messages[]`, `statuses[]` and `errors[]`.

use scifer_proto::events::v1::{
    Attachment, InboundMessage, Reaction, WhatsAppStatus, WhatsAppStatusKind, meta_event::Kind,
};
use serde_json::Value;

use super::{Channel, Origin, Sink, parse_item, secs_to_ms, to_i32};
use crate::webhook::{
    Change, WhatsAppContact, WhatsAppMedia, WhatsAppMessage, WhatsAppStatusItem, WhatsAppValue,
};

const PREFIX: &str = "wa";

/// `waba_id` is `entry.id`. Unhandled items name the phone number when the value has one and
/// the WABA otherwise (template, quality and account updates are WABA-level).
pub(super) fn split_change(sink: &mut Sink<'_>, waba_id: &str, entry_time: Option<i64>, item: &Value) {
    let change = match parse_item::<Change>(item, "change") {
        Ok(change) => change,
        Err(reason) => {
            sink.unhandled(PREFIX, waba_id, "", &reason, item);
            return;
        }
    };
    let Some(field) = change.field.as_deref() else {
        sink.unhandled(PREFIX, waba_id, "", "change without a field", item);
        return;
    };
    if field == super::templates::FIELD {
        super::templates::split_status_update(sink, waba_id, entry_time, item);
        return;
    }
    if field != "messages" {
        let reason = format!("unhandled whatsapp change field {field:?}");
        sink.unhandled(PREFIX, waba_id, field, &reason, item);
        return;
    }
    let value = match parse_item::<WhatsAppValue>(&change.value, "messages value") {
        Ok(value) => value,
        Err(reason) => {
            sink.unhandled(PREFIX, waba_id, field, &reason, item);
            return;
        }
    };
    // Without the phone number id an event cannot be routed to a channel; keep the change whole.
    let Some(phone_number_id) = value.metadata.as_ref().and_then(|m| m.phone_number_id.clone()) else {
        let reason = "messages value without metadata.phone_number_id";
        sink.unhandled(PREFIX, waba_id, field, reason, item);
        return;
    };
    let origin = Origin {
        channel: Channel::WhatsApp,
        account_id: &phone_number_id,
        business_account_id: waba_id,
        standby: false,
    };

    let mut had_items = false;
    for (key, list) in [
        ("messages", &value.messages),
        ("statuses", &value.statuses),
        ("errors", &value.errors),
    ] {
        let Some(list) = list else { continue };
        let Value::Array(entries) = list else {
            let reason = format!("value.{key} is not an array");
            sink.unhandled(PREFIX, &phone_number_id, field, &reason, list);
            had_items = true;
            continue;
        };
        had_items |= !entries.is_empty();
        for entry in entries {
            match key {
                "messages" => split_message(sink, &origin, &value.contacts, entry),
                "statuses" => split_status(sink, &origin, entry),
                _ => {
                    let reason = system_error_reason(entry);
                    sink.unhandled(PREFIX, &phone_number_id, field, &reason, entry);
                }
            }
        }
    }
    if !had_items {
        let reason = "messages value without messages, statuses or errors";
        sink.unhandled(PREFIX, &phone_number_id, field, reason, item);
    }
}

fn system_error_reason(entry: &Value) -> String {
    let code = entry.get("code").map(Value::to_string).unwrap_or_default();
    let title = entry.get("title").and_then(Value::as_str).unwrap_or("");
    format!("whatsapp system error {code} {title}")
        .trim_end()
        .to_owned()
}

fn split_message(sink: &mut Sink<'_>, origin: &Origin<'_>, contacts: &[WhatsAppContact], item: &Value) {
    let message = match parse_item::<WhatsAppMessage>(item, "whatsapp message") {
        Ok(message) => message,
        Err(reason) => {
            sink.unhandled(PREFIX, origin.account_id, "messages", &reason, item);
            return;
        }
    };
    let contact_id = message.from.clone().or_else(|| message.from_user_id.clone());
    let (Some(wamid), Some(contact_id)) = (message.id.clone(), contact_id) else {
        let reason = "whatsapp message without id or sender";
        sink.unhandled(PREFIX, origin.account_id, "messages", reason, item);
        return;
    };
    let at_ms = message.timestamp.map(secs_to_ms).unwrap_or(0);
    let kind = message.kind.clone().unwrap_or_default();

    if kind == "reaction" {
        let Some(reaction) = message.reaction.as_ref().filter(|r| r.message_id.is_some()) else {
            let reason = "whatsapp reaction without reaction.message_id";
            sink.unhandled(PREFIX, origin.account_id, "messages", reason, item);
            return;
        };
        let emoji = reaction.emoji.clone().unwrap_or_default();
        let event = Reaction {
            contact_id,
            target_external_id: reaction.message_id.clone().unwrap_or_default(),
            added: !emoji.is_empty(),
            emoji,
            reaction: String::new(),
            at_ms,
        };
        let event_id = origin.event_id("reaction", &[&wamid], item);
        sink.event(origin, event_id, item, Kind::Reaction(event));
        return;
    }

    let event = InboundMessage {
        external_id: wamid.clone(),
        contact_name: contact_name(contacts, &message).unwrap_or_default(),
        contact_id,
        sent_at_ms: at_ms,
        text: text(&message).unwrap_or_default(),
        attachments: attachments(&message),
        reply_to_external_id: message
            .context
            .as_ref()
            .and_then(|c| c.id.clone())
            .unwrap_or_default(),
        quick_reply_payload: quick_reply_payload(&message).unwrap_or_default(),
        is_deleted: false,
        is_unsupported: matches!(kind.as_str(), "unsupported" | "unknown"),
        message_type: kind,
    };
    let event_id = origin.event_id("message", &[&wamid], item);
    sink.event(origin, event_id, item, Kind::Message(event));
}

/// The profile name of the sender, matched on `wa_id` or, for users who hide their number, on
/// the business-scoped `user_id`.
fn contact_name(contacts: &[WhatsAppContact], message: &WhatsAppMessage) -> Option<String> {
    let matches = |contact: &&WhatsAppContact| {
        let by_wa_id = message.from.is_some() && contact.wa_id == message.from;
        let by_user_id = message.from_user_id.is_some() && contact.user_id == message.from_user_id;
        by_wa_id || by_user_id
    };
    contacts.iter().find(matches)?.profile.as_ref()?.name.clone()
}

/// What the customer typed or tapped: interactive and button replies are reported by their
/// visible title, flows by their body, system notices by their description.
fn text(message: &WhatsAppMessage) -> Option<String> {
    if let Some(text) = message.text.as_ref().and_then(|t| t.body.clone()) {
        return Some(text);
    }
    if let Some(interactive) = &message.interactive {
        let reply = interactive
            .button_reply
            .as_ref()
            .or(interactive.list_reply.as_ref());
        if let Some(title) = reply.and_then(|r| r.title.clone()) {
            return Some(title);
        }
        if let Some(body) = interactive.nfm_reply.as_ref().and_then(|f| f.body.clone()) {
            return Some(body);
        }
    }
    if let Some(text) = message.button.as_ref().and_then(|b| b.text.clone()) {
        return Some(text);
    }
    message.system.as_ref().and_then(|s| s.body.clone())
}

fn quick_reply_payload(message: &WhatsAppMessage) -> Option<String> {
    if let Some(interactive) = &message.interactive {
        let reply = interactive
            .button_reply
            .as_ref()
            .or(interactive.list_reply.as_ref());
        if let Some(id) = reply.and_then(|r| r.id.clone()) {
            return Some(id);
        }
    }
    message.button.as_ref().and_then(|b| b.payload.clone())
}

fn attachments(message: &WhatsAppMessage) -> Vec<Attachment> {
    [
        ("image", &message.image),
        ("video", &message.video),
        ("audio", &message.audio),
        ("sticker", &message.sticker),
        ("document", &message.document),
    ]
    .into_iter()
    .filter_map(|(kind, media)| media.as_ref().map(|m| media_attachment(kind, m)))
    .collect()
}

fn media_attachment(kind: &str, media: &WhatsAppMedia) -> Attachment {
    Attachment {
        r#type: kind.to_owned(),
        media_id: media.id.clone().unwrap_or_default(),
        mime_type: media.mime_type.clone().unwrap_or_default(),
        sha256: media.sha256.clone().unwrap_or_default(),
        caption: media.caption.clone().unwrap_or_default(),
        filename: media.filename.clone().unwrap_or_default(),
        ..Attachment::default()
    }
}

fn split_status(sink: &mut Sink<'_>, origin: &Origin<'_>, item: &Value) {
    let status = match parse_item::<WhatsAppStatusItem>(item, "whatsapp status") {
        Ok(status) => status,
        Err(reason) => {
            sink.unhandled(PREFIX, origin.account_id, "messages", &reason, item);
            return;
        }
    };
    let (Some(wamid), Some(word)) = (status.id.clone(), status.status.clone()) else {
        let reason = "whatsapp status without id or status";
        sink.unhandled(PREFIX, origin.account_id, "messages", reason, item);
        return;
    };
    let kind = match word.as_str() {
        "sent" => WhatsAppStatusKind::Sent,
        "delivered" => WhatsAppStatusKind::Delivered,
        "read" => WhatsAppStatusKind::Read,
        "failed" => WhatsAppStatusKind::Failed,
        "played" => WhatsAppStatusKind::Played,
        _ => {
            let reason = format!("unknown whatsapp status {word:?}");
            sink.unhandled(PREFIX, origin.account_id, "messages", &reason, item);
            return;
        }
    };
    let error = status.errors.first().cloned().unwrap_or_default();
    let event = WhatsAppStatus {
        external_id: wamid.clone(),
        status: kind.into(),
        recipient_id: status
            .recipient_id
            .or(status.recipient_user_id)
            .unwrap_or_default(),
        at_ms: status.timestamp.map(secs_to_ms).unwrap_or(0),
        error_code: error.code.map(to_i32).unwrap_or(0),
        error_title: error.title.unwrap_or_default(),
        error_detail: error
            .error_data
            .and_then(|d| d.details)
            .or(error.message)
            .unwrap_or_default(),
        biz_opaque_callback_data: status.biz_opaque_callback_data.unwrap_or_default(),
    };
    let event_id = origin.event_id("status", &[&wamid, &word], item);
    sink.event(origin, event_id, item, Kind::WhatsappStatus(event));
}
