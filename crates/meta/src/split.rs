//! Splitting one webhook delivery into one bus event per item.
//!
//! Every item of a parsed delivery ends up either as a [`MetaEvent`] or as an
//! [`UnhandledMetaItem`]; nothing is dropped. Only a body that is not a JSON object is an error.
//!
//! # Event ids
//!
//! `event_id` is the `Nats-Msg-Id` and the consumers' dedup key, so it is derived only from
//! Meta's ids and values: identical across Meta's retries (even re-batched with other items) and
//! distinct for distinct items. Ids never contain `delivery_id`, entry or item positions, or
//! `received_at`. The channel prefix is `fb` (object `page`), `ig` (`instagram`) or `wa`
//! (`whatsapp_business_account`); `{ts}` is the item's own `timestamp`.
//!
//! | item | id |
//! |---|---|
//! | message | `{fb,ig}:message:{mid}` |
//! | echo (`is_echo`) | `{fb,ig}:echo:{mid}` |
//! | delivery | `fb:delivery:{psid}:{watermark}` |
//! | read with `mid` (Instagram) | `ig:read:{mid}` |
//! | read with `watermark` (Messenger) | `fb:read:{psid}:{watermark}` |
//! | reaction | `{fb,ig}:reaction:{target_mid}:{psid}:{react\|unreact}:{ts}` |
//! | message_edit | `{fb,ig}:edit:{mid}:{num_edit}` |
//! | postback | `{fb,ig}:postback:{mid}`, or `{fb,ig}:postback:{psid}:{ts}` without `mid` |
//! | handover | `{fb,ig}:handover:{psid}:{pass\|take\|request\|app_roles}:{ts}` |
//! | Page feed / IG comments, mentions | `{fb,ig}:change:{field}:{object_id}:{verb or -}:{h16}` |
//! | WhatsApp message | `wa:message:{wamid}` |
//! | WhatsApp reaction message | `wa:reaction:{wamid}` |
//! | WhatsApp status | `wa:status:{wamid}:{status}` |
//! | WhatsApp template status (WABA) | `wa:template_status:{template_id}:{event}:{entry time}` |
//! | unhandled item | `{fb,ig,wa,meta}:unhandled:h:{sha256}` |
//!
//! `{h16}` is the first 16 hex digits of the SHA-256 of the change's canonical `value`: a change
//! has no id of its own, and object id, verb and time alone collide (two reactions to one post in
//! the same second, two edits of one comment).
//!
//! When an id part is missing or is not made only of `[A-Za-z0-9._=+/-]` (so `:` cannot blur the
//! boundaries between parts and nothing unexpected reaches a NATS header), the id falls back to
//! `<channel>:<kind>:h:<sha256 hex>` over the canonical JSON (keys sorted, compact) of
//! `{"account": <account id>, "item": <item>}`. Unhandled items always use that form, with the
//! object and field in the hashed scope (`meta` is the prefix for unknown objects). Identical
//! unhandled items for the same account therefore collapse, which is what retries need.

mod changes;
mod ids;
mod messaging;
mod peek;
mod templates;
mod whatsapp;

pub use peek::peek_object;

use prost_types::Timestamp;
use scifer_proto::events::v1::{ChannelKind, MetaEvent, UnhandledMetaItem, meta_event};
use serde_json::{Map, Value, json};

use crate::webhook::{OBJECT_INSTAGRAM, OBJECT_PAGE, OBJECT_WHATSAPP};

/// The events and unhandled items of one delivery, in delivery order within each list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub events: Vec<MetaEvent>,
    pub unhandled: Vec<UnhandledMetaItem>,
}

