//! Customers writing in: the steering API that tells the Graph side when a customer last
//! wrote (which opens the messaging windows the Send APIs enforce) and builds the matching
//! inbound webhooks, routed to `standby` when another app owns the thread.

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::outbox::slot_for;
use super::threads::{
    Channel, StoredAttachment, StoredMessage, ThreadKey, UnknownRecipients, WhatsAppReengagement,
};
use super::world::{Node, World};
use super::{GraphSim, WorldError, must};
use crate::webhooks::Delivery;
use crate::webhooks::delivery::Slot;
use crate::webhooks::messaging::{self as m, AttachmentKind, Platform};
use crate::webhooks::whatsapp::{Business, Contact, Message};

/// What a customer sends through the inbound helpers.
#[derive(Debug, Clone)]
enum Content {
    Text(String),
    Media { bytes: Bytes, mime: String },
}

/// `wa_id` as WhatsApp reports it: the digits of the number.
pub(crate) fn wa_digits(to: &str) -> String {
    let d: String = to.chars().filter(char::is_ascii_digit).collect();
    if d.is_empty() { to.to_owned() } else { d }
}

fn attachment_kind(mime: &str) -> AttachmentKind {
    match mime.split('/').next() {
        Some("image") => AttachmentKind::Image,
        Some("video") => AttachmentKind::Video,
        Some("audio") => AttachmentKind::Audio,
        _ => AttachmentKind::File,
    }
}

impl World {
    /// The thread `customer` has with `object_id` (Page, Instagram account or phone number).
    fn customer_thread(&self, object_id: &str, customer: &str) -> Result<(ThreadKey, Channel), WorldError> {
        match self.node(object_id)? {
            Node::Phone(id) => Ok((ThreadKey::new(&id, &wa_digits(customer)), Channel::WhatsApp)),
            Node::Page(_) | Node::Ig(_) => {
                self.messaging_thread(object_id, customer)
                    .ok_or_else(|| WorldError::Unknown {
                        what: "page",
                        id: object_id.to_owned(),
                    })
            }
            other => Err(WorldError::Unknown {
                what: "page, instagram account or phone number",
                id: other.id().to_owned(),
            }),
        }
    }

    /// Record that the customer wrote at `at_ms`.
    pub fn customer_wrote(
        &mut self,
        object_id: &str,
        customer: &str,
        at_ms: i64,
        via_ad: bool,
    ) -> Result<(), WorldError> {
        let (key, channel) = self.customer_thread(object_id, customer)?;
        if channel == Channel::Instagram {
            self.add_instagram_user(&key.account, customer)?;
        }
        self.threads.customer_wrote(channel, &key, at_ms, via_ad);
        Ok(())
    }

    /// Record a customer's message (window and history).
    pub fn record_customer_message(
        &mut self,
        object_id: &str,
        customer: &str,
        message_id: &str,
        text: &str,
        at_ms: i64,
    ) -> Result<(), WorldError> {
        self.customer_wrote(object_id, customer, at_ms, false)?;
        let (key, channel) = self.customer_thread(object_id, customer)?;
        self.threads.record(
            channel,
            &key,
            StoredMessage {
                id: message_id.to_owned(),
                from_customer: true,
                text: text.to_owned(),
                attachments: Vec::new(),
                at_ms,
            },
        );
        Ok(())
    }

    fn inbound(&mut self, object_id: &str, customer: &str, content: Content) -> Result<Delivery, WorldError> {
        let (key, channel) = self.customer_thread(object_id, customer)?;
        if channel == Channel::Instagram {
            self.add_instagram_user(&key.account, customer)?;
        }
        let now = self.now_ms();
        let platform = match channel {
            Channel::Messenger => Platform::Messenger,
            Channel::Instagram => Platform::Instagram,
            Channel::WhatsApp => return Ok(self.inbound_whatsapp(&key, content, now)),
        };
        let (event, text, attachments) = match content {
            Content::Text(text) => (m::text(platform, &key.account, customer, &text), text, Vec::new()),
            Content::Media { bytes, mime } => {
                let size = bytes.len();
                let id = self.media.add(bytes, &mime, None);
                let token = self.media.grant(&id, now, None);
                let url = self.media.url(None, &token);
                let kind = attachment_kind(&mime);
                let att = StoredAttachment {
                    kind: kind.as_str().to_owned(),
                    url: url.clone(),
                    mime_type: Some(mime),
                    size: Some(size),
                };
                (
                    m::attachment(platform, &key.account, customer, kind, &url),
                    String::new(),
                    vec![att],
                )
            }
        };
        let mut event = event.timestamp_ms(now);
        let owner = self.threads.get(&key).and_then(|t| t.owner.clone());
        if slot_for(owner.as_deref(), &self.config.app_id) == Slot::Standby {
            event = event.standby();
        }
        let message = StoredMessage {
            id: event.mid_value().unwrap_or_default().to_owned(),
            from_customer: true,
            text,
            attachments,
            at_ms: now,
        };
        self.threads.record(channel, &key, message);
        Ok(event.into_delivery())
    }

