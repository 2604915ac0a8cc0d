//! WhatsApp Cloud API (`object = whatsapp_business_account`) deliveries: `changes[].value` with
//! `messaging_product`, `metadata`, `contacts[]`, `messages[]`, `statuses[]`. Timestamps here
//! are **strings** of Unix seconds, unlike Messenger's millisecond numbers.

use serde_json::{Map, Value, json};

use super::delivery::{Delivery, Item, object};
use crate::ids;

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The business side: WABA and one of its phone numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    /// `entry[].id`.
    pub waba_id: String,
    /// `metadata.phone_number_id`.
    pub phone_number_id: String,
    /// `metadata.display_phone_number` (digits, no `+`).
    pub display_phone_number: String,
}

impl Business {
    /// A business.
    pub fn new(waba_id: &str, phone_number_id: &str, display_phone_number: &str) -> Self {
        Self {
            waba_id: waba_id.to_owned(),
            phone_number_id: phone_number_id.to_owned(),
            display_phone_number: display_phone_number.to_owned(),
        }
    }

    /// An empty `messages`-field change for this number.
    pub fn change(&self) -> Change {
        Change::new(self)
    }

    /// One inbound message with its sender's contact card: the common case.
    pub fn inbound(&self, contact: &Contact, message: Message) -> Change {
        self.change().contact(contact).message(message)
    }

    /// One status update for an outbound message.
    pub fn status(&self, status: Status) -> Change {
        self.change().status(status)
    }
}

/// A customer as WhatsApp describes them in `contacts[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// `wa_id` (phone number digits).
    pub wa_id: String,
    /// `profile.name`.
    pub name: String,
    /// 2026 business-scoped user id (`user_id`), when present.
    pub user_id: Option<String>,
}

impl Contact {
    /// A contact without a BSUID.
    pub fn new(wa_id: &str, name: &str) -> Self {
        Self {
            wa_id: wa_id.to_owned(),
            name: name.to_owned(),
            user_id: None,
        }
    }

    fn to_value(&self) -> Value {
        let mut v = json!({ "profile": { "name": self.name }, "wa_id": self.wa_id });
        if let (Some(u), Some(obj)) = (&self.user_id, v.as_object_mut()) {
            obj.insert("user_id".into(), json!(u));
        }
        v
    }
}

/// One `messages[]` element.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Message {
    from: String,
    id: String,
    timestamp_s: i64,
    kind: String,
    payload: Value,
    context: Option<Value>,
    extra: Map<String, Value>,
}

impl Message {
    /// Any message type, with its payload under the key named after the type.
    pub fn new(from: &str, kind: &str, payload: Value) -> Self {
        Self {
            from: from.to_owned(),
            id: ids::wamid(from),
            timestamp_s: now_s(),
            kind: kind.to_owned(),
            payload,
            context: None,
            extra: Map::new(),
        }
    }

    /// `type: text`.
    pub fn text(from: &str, body: &str) -> Self {
        Self::new(from, "text", json!({ "body": body }))
    }

    /// `type: image` with a fresh media id.
    pub fn image(from: &str, caption: Option<&str>) -> Self {
        let mut p = json!({ "id": ids::media_id(), "mime_type": "image/jpeg", "sha256": ids::fake_sha256() });
        if let (Some(c), Some(obj)) = (caption, p.as_object_mut()) {
            obj.insert("caption".into(), json!(c));
        }
        Self::new(from, "image", p)
    }

    /// `type: document`.
    pub fn document(from: &str, filename: &str, mime_type: &str, caption: Option<&str>) -> Self {
        let mut p = json!({
            "id": ids::media_id(), "mime_type": mime_type, "sha256": ids::fake_sha256(), "filename": filename,
        });
        if let (Some(c), Some(obj)) = (caption, p.as_object_mut()) {
            obj.insert("caption".into(), json!(c));
        }
        Self::new(from, "document", p)
    }

    /// `type: interactive` / `button_reply`: a reply button was tapped.
    pub fn button_reply(from: &str, id: &str, title: &str) -> Self {
        Self::new(
            from,
            "interactive",
            json!({ "type": "button_reply", "button_reply": { "id": id, "title": title } }),
        )
    }

    /// `type: interactive` / `list_reply`: a list row was picked.
    pub fn list_reply(from: &str, id: &str, title: &str, description: Option<&str>) -> Self {
        let mut row = json!({ "id": id, "title": title });
        if let (Some(d), Some(obj)) = (description, row.as_object_mut()) {
            obj.insert("description".into(), json!(d));
        }
        Self::new(
            from,
            "interactive",
            json!({ "type": "list_reply", "list_reply": row }),
        )
    }