/// The body cannot be split at all; the caller quarantines it.
#[derive(Debug, thiserror::Error)]
pub enum MalformedDelivery {
    /// Not parseable JSON (includes invalid UTF-8, lone surrogate escapes, numbers out of range,
    /// nesting deeper than 128 and trailing bytes).
    #[error("delivery body is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// Valid JSON whose top level is not an object.
    #[error("delivery body is a JSON {found}, not an object")]
    NotAnObject { found: &'static str },
}

/// Splits a delivery whose signature was already checked into bus events.
///
/// `delivery_id` (hex SHA-256 of the raw body) and `received_at` are copied into every output.
/// Unknown objects, unknown fields or event keys and unexpected shapes become
/// [`UnhandledMetaItem`]s with a `reason`; see the [module docs](self) for the id scheme.
///
/// Decisions worth knowing:
/// - `raw_item_json` is the item re-serialized from the parsed JSON (compact), not the exact
///   bytes Meta sent.
/// - Standby items are mapped like messaging items, with `standby` set.
/// - WhatsApp messages of any `type` with an id and a sender become [`InboundMessage`]s with
///   `message_type` set (`unsupported`/`unknown` also set `is_unsupported`), except `reaction`,
///   which becomes a [`Reaction`]. `value.errors[]` (system errors) are unhandled items.
/// - A WhatsApp status other than sent/delivered/read/failed/played is unhandled, as the proto
///   enum cannot carry it.
///
/// [`InboundMessage`]: scifer_proto::events::v1::InboundMessage
/// [`Reaction`]: scifer_proto::events::v1::Reaction
pub fn split_delivery(
    body: &[u8],
    delivery_id: &str,
    received_at: Timestamp,
) -> Result<Split, MalformedDelivery> {
    let root: Value = serde_json::from_slice(body).map_err(MalformedDelivery::NotJson)?;
    let Value::Object(root) = root else {
        return Err(MalformedDelivery::NotAnObject {
            found: json_type(&root),
        });
    };
    let object = root.get("object").and_then(Value::as_str).unwrap_or("");
    let mut sink = Sink {
        delivery_id,
        received_at,
        object,
        split: Split::default(),
    };
    let Some(channel) = Channel::from_object(object) else {
        let reason = if root.contains_key("object") {
            format!("unknown object {object:?}")
        } else {
            "delivery without an object".to_owned()
        };
        split_unknown_object(&mut sink, &root, &reason);
        return Ok(sink.split);
    };
    match root.get("entry") {
        Some(Value::Array(entries)) => {
            for entry in entries {
                split_entry(&mut sink, channel, entry);
            }
        }
        _ => {
            let raw = Value::Object(root.clone());
            sink.unhandled(channel.prefix(), "", "", "delivery without an entry array", &raw);
        }
    }
    Ok(sink.split)
}

/// Keeps an unknown object's entries apart (one item per entry) so each can be replayed later.
fn split_unknown_object(sink: &mut Sink<'_>, root: &Map<String, Value>, reason: &str) {
    match root.get("entry") {
        Some(Value::Array(entries)) if !entries.is_empty() => {
            for entry in entries {
                let account = entry.get("id").and_then(id_string).unwrap_or_default();
                sink.unhandled("meta", &account, "", reason, entry);
            }
        }
        _ => {
            let raw = Value::Object(root.clone());
            sink.unhandled("meta", "", "", reason, &raw);
        }
    }
}

/// Item arrays each channel defines on an entry, in the order they are split.
fn entry_arrays(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::Messenger | Channel::Instagram => &["messaging", "standby", "changes"],
        Channel::WhatsApp => &["changes"],
    }
}

fn split_entry(sink: &mut Sink<'_>, channel: Channel, entry: &Value) {
    let Value::Object(fields) = entry else {
        sink.unhandled(channel.prefix(), "", "", "entry is not an object", entry);
        return;
    };
    let entry_id = fields.get("id").and_then(id_string).unwrap_or_default();
    let entry_time = fields.get("time").and_then(int);
    let known = entry_arrays(channel);
    let mut had_items = false;

    for &key in known {
        let Some(value) = fields.get(key) else {
            continue;
        };
        had_items = true;
        let Value::Array(items) = value else {
            let reason = format!("entry.{key} is not an array");
            sink.unhandled(channel.prefix(), &entry_id, key, &reason, value);
            continue;
        };
        for item in items {
            match (channel, key) {
                (Channel::WhatsApp, _) => whatsapp::split_change(sink, &entry_id, entry_time, item),
                (_, "changes") => changes::split_change(sink, channel, &entry_id, entry_time, item),
                (_, _) => {
                    let origin = Origin {
                        channel,
                        account_id: &entry_id,
                        business_account_id: "",
                        standby: key == "standby",
                    };
                    messaging::split_item(sink, &origin, entry_time, item);
                }
            }
        }
    }

    // Arrays Scifer does not know for this object still carry items; keep them. `Value` maps
    // iterate in sorted order without serde_json's `preserve_order`, in body order with it;
    // either way each element is kept.
    for (key, value) in fields {
        if known.contains(&key.as_str()) {
            continue;
        }
        if let Value::Array(items) = value {
            had_items = true;
            let reason = format!("unexpected entry.{key} for object {:?}", sink.object);
            for item in items {
                sink.unhandled(channel.prefix(), &entry_id, key, &reason, item);
            }
        }
    }

    if !had_items {
        sink.unhandled(channel.prefix(), &entry_id, "", "entry without items", entry);
    }
}

