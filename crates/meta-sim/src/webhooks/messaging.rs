//! The `entry[].messaging[]` event shape shared by Messenger and Instagram.

use serde_json::{Map, Value, json};

use super::delivery::{Delivery, Item, Slot, object};
use crate::ids;

/// Current time in Unix milliseconds (Messenger/Instagram `timestamp`).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Messenger or Instagram: same event shape, different `object`, id formats and quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `object = page`.
    Messenger,
    /// `object = instagram`.
    Instagram,
}

impl Platform {
    /// The top-level `object`.
    pub fn object(self) -> &'static str {
        match self {
            Platform::Messenger => object::PAGE,
            Platform::Instagram => object::INSTAGRAM,
        }
    }

    /// A fresh message id in this platform's format.
    pub fn new_mid(self, account_id: &str) -> String {
        match self {
            Platform::Messenger => ids::messenger_mid(),
            Platform::Instagram => ids::instagram_mid(account_id),
        }
    }
}

/// One `messaging[]` item: `{sender, recipient, timestamp, <key>: {...}}`.
///
/// Built by the functions in [`super::messenger`] and [`super::instagram`]; the setters let a
/// test pin ids and times or bolt on unknown fields.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct MessagingEvent {
    platform: Platform,
    /// Page id or IG account id (`entry[].id`).
    account_id: String,
    sender: Value,
    recipient: Value,
    timestamp_ms: i64,
    /// The event key (`message`, `read`, `reaction`, ...).
    key: String,
    payload: Value,
    extra: Map<String, Value>,
    standby: bool,
    entry_time: Option<i64>,
}

impl MessagingEvent {
    /// A general event; `customer_is_sender` decides the direction (false for echoes).
    pub fn new(
        platform: Platform,
        account_id: &str,
        customer_id: &str,
        customer_is_sender: bool,
        key: &str,
        payload: Value,
    ) -> Self {
        let (sender, recipient) = if customer_is_sender {
            (json!({ "id": customer_id }), json!({ "id": account_id }))
        } else {
            (json!({ "id": account_id }), json!({ "id": customer_id }))
        };
        Self {
            platform,
            account_id: account_id.to_owned(),
            sender,
            recipient,
            timestamp_ms: now_ms(),
            key: key.to_owned(),
            payload,
            extra: Map::new(),
            standby: false,
            entry_time: None,
        }
    }

    /// Pin `timestamp` (ms). `entry.time` follows unless set separately.
    pub fn timestamp_ms(mut self, ms: i64) -> Self {
        self.timestamp_ms = ms;
        self
    }

    /// Pin `entry[].time` (ms) if this event opens the entry.
    pub fn entry_time_ms(mut self, ms: i64) -> Self {
        self.entry_time = Some(ms);
        self
    }

    /// Replace the payload's `mid` (no-op for events whose payload has none, like reads).
    pub fn mid(mut self, mid: impl Into<String>) -> Self {
        if let Some(obj) = self.payload.as_object_mut()
            && obj.contains_key("mid")
        {
            obj.insert("mid".into(), Value::String(mid.into()));
        }
        self
    }

    /// Set any key inside the payload (`reply_to`, `referral`, or an unknown one).
    pub fn field(mut self, key: &str, value: Value) -> Self {
        if let Some(obj) = self.payload.as_object_mut() {
            obj.insert(key.to_owned(), value);
        }
        self
    }

    /// Set a key next to `sender`/`recipient` (e.g. an unknown sibling of the event key).
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Mark the message as a reply to `mid` (`message.reply_to.mid`).
    pub fn reply_to(self, mid: &str) -> Self {
        self.field("reply_to", json!({ "mid": mid }))
    }

    /// Replace the sender with a chat-plugin guest `user_ref`.
    pub fn user_ref_sender(mut self, user_ref: &str) -> Self {
        self.sender = json!({ "user_ref": user_ref });
        self
    }

    /// Deliver in `entry[].standby[]` instead of `messaging[]`, as for apps that do not own
    /// the thread. Standby postbacks lose their `payload`, as Meta documents.
    pub fn standby(mut self) -> Self {
        self.standby = true;
        if self.key == "postback"
            && let Some(obj) = self.payload.as_object_mut()
        {
            obj.remove("payload");
        }
        self
    }

    /// The payload's `mid`, if any, so a test can refer to a generated id.
    pub fn mid_value(&self) -> Option<&str> {
        self.payload.get("mid").and_then(Value::as_str)
    }

    /// The event's `timestamp` (ms).
    pub fn timestamp(&self) -> i64 {
        self.timestamp_ms
    }

