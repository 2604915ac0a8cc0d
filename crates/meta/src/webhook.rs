//! Serde types for the items of Meta webhook deliveries.
//!
//! A delivery is `{"object": ..., "entry": [...]}`; each entry holds arrays of items
//! (`messaging[]`, `standby[]`, `changes[]`). The splitter walks that envelope itself and parses
//! one item at a time into these types, so a malformed item costs only that item.
//!
//! Everything is tolerant: unknown fields are ignored, almost every field is optional, and scalar
//! fields accept the types Meta is known to vary between (see the lenient deserializers). Time
//! units differ by product and are kept as sent: Messenger/Instagram messaging `timestamp` and
//! `watermark` are milliseconds; Page feed `created_time` and WhatsApp `timestamp` are seconds.

mod de;

use serde::Deserialize;
use serde_json::Value;

/// `object` value of Messenger and Page feed deliveries.
pub const OBJECT_PAGE: &str = "page";
/// `object` value of Instagram deliveries.
pub const OBJECT_INSTAGRAM: &str = "instagram";
/// `object` value of WhatsApp Cloud API deliveries.
pub const OBJECT_WHATSAPP: &str = "whatsapp_business_account";

/// `sender` / `recipient` of a messaging item. Chat-plugin guests carry `user_ref` instead of `id`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Party {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub user_ref: Option<String>,
}

impl Party {
    /// `id`, or `user_ref` for guests without a PSID.
    pub fn key(&self) -> Option<&str> {
        self.id.as_deref().or(self.user_ref.as_deref())
    }
}

/// One element of `entry[].messaging[]` or `entry[].standby[]` (Messenger and Instagram).
///
/// Exactly one event key is expected besides `sender`/`recipient`/`timestamp`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessagingItem {
    #[serde(default, deserialize_with = "de::lenient")]
    pub sender: Option<Party>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub recipient: Option<Party>,
    /// Milliseconds.
    #[serde(default, deserialize_with = "de::int")]
    pub timestamp: Option<i64>,
    pub message: Option<Message>,
    pub delivery: Option<DeliveryReceipt>,
    pub read: Option<ReadReceipt>,
    pub reaction: Option<ReactionEvent>,
    pub message_edit: Option<MessageEditEvent>,
    pub postback: Option<PostbackEvent>,
    pub pass_thread_control: Option<ThreadControl>,
    pub take_thread_control: Option<ThreadControl>,
    pub request_thread_control: Option<ThreadControl>,
    /// Legacy handover roles: `{"<app_id>": ["primary_receiver"]}`.
    pub app_roles: Option<Value>,
}

/// Keys of a messaging item that are not the event itself.
pub const MESSAGING_ENVELOPE_KEYS: &[&str] = &["sender", "recipient", "timestamp"];

/// Event keys of a messaging item that [`MessagingItem`] models.
pub const MESSAGING_EVENT_KEYS: &[&str] = &[
    "message",
    "delivery",
    "read",
    "reaction",
    "message_edit",
    "postback",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
];

/// `message`: an inbound message, or an echo of one the business sent when `is_echo` is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Message {
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    pub is_echo: bool,
    #[serde(default, deserialize_with = "de::id")]
    pub app_id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub metadata: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub quick_reply: Option<QuickReply>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub reply_to: Option<ReplyTo>,
    #[serde(default, deserialize_with = "de::lenient_vec")]
    pub attachments: Vec<MessageAttachment>,
    #[serde(default, deserialize_with = "de::flag")]
    pub is_deleted: bool,
    #[serde(default, deserialize_with = "de::flag")]
    pub is_unsupported: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct QuickReply {
    #[serde(default, deserialize_with = "de::text")]
    pub payload: Option<String>,
}

/// `reply_to`: `mid` for a reply to a message; Instagram story replies carry `story` instead.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ReplyTo {
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
    pub story: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessageAttachment {
    #[serde(default, rename = "type", deserialize_with = "de::text")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub payload: Option<AttachmentPayload>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AttachmentPayload {
    #[serde(default, deserialize_with = "de::text")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub sticker_id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub title: Option<String>,
}

/// `delivery` (Messenger): everything sent before `watermark` (ms) was delivered.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeliveryReceipt {
    #[serde(default, deserialize_with = "de::strings")]
    pub mids: Vec<String>,
    #[serde(default, deserialize_with = "de::int")]
    pub watermark: Option<i64>,
}

/// `read`: Messenger carries `watermark` (ms), Instagram (`messaging_seen`) the `mid` seen.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ReadReceipt {
    #[serde(default, deserialize_with = "de::int")]
    pub watermark: Option<i64>,
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
}

/// `reaction`: `action` is `react` or `unreact` (no emoji on unreact).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ReactionEvent {
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub reaction: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessageEditEvent {
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de::int")]
    pub num_edit: Option<i64>,
}

/// `postback`: `mid` since Graph v11.0; standby postbacks have no `payload`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PostbackEvent {
    #[serde(default, deserialize_with = "de::id")]
    pub mid: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub payload: Option<String>,
}

/// Body of `pass_thread_control`, `take_thread_control` and `request_thread_control`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ThreadControl {
    #[serde(default, deserialize_with = "de::id")]
    pub previous_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub new_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub requested_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub metadata: Option<String>,
}