    fn inbound_whatsapp(&mut self, key: &ThreadKey, content: Content, now_ms: i64) -> Delivery {
        let (waba, display) = self
            .phone(&key.account)
            .map(|p| (p.waba_id.clone(), wa_digits(&p.display)))
            .unwrap_or_default();
        let business = Business::new(&waba, &key.account, &display);
        let wa_id = key.customer.as_str();
        let name = self
            .customer_names
            .get(wa_id)
            .cloned()
            .unwrap_or_else(|| wa_id.to_owned());
        let (message, text) = match content {
            Content::Text(text) => (Message::text(wa_id, &text), text),
            Content::Media { bytes, mime } => {
                let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
                let id = self.media.add(bytes, &mime, Some(&key.account));
                let kind = match attachment_kind(&mime) {
                    AttachmentKind::File => "document",
                    other => other.as_str(),
                };
                let mut payload = json!({"id": id, "mime_type": mime, "sha256": sha});
                if kind == "document" {
                    payload["filename"] = "file".into();
                }
                (Message::new(wa_id, kind, payload), String::new())
            }
        };
        let message = message.timestamp_s(now_ms / 1000);
        self.threads.record(
            Channel::WhatsApp,
            key,
            StoredMessage {
                id: message.id_value().to_owned(),
                from_customer: true,
                text,
                attachments: Vec::new(),
                at_ms: now_ms,
            },
        );
        business
            .inbound(&Contact::new(wa_id, &name), message)
            .into_delivery()
    }
}

/// The customer messages a delivery carries: `(object id, customer id, message id, text,
/// time in ms)`. Echoes, receipts and statuses are not customer messages.
fn customer_messages(delivery: &Delivery) -> Vec<(String, String, String, String, i64)> {
    let mut out = Vec::new();
    for entry in &delivery.entries {
        for ev in entry.messaging.iter().chain(&entry.standby) {
            let msg = &ev["message"];
            let (Some(from), Some(mid)) = (ev["sender"]["id"].as_str(), msg["mid"].as_str()) else {
                continue;
            };
            if msg["is_echo"] == true {
                continue;
            }
            let text = msg["text"].as_str().unwrap_or_default();
            let at = ev["timestamp"].as_i64().unwrap_or_default();
            out.push((
                entry.id.clone(),
                from.to_owned(),
                mid.to_owned(),
                text.to_owned(),
                at,
            ));
        }
        for change in &entry.changes {
            let value = &change["value"];
            let Some(phone) = value["metadata"]["phone_number_id"].as_str() else {
                continue;
            };
            for m in value["messages"].as_array().into_iter().flatten() {
                let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
                    continue;
                };
                let text = m["text"]["body"].as_str().unwrap_or_default();
                let secs: i64 = m["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_default();
                out.push((
                    phone.to_owned(),
                    from.to_owned(),
                    id.to_owned(),
                    text.to_owned(),
                    secs * 1000,
                ));
            }
        }
    }
    out
}

impl GraphSim {
    /// Learn from a webhook delivery built elsewhere (the demo script, a test's own builders):
    /// every customer message in it is recorded as with [`Self::record_customer_message`].
    /// Messages for objects the world does not know are skipped; returns how many were
    /// recorded.
    pub fn observe(&self, delivery: &Delivery) -> usize {
        let mut w = self.lock();
        customer_messages(delivery)
            .into_iter()
            .filter(|(object, customer, id, text, at)| {
                w.record_customer_message(object, customer, id, text, *at).is_ok()
            })
            .count()
    }

