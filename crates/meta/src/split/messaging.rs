//! `messaging[]` / `standby[]` items of Messenger and Instagram.

use scifer_proto::events::v1::{
    Attachment, Delivery, Handover, HandoverKind, InboundMessage, MessageEdit, OutboundEcho, Postback,
    Reaction, Read, meta_event::Kind,
};
use serde_json::Value;

use super::{Origin, Sink, parse_item, to_i32};
use crate::webhook::{
    MESSAGING_ENVELOPE_KEYS, MESSAGING_EVENT_KEYS, Message, MessageAttachment, MessagingItem, ThreadControl,
};

pub(super) fn split_item(sink: &mut Sink<'_>, origin: &Origin<'_>, entry_time_ms: Option<i64>, item: &Value) {
    let prefix = origin.channel.prefix();
    let parsed = match parse_item::<MessagingItem>(item, "messaging item") {
        Ok(parsed) => parsed,
        Err(reason) => {
            sink.unhandled(prefix, origin.account_id, &event_keys(item), &reason, item);
            return;
        }
    };
    match map_item(origin, &parsed, entry_time_ms, item) {
        Ok((event_id, kind)) => sink.event(origin, event_id, item, kind),
        Err(reason) => sink.unhandled(prefix, origin.account_id, &event_keys(item), &reason, item),
    }
}

/// The non-envelope keys of an item, for `UnhandledMetaItem.field`.
fn event_keys(item: &Value) -> String {
    let Value::Object(fields) = item else {
        return String::new();
    };
    let mut keys: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !MESSAGING_ENVELOPE_KEYS.contains(k))
        .collect();
    keys.sort_unstable();
    keys.join(",")
}

fn map_item(
    origin: &Origin<'_>,
    parsed: &MessagingItem,
    entry_time_ms: Option<i64>,
    item: &Value,
) -> Result<(String, Kind), String> {
    let sender = parsed.sender.as_ref().and_then(|p| p.key()).unwrap_or("");
    let recipient = parsed.recipient.as_ref().and_then(|p| p.key()).unwrap_or("");
    // Ids only use the item's own timestamp: entry.time can differ when Meta re-batches.
    let ts = parsed.timestamp;
    let at_ms = ts.or(entry_time_ms).unwrap_or(0);
    let ts_part = ts.map(|t| t.to_string()).unwrap_or_default();

    let contact = |who: &'static str, id: &str| -> Result<String, String> {
        if id.is_empty() {
            Err(format!("messaging item without {who}.id"))
        } else {
            Ok(id.to_owned())
        }
    };

    if let Some(message) = &parsed.message {
        let mid = message.mid.clone().unwrap_or_default();
        if message.is_echo {
            let contact_id = contact("recipient", recipient)?;
            let event_id = origin.event_id("echo", &[&mid], item);
            return Ok((event_id, Kind::Echo(echo(message, contact_id, at_ms))));
        }
        let contact_id = contact("sender", sender)?;
        let event_id = origin.event_id("message", &[&mid], item);
        return Ok((event_id, Kind::Message(inbound(message, contact_id, at_ms))));
    }

    if let Some(delivery) = &parsed.delivery {
        let contact_id = contact("sender", sender)?;
        let watermark = delivery.watermark.map(|w| w.to_string()).unwrap_or_default();
        let event_id = origin.event_id("delivery", &[&contact_id, &watermark], item);
        let event = Delivery {
            contact_id,
            external_ids: delivery.mids.clone(),
            watermark_ms: delivery.watermark.unwrap_or(0),
        };
        return Ok((event_id, Kind::Delivery(event)));
    }

    if let Some(read) = &parsed.read {
        let contact_id = contact("sender", sender)?;
        let event_id = match (&read.mid, read.watermark) {
            (Some(mid), _) => origin.event_id("read", &[mid], item),
            (None, watermark) => {
                let watermark = watermark.map(|w| w.to_string()).unwrap_or_default();
                origin.event_id("read", &[&contact_id, &watermark], item)
            }
        };
        let event = Read {
            contact_id,
            watermark_ms: read.watermark.unwrap_or(0),
            external_id: read.mid.clone().unwrap_or_default(),
        };
        return Ok((event_id, Kind::Read(event)));
    }

    if let Some(reaction) = &parsed.reaction {
        let contact_id = contact("sender", sender)?;
        let emoji = reaction.emoji.clone().unwrap_or_default();
        let name = reaction.reaction.clone().unwrap_or_default();
        let added = match reaction.action.as_deref() {
            Some("react") => true,
            Some("unreact") => false,
            None => !emoji.is_empty() || !name.is_empty(),
            Some(other) => return Err(format!("unknown reaction action {other:?}")),
        };
        let target = reaction.mid.clone().unwrap_or_default();
        let action = if added { "react" } else { "unreact" };
        let event_id = origin.event_id("reaction", &[&target, &contact_id, action, &ts_part], item);
        let event = Reaction {
            contact_id,
            target_external_id: target,
            added,
            emoji,
            reaction: name,
            at_ms,
        };
        return Ok((event_id, Kind::Reaction(event)));
    }

    if let Some(edit) = &parsed.message_edit {
        let contact_id = contact("sender", sender)?;
        let mid = edit.mid.clone().unwrap_or_default();
        let num_edit = edit.num_edit.map(|n| n.to_string()).unwrap_or_default();
        let event_id = origin.event_id("edit", &[&mid, &num_edit], item);
        let event = MessageEdit {
            contact_id,
            external_id: mid,
            text: edit.text.clone().unwrap_or_default(),
            num_edit: edit.num_edit.map(to_i32).unwrap_or(0),
            at_ms,
        };
        return Ok((event_id, Kind::Edit(event)));
    }

    if let Some(postback) = &parsed.postback {
        let contact_id = contact("sender", sender)?;
        let event_id = match &postback.mid {
            Some(mid) => origin.event_id("postback", &[mid], item),
            None => origin.event_id("postback", &[&contact_id, &ts_part], item),
        };
        let event = Postback {
            contact_id,
            external_id: postback.mid.clone().unwrap_or_default(),
            title: postback.title.clone().unwrap_or_default(),
            payload: postback.payload.clone().unwrap_or_default(),
            at_ms,
        };
        return Ok((event_id, Kind::Postback(event)));
    }

    let handover = [
        (&parsed.pass_thread_control, HandoverKind::Pass, "pass"),
        (&parsed.take_thread_control, HandoverKind::Take, "take"),
        (&parsed.request_thread_control, HandoverKind::Request, "request"),
    ]
    .into_iter()
    .find_map(|(control, kind, word)| control.as_ref().map(|c| (Some(c), kind, word)))
    .or_else(|| {
        parsed
            .app_roles
            .as_ref()
            .map(|_| (None, HandoverKind::AppRoles, "app_roles"))
    });
    if let Some((control, kind, word)) = handover {
        let contact_id = contact("sender", sender)?;
        let event_id = origin.event_id("handover", &[&contact_id, word, &ts_part], item);
        let event = handover_event(control, kind, contact_id, at_ms);
        return Ok((event_id, Kind::Handover(event)));
    }

    let keys = event_keys(item);
    Err(if keys.is_empty() {
        "messaging item without an event".to_owned()
    } else if keys.split(',').any(|k| MESSAGING_EVENT_KEYS.contains(&k)) {
        format!("messaging event with an empty body: {keys}")
    } else {
        format!("unhandled messaging event: {keys}")
    })
}