/// One element of `entry[].changes[]`; `value`'s shape depends on the object and `field`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Change {
    #[serde(default, deserialize_with = "de::text")]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// `value` of a Page `feed` change. The field set varies by `item`; all are optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FeedValue {
    #[serde(default, deserialize_with = "de::text")]
    pub item: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub verb: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub post_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub comment_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub photo_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub video_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub share_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub from: Option<FeedFrom>,
    #[serde(default, deserialize_with = "de::text")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub reaction_type: Option<String>,
    /// Seconds.
    #[serde(default, deserialize_with = "de::int")]
    pub created_time: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FeedFrom {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub name: Option<String>,
}

/// `value` of an Instagram `comments` or `live_comments` change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IgCommentValue {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub from: Option<IgFrom>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub media: Option<IgMedia>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IgFrom {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IgMedia {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub media_product_type: Option<String>,
}

/// `value` of an Instagram `mentions` change (details are fetched through the Graph API).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IgMentionValue {
    #[serde(default, deserialize_with = "de::id")]
    pub media_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub comment_id: Option<String>,
}

/// `value` of a WhatsApp `messages` change. Items stay raw so each is parsed (and kept as
/// `raw_item_json`) on its own.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppValue {
    #[serde(default, deserialize_with = "de::text")]
    pub messaging_product: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub metadata: Option<WhatsAppMetadata>,
    #[serde(default, deserialize_with = "de::lenient_vec")]
    pub contacts: Vec<WhatsAppContact>,
    pub messages: Option<Value>,
    pub statuses: Option<Value>,
    pub errors: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppMetadata {
    #[serde(default, deserialize_with = "de::id")]
    pub display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub phone_number_id: Option<String>,
}

/// `contacts[]`: `wa_id` may be absent for users who hide their number; `user_id` is the
/// business-scoped user id (BSUID).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppContact {
    #[serde(default, deserialize_with = "de::lenient")]
    pub profile: Option<WhatsAppProfile>,
    #[serde(default, deserialize_with = "de::id")]
    pub wa_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppProfile {
    #[serde(default, deserialize_with = "de::text")]
    pub name: Option<String>,
}

/// One element of `value.messages[]`. The payload sits under a key named like `type`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppMessage {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub from_user_id: Option<String>,
    /// Seconds (sent as a string).
    #[serde(default, deserialize_with = "de::int")]
    pub timestamp: Option<i64>,
    #[serde(default, rename = "type", deserialize_with = "de::text")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub text: Option<WhatsAppText>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub image: Option<WhatsAppMedia>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub video: Option<WhatsAppMedia>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub audio: Option<WhatsAppMedia>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub sticker: Option<WhatsAppMedia>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub document: Option<WhatsAppMedia>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub interactive: Option<WhatsAppInteractive>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub button: Option<WhatsAppButton>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub reaction: Option<WhatsAppReaction>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub context: Option<WhatsAppContext>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub system: Option<WhatsAppSystem>,
    #[serde(default, deserialize_with = "de::lenient_vec")]
    pub errors: Vec<WhatsAppError>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppText {
    #[serde(default, deserialize_with = "de::text")]
    pub body: Option<String>,
}

/// `image`, `video`, `audio`, `sticker` and `document` payloads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppMedia {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub mime_type: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub sha256: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub caption: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppInteractive {
    #[serde(default, rename = "type", deserialize_with = "de::text")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub button_reply: Option<WhatsAppReply>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub list_reply: Option<WhatsAppReply>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub nfm_reply: Option<WhatsAppFlowReply>,
}

/// `button_reply` / `list_reply`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppReply {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub description: Option<String>,
}

/// `nfm_reply` (WhatsApp Flows): `response_json` is a JSON document in a string.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppFlowReply {
    #[serde(default, deserialize_with = "de::text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub response_json: Option<String>,
}

/// `button`: a template quick-reply tap.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppButton {
    #[serde(default, deserialize_with = "de::text")]
    pub payload: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub text: Option<String>,
}

/// `reaction`: an empty or absent `emoji` removes the reaction.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppReaction {
    #[serde(default, deserialize_with = "de::id")]
    pub message_id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub emoji: Option<String>,
}

/// `context`: the business message this one replies to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppContext {
    #[serde(default, deserialize_with = "de::id")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    pub forwarded: bool,
    #[serde(default, deserialize_with = "de::flag")]
    pub frequently_forwarded: bool,
}

/// `system`: for example a customer changing number (`user_changed_number`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppSystem {
    #[serde(default, deserialize_with = "de::text")]
    pub body: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "de::text")]
    pub kind: Option<String>,
}

/// One element of `value.statuses[]`: the fate of a message the business sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppStatusItem {
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub status: Option<String>,
    /// Seconds (sent as a string).
    #[serde(default, deserialize_with = "de::int")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de::id")]
    pub recipient_id: Option<String>,
    #[serde(default, deserialize_with = "de::id")]
    pub recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default, deserialize_with = "de::lenient_vec")]
    pub errors: Vec<WhatsAppError>,
}

/// An element of `errors[]` (on a status, a message, or `value.errors[]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppError {
    #[serde(default, deserialize_with = "de::int")]
    pub code: Option<i64>,
    #[serde(default, deserialize_with = "de::text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "de::lenient")]
    pub error_data: Option<WhatsAppErrorData>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WhatsAppErrorData {
    #[serde(default, deserialize_with = "de::text")]
    pub details: Option<String>,
}