    /// The simulated clock (moved by [`Self::advance_clock`]).
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.lock().now_ms()).unwrap_or_default()
    }

    /// The customer (PSID, IGSID or wa_id) wrote to `object_id` (Page, Instagram account or
    /// WhatsApp phone number id) at `at`: the messaging windows of §3.2/§3.3 run from here.
    ///
    /// # Panics
    /// When `object_id` is none of those.
    pub fn customer_wrote(&self, object_id: &str, customer_id: &str, at: DateTime<Utc>) {
        must(
            self.lock()
                .customer_wrote(object_id, customer_id, at.timestamp_millis(), false),
            "customer_wrote",
        );
    }

    /// As [`Self::customer_wrote`], for a message that came from a click-to-Messenger /
    /// click-to-Direct / click-to-WhatsApp ad: Messenger and Instagram keep the window open
    /// for 7 days; WhatsApp keeps its 24 h window but prices replies as a free entry point.
    ///
    /// # Panics
    /// When `object_id` is none of those.
    pub fn customer_wrote_via_ad(&self, object_id: &str, customer_id: &str, at: DateTime<Utc>) {
        must(
            self.lock()
                .customer_wrote(object_id, customer_id, at.timestamp_millis(), true),
            "customer_wrote_via_ad",
        );
    }

    /// A customer's message the world should know about (window and Conversations API), e.g.
    /// one a test delivered with its own webhook builder.
    ///
    /// # Panics
    /// When `object_id` is not a Page, Instagram account or phone number.
    pub fn record_customer_message(
        &self,
        object_id: &str,
        customer_id: &str,
        message_id: &str,
        text: &str,
        at: DateTime<Utc>,
    ) {
        must(
            self.lock().record_customer_message(
                object_id,
                customer_id,
                message_id,
                text,
                at.timestamp_millis(),
            ),
            "record_customer_message",
        );
    }

    /// A text from the customer, now (simulated clock): recorded (window, history) and
    /// returned as the webhook Meta would deliver — in `standby` when another app owns the
    /// thread. Send it with [`Self::emit`] or a [`crate::webhooks::WebhookSender`].
    ///
    /// # Panics
    /// When `object_id` is not a Page, Instagram account or phone number.
    pub fn inbound_text(&self, object_id: &str, customer_id: &str, text: &str) -> Delivery {
        must(
            self.lock()
                .inbound(object_id, customer_id, Content::Text(text.to_owned())),
            "inbound_text",
        )
    }

    /// An attachment from the customer, now: Messenger/Instagram carry an expiring
    /// [`Self::media_url`], WhatsApp a media id for `GET /{v}/{media-id}`.
    ///
    /// # Panics
    /// When `object_id` is not a Page, Instagram account or phone number.
    pub fn inbound_media(
        &self,
        object_id: &str,
        customer_id: &str,
        bytes: impl Into<Bytes>,
        mime: &str,
    ) -> Delivery {
        let content = Content::Media {
            bytes: bytes.into(),
            mime: mime.to_owned(),
        };
        must(
            self.lock().inbound(object_id, customer_id, content),
            "inbound_media",
        )
    }

    /// A customer's display name (conversation participants, WhatsApp contact cards); for
    /// Instagram, their username.
    pub fn set_customer_name(&self, customer_id: &str, name: &str) {
        self.lock()
            .customer_names
            .insert(customer_id.to_owned(), name.to_owned());
    }

    /// How sends to recipients who never wrote are treated ([`UnknownRecipients::Reject`] for
    /// [`Self::new`], [`UnknownRecipients::InWindow`] for the demo world).
    pub fn set_unknown_recipients(&self, policy: UnknownRecipients) {
        self.lock().threads.unknown_recipients = policy;
    }

    /// How WhatsApp reports free-form messages outside the window (default
    /// [`WhatsAppReengagement::Async`]).
    pub fn set_whatsapp_reengagement(&self, mode: WhatsAppReengagement) {
        self.lock().threads.reengagement = mode;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::whatsapp::Business;
    use crate::webhooks::{Delivery, instagram, messenger};

    #[test]
    fn customer_messages_skip_echoes_and_statuses() {
        let d = Delivery::from_items([
            messenger::text("page", "psid", "hi")
                .mid("m_1")
                .timestamp_ms(5)
                .into_item(),
            messenger::echo("page", "psid", 1, "re", None).into_item(),
            messenger::read("page", "psid", 9).into_item(),
        ])
        .unwrap();
        assert_eq!(
            customer_messages(&d),
            [("page".into(), "psid".into(), "m_1".into(), "hi".into(), 5)]
        );
        let d = instagram::text("ig", "igsid", "oi").standby().into_delivery();
        assert_eq!(customer_messages(&d).len(), 1);
        let biz = Business::new("waba", "phone", "1555");
        let d = biz
            .inbound(
                &Contact::new("5511", "Ana"),
                Message::text("5511", "olá").id("wamid.A").timestamp_s(7),
            )
            .into_delivery();
        assert_eq!(
            customer_messages(&d),
            [(
                "phone".into(),
                "5511".into(),
                "wamid.A".into(),
                "olá".into(),
                7000
            )]
        );
        let d = biz
            .status(crate::webhooks::whatsapp::Status::sent("wamid.B", "5511"))
            .into_delivery();
        assert!(customer_messages(&d).is_empty());
    }
}