fn inbound(message: &Message, contact_id: String, at_ms: i64) -> InboundMessage {
    InboundMessage {
        external_id: message.mid.clone().unwrap_or_default(),
        contact_id,
        contact_name: String::new(),
        sent_at_ms: at_ms,
        text: message.text.clone().unwrap_or_default(),
        attachments: attachments(&message.attachments),
        reply_to_external_id: message
            .reply_to
            .as_ref()
            .and_then(|r| r.mid.clone())
            .unwrap_or_default(),
        quick_reply_payload: message
            .quick_reply
            .as_ref()
            .and_then(|q| q.payload.clone())
            .unwrap_or_default(),
        is_deleted: message.is_deleted,
        is_unsupported: message.is_unsupported,
        message_type: String::new(),
    }
}

fn echo(message: &Message, contact_id: String, at_ms: i64) -> OutboundEcho {
    OutboundEcho {
        external_id: message.mid.clone().unwrap_or_default(),
        contact_id,
        sent_at_ms: at_ms,
        text: message.text.clone().unwrap_or_default(),
        attachments: attachments(&message.attachments),
        app_id: message.app_id.clone().unwrap_or_default(),
        metadata: message.metadata.clone().unwrap_or_default(),
    }
}

fn attachments(items: &[MessageAttachment]) -> Vec<Attachment> {
    items
        .iter()
        .map(|a| {
            let payload = a.payload.clone().unwrap_or_default();
            Attachment {
                r#type: a.kind.clone().unwrap_or_default(),
                url: payload.url.unwrap_or_default(),
                sticker_id: payload.sticker_id.unwrap_or_default(),
                ..Attachment::default()
            }
        })
        .collect()
}

/// `request_thread_control` names the requester in `requested_owner_app_id`; it is reported as
/// the would-be new owner.
fn handover_event(
    control: Option<&ThreadControl>,
    kind: HandoverKind,
    contact_id: String,
    at_ms: i64,
) -> Handover {
    let control = control.cloned().unwrap_or_default();
    Handover {
        contact_id,
        kind: kind.into(),
        previous_owner_app_id: control.previous_owner_app_id.unwrap_or_default(),
        new_owner_app_id: control
            .new_owner_app_id
            .or(control.requested_owner_app_id)
            .unwrap_or_default(),
        metadata: control.metadata.unwrap_or_default(),
        at_ms,
    }
}