    /// The event key (`message`, `delivery`, ...).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// JSON of the `messaging[]` element.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("sender".into(), self.sender.clone());
        m.insert("recipient".into(), self.recipient.clone());
        m.insert("timestamp".into(), json!(self.timestamp_ms));
        m.insert(self.key.clone(), self.payload.clone());
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    /// As an item for [`Delivery::from_items`].
    pub fn into_item(self) -> Item {
        let body = self.to_value();
        Item {
            object: self.platform.object().to_owned(),
            entry_id: self.account_id,
            entry_time: Some(self.entry_time.unwrap_or(self.timestamp_ms)),
            slot: if self.standby {
                Slot::Standby
            } else {
                Slot::Messaging
            },
            body,
        }
    }

    /// A delivery holding just this event.
    pub fn into_delivery(self) -> Delivery {
        self.into_item().into_delivery()
    }
}

impl From<MessagingEvent> for Item {
    fn from(e: MessagingEvent) -> Self {
        e.into_item()
    }
}

/// Kinds of attachment a customer can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// `image`.
    Image,
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// `file`.
    File,
}

impl AttachmentKind {
    /// The wire `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Video => "video",
            AttachmentKind::Audio => "audio",
            AttachmentKind::File => "file",
        }
    }
}

/// A reaction change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// `action: react` with the reaction name (`love`, `like`, ...) and emoji.
    React {
        /// Name such as `love`.
        reaction: String,
        /// The emoji, e.g. `❤`.
        emoji: String,
    },
    /// `action: unreact`; Meta omits `reaction`/`emoji`.
    Unreact,
}

// Shared constructors, used by both the messenger and instagram modules.

pub(crate) fn message(
    p: Platform,
    account: &str,
    customer: &str,
    body: Map<String, Value>,
) -> MessagingEvent {
    let mut payload = Map::new();
    payload.insert("mid".into(), Value::String(p.new_mid(account)));
    payload.extend(body);
    MessagingEvent::new(p, account, customer, true, "message", Value::Object(payload))
}

pub(crate) fn text(p: Platform, account: &str, customer: &str, text: &str) -> MessagingEvent {
    let mut body = Map::new();
    body.insert("text".into(), json!(text));
    message(p, account, customer, body)
}

pub(crate) fn attachment(
    p: Platform,
    account: &str,
    customer: &str,
    kind: AttachmentKind,
    url: &str,
) -> MessagingEvent {
    let mut body = Map::new();
    body.insert(
        "attachments".into(),
        json!([{ "type": kind.as_str(), "payload": { "url": url } }]),
    );
    message(p, account, customer, body)
}

pub(crate) fn echo(p: Platform, account: &str, customer: &str, app_id: u64, text: &str) -> MessagingEvent {
    let payload = json!({
        "mid": p.new_mid(account),
        "is_echo": true,
        "app_id": app_id,
        "text": text,
    });
    MessagingEvent::new(p, account, customer, false, "message", payload)
}

pub(crate) fn reaction(
    p: Platform,
    account: &str,
    customer: &str,
    target_mid: &str,
    r: &Reaction,
) -> MessagingEvent {
    let payload = match r {
        Reaction::React { reaction, emoji } => {
            json!({ "mid": target_mid, "action": "react", "reaction": reaction, "emoji": emoji })
        }
        Reaction::Unreact => json!({ "mid": target_mid, "action": "unreact" }),
    };
    MessagingEvent::new(p, account, customer, true, "reaction", payload)
}

/// Which handover event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// `pass_thread_control`: the previous owner (None = idle thread) passed control.
    Pass {
        /// `previous_owner_app_id` (null when the thread was idle).
        previous_owner_app_id: Option<String>,
        /// `new_owner_app_id`.
        new_owner_app_id: String,
    },
    /// `take_thread_control`.
    Take {
        /// `previous_owner_app_id`.
        previous_owner_app_id: Option<String>,
        /// `new_owner_app_id`.
        new_owner_app_id: String,
    },
    /// `request_thread_control`.
    Request {
        /// `requested_owner_app_id`.
        requested_owner_app_id: String,
    },
}

/// A handover event (`messaging_handovers`) for the thread with `customer`.
pub(crate) fn handover(
    p: Platform,
    account: &str,
    customer: &str,
    event: &Handover,
    metadata: Option<&str>,
) -> MessagingEvent {
    let (key, mut body) = match event {
        Handover::Pass {
            previous_owner_app_id,
            new_owner_app_id,
        } => (
            "pass_thread_control",
            json!({ "previous_owner_app_id": previous_owner_app_id, "new_owner_app_id": new_owner_app_id }),
        ),
        Handover::Take {
            previous_owner_app_id,
            new_owner_app_id,
        } => (
            "take_thread_control",
            json!({ "previous_owner_app_id": previous_owner_app_id, "new_owner_app_id": new_owner_app_id }),
        ),
        Handover::Request {
            requested_owner_app_id,
        } => (
            "request_thread_control",
            json!({ "requested_owner_app_id": requested_owner_app_id }),
        ),
    };
    if let (Some(md), Some(obj)) = (metadata, body.as_object_mut()) {
        obj.insert("metadata".into(), json!(md));
    }
    MessagingEvent::new(p, account, customer, true, key, body)
}