    /// `type: reaction` to `message_id`; `None` = reaction removed (empty emoji, as Meta sends).
    pub fn reaction(from: &str, message_id: &str, emoji: Option<&str>) -> Self {
        Self::new(
            from,
            "reaction",
            json!({ "message_id": message_id, "emoji": emoji.unwrap_or("") }),
        )
    }

    /// Pin the wamid.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Pin the timestamp (Unix seconds; serialized as a string).
    pub fn timestamp_s(mut self, t: i64) -> Self {
        self.timestamp_s = t;
        self
    }

    /// Mark as a reply to business message `id` sent from `from` (`context`).
    pub fn context(mut self, from: &str, id: &str) -> Self {
        self.context = Some(json!({ "from": from, "id": id }));
        self
    }

    /// Add any key next to `type` (unknown fields, `referral`, `errors`, ...).
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The wamid.
    pub fn id_value(&self) -> &str {
        &self.id
    }

    /// JSON of the `messages[]` element.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("from".into(), json!(self.from));
        m.insert("id".into(), json!(self.id));
        m.insert("timestamp".into(), json!(self.timestamp_s.to_string()));
        m.insert("type".into(), json!(self.kind));
        m.insert(self.kind.clone(), self.payload.clone());
        if let Some(c) = &self.context {
            m.insert("context".into(), c.clone());
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// An error object as WhatsApp puts in `statuses[].errors[]` or `value.errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaError {
    /// Numeric code, e.g. 131047.
    pub code: u32,
    /// `title`.
    pub title: String,
    /// `message`.
    pub message: String,
    /// `error_data.details`.
    pub details: String,
}

impl WaError {
    /// 131047: the 24-hour customer-service window has closed.
    pub fn re_engagement() -> Self {
        Self {
            code: 131_047,
            title: "Re-engagement message".into(),
            message: "Re-engagement message".into(),
            details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into(),
        }
    }

    /// 131026: the message could not be delivered (e.g. not a WhatsApp user).
    pub fn undeliverable() -> Self {
        Self {
            code: 131_026,
            title: "Message undeliverable".into(),
            message: "Message undeliverable".into(),
            details: "Message Undeliverable.".into(),
        }
    }

    fn to_value(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "error_data": { "details": self.details },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        })
    }
}

/// `statuses[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// `sent`.
    Sent,
    /// `delivered`.
    Delivered,
    /// `read`.
    Read,
    /// `failed` (carries `errors[]`).
    Failed,
    /// `played` (voice messages).
    Played,
}

impl StatusKind {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
            StatusKind::Played => "played",
        }
    }
}

/// One `statuses[]` element for an outbound message.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Status {
    id: String,
    kind: StatusKind,
    timestamp_s: i64,
    recipient_id: String,
    errors: Vec<WaError>,
    biz_opaque_callback_data: Option<String>,
    pricing: Option<Value>,
    extra: Map<String, Value>,
}

impl Status {
    /// A status of `kind` for outbound message `wamid` sent to `recipient_id`. Non-failed
    /// statuses carry per-message (PMP) pricing for a free service reply by default.
    pub fn new(kind: StatusKind, wamid: &str, recipient_id: &str) -> Self {
        let pricing = (kind != StatusKind::Failed).then(|| {
            json!({ "billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service" })
        });
        Self {
            id: wamid.to_owned(),
            kind,
            timestamp_s: now_s(),
            recipient_id: recipient_id.to_owned(),
            errors: Vec::new(),
            biz_opaque_callback_data: None,
            pricing,
            extra: Map::new(),
        }
    }

    /// `sent`.
    pub fn sent(wamid: &str, recipient_id: &str) -> Self {
        Self::new(StatusKind::Sent, wamid, recipient_id)
    }

    /// `delivered`.
    pub fn delivered(wamid: &str, recipient_id: &str) -> Self {
        Self::new(StatusKind::Delivered, wamid, recipient_id)
    }

    /// `read`.
    pub fn read(wamid: &str, recipient_id: &str) -> Self {
        Self::new(StatusKind::Read, wamid, recipient_id)
    }

    /// `failed` with `errors[]`.
    pub fn failed(wamid: &str, recipient_id: &str, error: WaError) -> Self {
        let mut s = Self::new(StatusKind::Failed, wamid, recipient_id);
        s.errors.push(error);
        s
    }

    /// Pin the timestamp (Unix seconds; serialized as a string).
    pub fn timestamp_s(mut self, t: i64) -> Self {
        self.timestamp_s = t;
        self
    }

    /// Echo the `biz_opaque_callback_data` given at send time.
    pub fn biz_opaque_callback_data(mut self, data: &str) -> Self {
        self.biz_opaque_callback_data = Some(data.to_owned());
        self
    }

    /// Replace (or with `None`, drop) the `pricing` object.
    pub fn pricing(mut self, pricing: Option<Value>) -> Self {
        self.pricing = pricing;
        self
    }

