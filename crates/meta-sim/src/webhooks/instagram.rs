//! Instagram (`object = instagram`) deliveries. Messaging uses the Messenger shape with IGSIDs;
//! comments arrive as `changes[]`.

use serde_json::json;

use super::delivery::{Item, object};
use super::messaging::{self as m, Platform};
pub use super::messaging::{AttachmentKind, Handover, MessagingEvent, Reaction};
use crate::ids;

const P: Platform = Platform::Instagram;

/// A text DM from the customer (`sender.id` = IGSID, `recipient.id` = IG account id).
pub fn text(ig_account_id: &str, igsid: &str, text: &str) -> MessagingEvent {
    m::text(P, ig_account_id, igsid, text)
}

/// An attachment DM.
pub fn attachment(ig_account_id: &str, igsid: &str, kind: AttachmentKind, url: &str) -> MessagingEvent {
    m::attachment(P, ig_account_id, igsid, kind, url)
}

/// The echo of a message the business sent. Instagram delivers echoes on the `messages` field,
/// but the JSON is the Messenger echo shape.
pub fn echo(ig_account_id: &str, igsid: &str, app_id: u64, text: &str) -> MessagingEvent {
    m::echo(P, ig_account_id, igsid, app_id, text)
}

/// A read receipt: Instagram's `messaging_seen` carries `read.mid`, not a watermark.
pub fn seen(ig_account_id: &str, igsid: &str, mid: &str) -> MessagingEvent {
    MessagingEvent::new(P, ig_account_id, igsid, true, "read", json!({ "mid": mid }))
}

/// A reaction to DM `target_mid`.
pub fn reaction(ig_account_id: &str, igsid: &str, target_mid: &str, reaction: &Reaction) -> MessagingEvent {
    m::reaction(P, ig_account_id, igsid, target_mid, reaction)
}

/// A handover event (`messaging_handovers`): Instagram threads follow Messenger's Conversation
/// Routing (meta-platform.md §4).
pub fn handover(
    ig_account_id: &str,
    igsid: &str,
    event: &Handover,
    metadata: Option<&str>,
) -> MessagingEvent {
    m::handover(P, ig_account_id, igsid, event, metadata)
}

/// A comment on media (`changes[].field = comments`). Returns the item and the comment id.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Comment {
    /// The IG account the media belongs to.
    pub ig_account_id: String,
    /// Comment id (`value.id`).
    pub id: String,
    /// Commenter's IGSID.
    pub from_id: String,
    /// Commenter's username.
    pub from_username: String,
    /// Comment text.
    pub text: String,
    /// Media id.
    pub media_id: String,
    /// `media.media_product_type` (`FEED`, `REELS`, ...).
    pub media_product_type: String,
    /// Parent comment for replies.
    pub parent_id: Option<String>,
    /// `entry[].time` (seconds for changes).
    pub time_s: i64,
}

impl Comment {
    /// A top-level comment on `media_id`.
    pub fn new(ig_account_id: &str, media_id: &str, igsid: &str, username: &str, text: &str) -> Self {
        Self {
            ig_account_id: ig_account_id.to_owned(),
            id: ids::numeric_id(),
            from_id: igsid.to_owned(),
            from_username: username.to_owned(),
            text: text.to_owned(),
            media_id: media_id.to_owned(),
            media_product_type: "FEED".to_owned(),
            parent_id: None,
            time_s: chrono::Utc::now().timestamp(),
        }
    }

    /// Pin the comment id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Make it a reply to comment `parent_id`.
    pub fn reply_to(mut self, parent_id: impl Into<String>) -> Self {
        self.parent_id = Some(parent_id.into());
        self
    }

    /// As a `changes[]` item.
    pub fn into_item(self) -> Item {
        let mut value = json!({
            "id": self.id,
            "text": self.text,
            "from": { "id": self.from_id, "username": self.from_username },
            "media": { "id": self.media_id, "media_product_type": self.media_product_type },
        });
        if let (Some(p), Some(obj)) = (self.parent_id, value.as_object_mut()) {
            obj.insert("parent_id".into(), json!(p));
        }
        Item::change(object::INSTAGRAM, self.ig_account_id, "comments", value)
            .with_entry_time(Some(self.time_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::delivery::Delivery;

    const IG: &str = "17841400000000001";
    const IGSID: &str = "1234567890123456";

    #[test]
    fn dm_shape() {
        let e = text(IG, IGSID, "price?");
        assert!(e.mid_value().unwrap().starts_with("aWdf"));
        let v = e.into_delivery().to_value();
        assert_eq!(v["object"], "instagram");
        assert_eq!(v["entry"][0]["id"], IG);
        let ev = &v["entry"][0]["messaging"][0];
        assert_eq!(ev["sender"]["id"], IGSID);
        assert_eq!(ev["recipient"]["id"], IG);
        assert!(ev["timestamp"].as_i64().unwrap() > 1_000_000_000_000);
    }

    #[test]
    fn seen_carries_mid_not_watermark() {
        let v = seen(IG, IGSID, "aWdfXYZ").to_value();
        assert_eq!(v["read"], json!({"mid": "aWdfXYZ"}));
    }

    #[test]
    fn echo_comes_from_the_account() {
        let v = echo(IG, IGSID, 42, "thanks!").to_value();
        assert_eq!(v["sender"]["id"], IG);
        assert_eq!(v["message"]["is_echo"], true);
    }

    #[test]
    fn comment_change_shape() {
        let d = Delivery::from_items([Comment::new(IG, "17800000000000000", IGSID, "jane", "nice!")
            .id("17900000000000001")
            .reply_to("17900000000000000")
            .into_item()])
        .unwrap();
        let v = d.to_value();
        let ch = &v["entry"][0]["changes"][0];
        assert_eq!(ch["field"], "comments");
        assert_eq!(ch["value"]["id"], "17900000000000001");
        assert_eq!(ch["value"]["parent_id"], "17900000000000000");
        assert_eq!(ch["value"]["from"]["username"], "jane");
        assert_eq!(ch["value"]["media"]["media_product_type"], "FEED");
        // Seconds for changes.
        assert!(v["entry"][0]["time"].as_i64().unwrap() < 10_000_000_000);
    }
}
