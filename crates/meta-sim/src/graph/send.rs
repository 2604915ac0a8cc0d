//! Send APIs (meta-platform.md §3.1, §3.3): Messenger and Instagram through a Page token,
//! WhatsApp through `/{phone-number-id}/messages`, with the messaging windows, tags, thread
//! ownership and template rules of §3.2–§3.4 and §4. Accepted messages are recorded for
//! [`super::GraphSim::sent_messages`] and the Conversations API, and queue the webhooks that
//! follow them (echo/delivery/read, WhatsApp statuses).

use serde_json::{Value, json};

use super::SentMessage;
use super::customers::wa_digits;
use super::errors::GraphError;
use super::outbox::{self, SentOnMessenger, SentOnWhatsApp};
use super::request::{GraphRequest, Reply};
use super::templates::TemplateCategory;
use super::threads::{Channel, Purpose, StoredAttachment, StoredMessage, ThreadKey, WhatsAppReengagement};
use super::world::{Auth, Node, TokenKind, World};
use crate::ids;
use crate::webhooks::messaging::Platform;
use crate::webhooks::whatsapp::{Business, WaError};

/// Messenger's text limit (characters).
const MESSENGER_TEXT_MAX_CHARS: usize = 2000;
/// Instagram's text limit (bytes).
const INSTAGRAM_TEXT_MAX_BYTES: usize = 1000;

/// The only tag still usable (meta-platform.md §3.2: the other tags' availability is
/// UNCERTAIN, so the simulator refuses them).
const HUMAN_AGENT: &str = "HUMAN_AGENT";

/// `POST /{v}/{page|ig|phone}/messages` (`me` already resolved to the Page).
pub fn messages(
    world: &mut World,
    auth: &Auth,
    req: &GraphRequest,
    node: &Node,
) -> Result<Reply, GraphError> {
    match node {
        Node::Page(page_id) => {
            require_page_token(auth, page_id)?;
            let body = req.body_object();
            // An Instagram-scoped recipient makes this an Instagram send from the linked account.
            let linked_ig = world.page(page_id).and_then(|p| p.instagram.clone());
            let to_ig = recipient_id(&body)
                .and_then(|r| world.ig_of_igsid(r))
                .is_some_and(|ig| Some(ig) == linked_ig.as_deref());
            match (to_ig, linked_ig) {
                (true, Some(ig)) => messenger_like(world, auth, body, &ig, Platform::Instagram),
                _ => messenger_like(world, auth, body, page_id, Platform::Messenger),
            }
        }
        Node::Ig(ig_id) => {
            let page_id = world.ig(ig_id).map(|i| i.page_id.clone()).unwrap_or_default();
            if auth.kind == TokenKind::Page && auth.page_id.as_deref() != Some(page_id.as_str()) {
                return Err(GraphError::unsupported(&req.method, ig_id));
            }
            require_page_token(auth, &page_id)?;
            messenger_like(world, auth, req.body_object(), ig_id, Platform::Instagram)
        }
        Node::Phone(phone_id) => whatsapp(world, auth, req, phone_id),
        // `/me/messages` with a user or system user token: Meta asks for a Page token.
        Node::User(_) | Node::SystemUser(_) => Err(GraphError::page_token_required()),
        Node::Waba(id) | Node::Message(id) | Node::Conversation(id) | Node::Media(id) => {
            Err(GraphError::unsupported(&req.method, id))
        }
    }
}

fn require_page_token(auth: &Auth, page_id: &str) -> Result<(), GraphError> {
    if auth.kind != TokenKind::Page {
        return Err(GraphError::page_token_required());
    }
    if auth.page_id.as_deref() != Some(page_id) {
        return Err(GraphError::permissions_error());
    }
    Ok(())
}

fn recipient_id(body: &Value) -> Option<&str> {
    body.get("recipient")?.get("id")?.as_str()
}