    /// Add any key (unknown fields, the legacy `conversation` object, ...).
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The status kind.
    pub fn kind(&self) -> StatusKind {
        self.kind
    }

    /// JSON of the `statuses[]` element.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("status".into(), json!(self.kind.as_str()));
        m.insert("timestamp".into(), json!(self.timestamp_s.to_string()));
        m.insert("recipient_id".into(), json!(self.recipient_id));
        if let Some(d) = &self.biz_opaque_callback_data {
            m.insert("biz_opaque_callback_data".into(), json!(d));
        }
        if let Some(p) = &self.pricing {
            m.insert("pricing".into(), p.clone());
        }
        if !self.errors.is_empty() {
            m.insert(
                "errors".into(),
                Value::Array(self.errors.iter().map(WaError::to_value).collect()),
            );
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// One `changes[]` element for a WABA. Several messages/statuses may share one change.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Change {
    business: Business,
    field: String,
    contacts: Vec<Value>,
    messages: Vec<Value>,
    statuses: Vec<Value>,
    errors: Vec<Value>,
    extra: Map<String, Value>,
}

impl Change {
    /// An empty `messages`-field change.
    pub fn new(business: &Business) -> Self {
        Self {
            business: business.clone(),
            field: "messages".to_owned(),
            contacts: Vec::new(),
            messages: Vec::new(),
            statuses: Vec::new(),
            errors: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Add a `contacts[]` card.
    pub fn contact(mut self, c: &Contact) -> Self {
        self.contacts.push(c.to_value());
        self
    }

    /// Add a `messages[]` element.
    pub fn message(mut self, m: Message) -> Self {
        self.messages.push(m.to_value());
        self
    }

    /// Add a `statuses[]` element.
    pub fn status(mut self, s: Status) -> Self {
        self.statuses.push(s.to_value());
        self
    }

    /// Add a system-level `value.errors[]` element.
    pub fn error(mut self, e: &WaError) -> Self {
        self.errors.push(e.to_value());
        self
    }

    /// Use another `field` (e.g. an unknown one, or `message_template_status_update`).
    pub fn field(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    /// Add any key to `value`.
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// JSON of `value`.
    pub fn value(&self) -> Value {
        let mut m = Map::new();
        m.insert("messaging_product".into(), json!("whatsapp"));
        m.insert(
            "metadata".into(),
            json!({
                "display_phone_number": self.business.display_phone_number,
                "phone_number_id": self.business.phone_number_id,
            }),
        );
        for (key, items) in [
            ("contacts", &self.contacts),
            ("messages", &self.messages),
            ("statuses", &self.statuses),
            ("errors", &self.errors),
        ] {
            if !items.is_empty() {
                m.insert(key.into(), Value::Array(items.clone()));
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    /// As a `changes[]` item. WhatsApp entries carry no `time`.
    pub fn into_item(self) -> Item {
        let value = self.value();
        Item::change(object::WHATSAPP, self.business.waba_id, &self.field, value)
    }

    /// A delivery holding just this change.
    pub fn into_delivery(self) -> Delivery {
        self.into_item().into_delivery()
    }
}

impl From<Change> for Item {
    fn from(c: Change) -> Self {
        c.into_item()
    }
}

/// The usual life of an outbound message as three separate deliveries: `sent`, `delivered`,
/// `read`, each one second apart from `sent_at_s`. Feed them to the sender reversed or permuted
/// to play WhatsApp's out-of-order statuses.
pub fn status_lifecycle(
    business: &Business,
    wamid: &str,
    recipient_id: &str,
    sent_at_s: i64,
) -> Vec<Delivery> {
    [StatusKind::Sent, StatusKind::Delivered, StatusKind::Read]
        .into_iter()
        .zip(0..)
        .map(|(kind, i)| {
            business
                .status(Status::new(kind, wamid, recipient_id).timestamp_s(sent_at_s + i))
                .into_delivery()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn biz() -> Business {
        Business::new("102290129340398", "106540352242922", "15550001111")
    }

    #[test]
    fn inbound_text_shape() {
        let ana = Contact::new("5511999990000", "Ana");
        let msg = Message::text(&ana.wa_id, "oi").timestamp_s(1_767_225_600);
        let wamid = msg.id_value().to_owned();
        let v = biz().inbound(&ana, msg).into_delivery().to_value();
        assert_eq!(v["object"], "whatsapp_business_account");
        let entry = &v["entry"][0];
        assert_eq!(entry["id"], "102290129340398");
        assert!(entry.get("time").is_none());
        assert_eq!(entry["changes"][0]["field"], "messages");
        let value = &entry["changes"][0]["value"];
        assert_eq!(value["messaging_product"], "whatsapp");
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["metadata"]["display_phone_number"], "15550001111");
        assert_eq!(
            value["contacts"][0],
            json!({"profile": {"name": "Ana"}, "wa_id": "5511999990000"})
        );
        let m = &value["messages"][0];
        // String seconds, not a number.
        assert_eq!(m["timestamp"], "1767225600");
        assert!(m["timestamp"].is_string());
        assert_eq!(m["type"], "text");
        assert_eq!(m["text"]["body"], "oi");
        assert_eq!(m["id"], wamid.as_str());
        assert!(wamid.starts_with("wamid.HBg"));
        assert!(value.get("statuses").is_none());
    }

    #[test]
    fn default_timestamps_are_string_seconds_now() {
        let v = Message::text("1", "x").to_value();
        let t: i64 = v["timestamp"].as_str().unwrap().parse().unwrap();
        assert!((t - chrono::Utc::now().timestamp()).abs() < 60);
    }

    #[test]
    fn media_interactive_reaction() {
        let v = Message::image("1", Some("look")).to_value();
        assert_eq!(v["type"], "image");
        assert_eq!(v["image"]["mime_type"], "image/jpeg");
        assert_eq!(v["image"]["caption"], "look");
        assert_eq!(v["image"]["sha256"].as_str().unwrap().len(), 64);
        assert!(v["image"]["id"].is_string());

        let v = Message::document("1", "invoice.pdf", "application/pdf", None).to_value();
        assert_eq!(v["document"]["filename"], "invoice.pdf");
        assert!(v["document"].get("caption").is_none());

        let v = Message::button_reply("1", "yes", "Yes")
            .context("15550001111", "wamid.X")
            .to_value();
        assert_eq!(v["type"], "interactive");
        assert_eq!(v["interactive"]["type"], "button_reply");
        assert_eq!(
            v["interactive"]["button_reply"],
            json!({"id": "yes", "title": "Yes"})
        );
        assert_eq!(v["context"], json!({"from": "15550001111", "id": "wamid.X"}));

        let v = Message::list_reply("1", "r1", "Row", Some("desc")).to_value();
        assert_eq!(v["interactive"]["list_reply"]["description"], "desc");

        let v = Message::reaction("1", "wamid.X", Some("😮")).to_value();
        assert_eq!(v["reaction"], json!({"message_id": "wamid.X", "emoji": "😮"}));
        assert_eq!(
            Message::reaction("1", "wamid.X", None).to_value()["reaction"]["emoji"],
            ""
        );
    }

    #[test]
    fn statuses_and_failure() {
        let v = biz()
            .status(Status::delivered("wamid.A", "5511999990000").timestamp_s(1_767_225_605))
            .status(
                Status::failed("wamid.B", "5511999990000", WaError::re_engagement())
                    .biz_opaque_callback_data("o-1"),
            )
            .value();
        assert!(v.get("messages").is_none());
        assert!(v.get("contacts").is_none());
        let s = &v["statuses"];
        assert_eq!(s[0]["status"], "delivered");
        assert_eq!(s[0]["timestamp"], "1767225605");
        assert_eq!(s[0]["pricing"]["pricing_model"], "PMP");
        assert!(s[0].get("errors").is_none());
        assert_eq!(s[1]["status"], "failed");
        assert_eq!(s[1]["biz_opaque_callback_data"], "o-1");
        assert!(s[1].get("pricing").is_none());
        let err = &s[1]["errors"][0];
        assert_eq!(err["code"], 131_047);
        assert!(err["code"].is_u64());
        assert_eq!(err["title"], "Re-engagement message");
        assert!(
            err["error_data"]["details"]
                .as_str()
                .unwrap()
                .contains("24 hours")
        );
    }

    #[test]
    fn lifecycle_is_three_ordered_deliveries() {
        let ds = status_lifecycle(&biz(), "wamid.A", "1", 100);
        let kinds: Vec<_> = ds
            .iter()
            .map(|d| d.to_value()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"].clone())
            .collect();
        assert_eq!(kinds, vec![json!("sent"), json!("delivered"), json!("read")]);
        assert_eq!(
            ds[2].to_value()["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"],
            "102"
        );
    }

    #[test]
    fn batch_mixing_wabas() {
        let other = Business::new("999", "888", "15550002222");
        let d = Delivery::from_items([
            biz()
                .inbound(&Contact::new("1", "A"), Message::text("1", "a"))
                .into_item(),
            other
                .inbound(&Contact::new("2", "B"), Message::text("2", "b"))
                .into_item(),
        ])
        .unwrap();
        let v = d.to_value();
        assert_eq!(v["entry"][0]["id"], "102290129340398");
        assert_eq!(v["entry"][1]["id"], "999");
    }
}