/// The channels Scifer maps, keyed by the delivery's `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Messenger,
    Instagram,
    WhatsApp,
}

impl Channel {
    pub(crate) fn from_object(object: &str) -> Option<Self> {
        match object {
            OBJECT_PAGE => Some(Self::Messenger),
            OBJECT_INSTAGRAM => Some(Self::Instagram),
            OBJECT_WHATSAPP => Some(Self::WhatsApp),
            _ => None,
        }
    }

    pub(crate) fn kind(self) -> ChannelKind {
        match self {
            Self::Messenger => ChannelKind::Messenger,
            Self::Instagram => ChannelKind::Instagram,
            Self::WhatsApp => ChannelKind::Whatsapp,
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::Messenger => "fb",
            Self::Instagram => "ig",
            Self::WhatsApp => "wa",
        }
    }
}

/// Where an item was found: the account it belongs to and whether it came from `standby[]`.
pub(crate) struct Origin<'a> {
    pub(crate) channel: Channel,
    pub(crate) account_id: &'a str,
    pub(crate) business_account_id: &'a str,
    pub(crate) standby: bool,
}

impl Origin<'_> {
    /// `{ch}:{kind}:{parts}` when every part is usable, else the hashed fallback.
    pub(crate) fn event_id(&self, kind: &str, parts: &[&str], item: &Value) -> String {
        let prefix = self.channel.prefix();
        ids::readable(prefix, kind, parts).unwrap_or_else(|| {
            let scope = json!({"account": self.account_id, "item": item});
            ids::hashed(prefix, kind, &scope)
        })
    }
}

/// Collects the output of one delivery.
pub(crate) struct Sink<'a> {
    delivery_id: &'a str,
    received_at: Timestamp,
    object: &'a str,
    split: Split,
}

impl Sink<'_> {
    pub(crate) fn event(
        &mut self,
        origin: &Origin<'_>,
        event_id: String,
        item: &Value,
        kind: meta_event::Kind,
    ) {
        self.split.events.push(MetaEvent {
            event_id,
            delivery_id: self.delivery_id.to_owned(),
            received_at: Some(self.received_at),
            channel_kind: origin.channel.kind().into(),
            account_id: origin.account_id.to_owned(),
            business_account_id: origin.business_account_id.to_owned(),
            standby: origin.standby,
            raw_item_json: raw_json(item),
            // Webhook deliveries; inbox's reconciliation sets it on what it reads back.
            reconciled: false,
            kind: Some(kind),
        });
    }

    pub(crate) fn unhandled(
        &mut self,
        prefix: &str,
        account_id: &str,
        field: &str,
        reason: &str,
        item: &Value,
    ) {
        let scope = json!({
            "object": self.object,
            "account": account_id,
            "field": field,
            "item": item,
        });
        self.split.unhandled.push(UnhandledMetaItem {
            event_id: ids::hashed(prefix, "unhandled", &scope),
            delivery_id: self.delivery_id.to_owned(),
            received_at: Some(self.received_at),
            object: self.object.to_owned(),
            account_id: account_id.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
            raw_item_json: raw_json(item),
        });
    }
}

fn raw_json(item: &Value) -> String {
    serde_json::to_string(item)
        .unwrap_or_else(|_| String::from_utf8_lossy(&ids::canonical_json(item)).into_owned())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses one item into its webhook type. Only objects qualify: serde's derived structs would
/// also accept an array, reading fields by position.
pub(crate) fn parse_item<T: serde::de::DeserializeOwned>(item: &Value, what: &str) -> Result<T, String> {
    if !item.is_object() {
        return Err(format!("{what} is a JSON {}, not an object", json_type(item)));
    }
    T::deserialize(item).map_err(|err| format!("malformed {what}: {err}"))
}

/// An id that Meta sends as a string or a number.
fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Seconds to milliseconds without overflow on hostile input.
pub(crate) fn secs_to_ms(secs: i64) -> i64 {
    secs.saturating_mul(1000)
}

/// Meta's counters and codes into proto `int32`, saturating on hostile input.
pub(crate) fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests;