fn messenger_like(
    world: &mut World,
    auth: &Auth,
    body: Value,
    sender_id: &str,
    platform: Platform,
) -> Result<Reply, GraphError> {
    let scope = match platform {
        Platform::Messenger => "pages_messaging",
        Platform::Instagram => "instagram_manage_messages",
    };
    if !auth.has(scope) {
        return Err(GraphError::messaging_permission(scope));
    }
    let recipient = body
        .get("recipient")
        .filter(|r| r.is_object())
        .ok_or_else(|| GraphError::missing_param("recipient"))?;
    let by_id = recipient.get("id").and_then(Value::as_str);
    let target = [
        "id",
        "user_ref",
        "comment_id",
        "post_id",
        "notification_messages_token",
    ]
    .iter()
    .find_map(|k| recipient.get(*k).and_then(Value::as_str))
    .filter(|t| !t.is_empty())
    .ok_or_else(|| GraphError::invalid_param("param recipient must be non-empty."))?
    .to_owned();
    let mut purpose = Purpose::Standard;
    if let Some(t) = body.get("messaging_type").and_then(Value::as_str) {
        if !matches!(t, "RESPONSE" | "UPDATE" | "MESSAGE_TAG") {
            return Err(GraphError::invalid_param(format!(
                "Param messaging_type must be one of {{RESPONSE, UPDATE, MESSAGE_TAG}} - got \"{t}\""
            )));
        }
        if t == "MESSAGE_TAG" {
            match body.get("tag").and_then(Value::as_str) {
                None => {
                    return Err(GraphError::invalid_param(
                        "Param tag is required when messaging_type is MESSAGE_TAG",
                    ));
                }
                Some(HUMAN_AGENT) => purpose = Purpose::HumanAgent,
                Some(other) => {
                    return Err(GraphError::invalid_param(format!(
                        "Param tag must be one of {{HUMAN_AGENT}} - got \"{other}\""
                    )));
                }
            }
        }
    }
    let thread = by_id.map(|id| ThreadKey::new(sender_id, id));
    let mut reply = serde_json::Map::new();
    if let Some(id) = by_id {
        reply.insert("recipient_id".into(), id.into());
    }
    let Some(message) = body.get("message") else {
        return match body.get("sender_action").and_then(Value::as_str) {
            Some("typing_on" | "typing_off" | "mark_seen") => {
                gate(world, thread.as_ref(), platform, purpose)?;
                Ok(Reply::Json(Value::Object(reply)))
            }
            Some(other) => Err(GraphError::invalid_param(format!(
                "Param sender_action must be one of {{typing_on, typing_off, mark_seen}} - got \"{other}\""
            ))),
            None => Err(GraphError::invalid_param(
                "Must send either message or sender_action",
            )),
        };
    };
    let text = message.get("text").and_then(Value::as_str);
    if text.is_none() && message.get("attachment").is_none() && message.get("sticker_id").is_none() {
        return Err(GraphError::invalid_param(
            "param message must contain text, attachment or sticker_id",
        ));
    }
    if let Some(t) = text {
        let (too_long, max) = match platform {
            Platform::Messenger => (
                t.chars().count() > MESSENGER_TEXT_MAX_CHARS,
                MESSENGER_TEXT_MAX_CHARS,
            ),
            Platform::Instagram => (t.len() > INSTAGRAM_TEXT_MAX_BYTES, INSTAGRAM_TEXT_MAX_BYTES),
        };
        if too_long {
            return Err(GraphError::invalid_param(format!(
                "Length of param message[text] must be less than or equal to {max}"
            )));
        }
    }
    gate(world, thread.as_ref(), platform, purpose)?;
    let message_id = match platform {
        Platform::Messenger => ids::messenger_mid(),
        Platform::Instagram => ids::instagram_mid(sender_id),
    };
    let now = world.now_ms();
    if let Some(key) = &thread {
        let channel = match platform {
            Platform::Messenger => Channel::Messenger,
            Platform::Instagram => Channel::Instagram,
        };
        world
            .threads
            .record(channel, key, stored_outbound(&message_id, message, now));
        let chain = outbox::after_messenger_send(
            &SentOnMessenger {
                platform,
                account: sender_id,
                customer: &key.customer,
                mid: &message_id,
                message,
                app_id: world.app_id_value(),
                at_ms: now,
            },
            world.outbox.behaviour(&key.customer),
            &world.outbox.timing,
        );
        world.schedule(chain);
    }
    world.sent.push(SentMessage {
        sender_object_id: sender_id.to_owned(),
        recipient: target,
        body: body.clone(),
        message_id: message_id.clone(),
    });
    reply.insert("message_id".into(), message_id.into());
    Ok(Reply::Json(Value::Object(reply)))
}

/// Windows and thread ownership, once the request itself is valid. They concern people
/// addressed by PSID/IGSID; private replies (`comment_id`, `post_id`) and `user_ref`s follow
/// other rules, not simulated.
fn gate(
    world: &World,
    thread: Option<&ThreadKey>,
    platform: Platform,
    purpose: Purpose,
) -> Result<(), GraphError> {
    match thread {
        Some(key) => world.threads.check_messenger_send(
            key,
            platform == Platform::Instagram,
            purpose,
            &world.config.app_id,
            world.now_ms(),
        ),
        None => Ok(()),
    }
}

/// Our message as the Conversations API will show it.
fn stored_outbound(id: &str, message: &Value, at_ms: i64) -> StoredMessage {
    let attachments = message
        .get("attachment")
        .map(|a| StoredAttachment {
            kind: a.get("type").and_then(Value::as_str).unwrap_or("file").to_owned(),
            url: a
                .get("payload")
                .and_then(|p| p.get("url"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            mime_type: None,
            size: None,
        })
        .into_iter()
        .collect();
    StoredMessage {
        id: id.to_owned(),
        from_customer: false,
        text: message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        attachments,
        at_ms,
    }
}

const WHATSAPP_TYPES: &[&str] = &[
    "text",
    "template",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "reaction",
];

fn whatsapp(world: &mut World, auth: &Auth, req: &GraphRequest, phone_id: &str) -> Result<Reply, GraphError> {
    let waba_id = world
        .phone(phone_id)
        .map(|p| p.waba_id.clone())
        .unwrap_or_default();
    if !world.can_access_waba(auth, &waba_id) {
        return Err(GraphError::unsupported(&req.method, phone_id));
    }
    if !auth.has("whatsapp_business_messaging") {
        return Err(
            GraphError::new(10, "(#10) Application does not have permission for this action")
                .whatsapp_details("The token lacks the whatsapp_business_messaging permission"),
        );
    }
    let body = req.body_object();
    match body.get("messaging_product").and_then(Value::as_str) {
        Some("whatsapp") => {}
        Some(other) => {
            return Err(GraphError::invalid_param(format!(
                "Param messaging_product must be one of {{whatsapp}} - got \"{other}\""
            )));
        }
        None => return Err(GraphError::missing_param("messaging_product")),
    }
    // Mark as read (optionally with a typing indicator): not a message.
    if body.get("status").and_then(Value::as_str) == Some("read") {
        if body.get("message_id").and_then(Value::as_str).is_none() {
            return Err(GraphError::missing_param("message_id"));
        }
        return Ok(Reply::Json(json!({"success": true})));
    }
    let to = match body.get("to").or_else(|| body.get("recipient")) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(GraphError::missing_param("to")),
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    if !WHATSAPP_TYPES.contains(&kind) {
        return Err(GraphError::new(131009, "(#131009) Parameter value is not valid")
            .whatsapp_details(format!("Unsupported message type: {kind}")));
    }
    let Some(content) = body.get(kind).filter(|c| c.is_object()) else {
        return Err(GraphError::missing_param(kind));
    };
    if kind == "text"
        && content
            .get("body")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(GraphError::missing_param("text['body']"));
    }
    let wa_id = wa_digits(&to);
    let key = ThreadKey::new(phone_id, &wa_id);
    let now = world.now_ms();
    let in_window = world.threads.whatsapp_window_open(&key, now);
    let template = match kind {
        "template" => Some(world.templates.check_send(&waba_id, content)?.category),
        _ => None,
    };
    // Outside the customer-service window only templates go out (§3.3).
    let mut failure = None;
    if template.is_none() && !in_window {
        match world.threads.reengagement {
            WhatsAppReengagement::Sync => return Err(GraphError::whatsapp_reengagement()),
            WhatsAppReengagement::Async => failure = Some(WaError::re_engagement()),
        }
    }
    let message_id = ids::wamid(&wa_id);
    let mut message = json!({"id": message_id});
    if template.is_some() {
        message["message_status"] = "accepted".into();
    }
    let display = world
        .phone(phone_id)
        .map(|p| wa_digits(&p.display))
        .unwrap_or_default();
    let sent = SentOnWhatsApp {
        business: Business::new(&waba_id, phone_id, &display),
        wamid: &message_id,
        recipient: &wa_id,
        callback_data: body.get("biz_opaque_callback_data").and_then(Value::as_str),
        at_s: now / 1000,
    };
    let chain = match failure {
        Some(error) => outbox::whatsapp_failed(&sent, error, &world.outbox.timing),
        None => {
            let free_entry = world.threads.free_entry_point(&key, now);
            outbox::after_whatsapp_send(
                &sent,
                &pricing(template, in_window, free_entry),
                world.outbox.behaviour(&wa_id),
                &world.outbox.timing,
            )
        }
    };
    world.schedule(chain);
    world.sent.push(SentMessage {
        sender_object_id: phone_id.to_owned(),
        recipient: to.clone(),
        body: body.clone(),
        message_id: message_id.clone(),
    });
    Ok(Reply::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [message],
    })))
}

/// `pricing` of a status (per-message pricing since 1 Jul 2025): service replies and utility
/// templates inside the window are free, ad-opened conversations are a free entry point for
/// 72 h, everything else is billed in the template's category.
fn pricing(template: Option<TemplateCategory>, in_window: bool, free_entry: bool) -> Value {
    let category = template.map_or("service", |c| match c {
        TemplateCategory::Marketing => "marketing",
        TemplateCategory::Utility => "utility",
        TemplateCategory::Authentication => "authentication",
    });
    let (billable, ty) = match template {
        _ if free_entry => (false, "free_entry_point"),
        None => (false, "free_customer_service"),
        Some(TemplateCategory::Utility) if in_window => (false, "free_customer_service"),
        Some(_) => (true, "regular"),
    };
    json!({"billable": billable, "pricing_model": "PMP", "type": ty, "category": category})
}
