//! The Conversations API, for backfill and reconciliation: `GET /{v}/{page-id}/conversations`
//! (`platform=messenger|instagram`), `GET /{v}/{conversation-id}` and its `messages` edge, and
//! `GET /{v}/{message-id}`, built from what the world knows (messages recorded through the
//! inbound helpers and [`super::GraphSim::record_customer_message`], plus our sends). Instagram
//! only shows the 20 most recent messages of a conversation, as Meta documents.

use serde_json::{Map, Value, json};

use super::accounts::{cursor, paged, window};
use super::errors::GraphError;
use super::fields::{self, Field};
use super::nodes::{render, requested};
use super::request::{GraphRequest, Reply};
use super::threads::{Channel, StoredAttachment, StoredMessage, Thread, ThreadKey};
use super::world::{Auth, Node, World};

/// Page size of a nested `messages{…}` expansion.
const NESTED_LIMIT: usize = 25;

/// Graph's timestamp format: `2026-01-01T00:00:00+0000`.
pub fn graph_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%z").to_string())
        .unwrap_or_default()
}

/// The Page a thread's account belongs to (itself, or the Page an Instagram account is
/// linked to).
fn page_of(world: &World, account: &str) -> String {
    world
        .ig(account)
        .map_or_else(|| account.to_owned(), |ig| ig.page_id.clone())
}

/// The token must manage the Page and hold the channel's messaging permission.
fn authorize(
    world: &World,
    auth: &Auth,
    req: &GraphRequest,
    account: &str,
    channel: Channel,
) -> Result<(), GraphError> {
    if !world.can_manage_page(auth, &page_of(world, account)) {
        return Err(GraphError::unsupported(&req.method, account));
    }
    let scope = match channel {
        Channel::Instagram => "instagram_manage_messages",
        Channel::Messenger | Channel::WhatsApp => "pages_messaging",
    };
    if auth.has(scope) {
        Ok(())
    } else {
        Err(GraphError::missing_permission(scope))
    }
}

fn participant(world: &World, channel: Channel, id: &str, business: bool) -> Value {
    let name = if business {
        world
            .page(id)
            .map(|p| p.name.clone())
            .or_else(|| world.ig(id).map(|i| i.username.clone()))
    } else {
        world.customer_names.get(id).cloned()
    };
    match channel {
        Channel::Instagram => json!({"username": name.unwrap_or_else(|| id.to_owned()), "id": id}),
        Channel::Messenger | Channel::WhatsApp => json!({
            "name": name.unwrap_or_else(|| "Facebook User".to_owned()),
            "email": format!("{id}@facebook.com"),
            "id": id,
        }),
    }
}

fn attachment(m: &StoredMessage, i: usize, a: &StoredAttachment) -> Value {
    let mut v = Map::new();
    v.insert(
        "id".into(),
        format!("{}_{i}", m.id.trim_start_matches("m_")).into(),
    );
    if let Some(mime) = &a.mime_type {
        v.insert("mime_type".into(), mime.clone().into());
    }
    if let Some(size) = a.size {
        v.insert("size".into(), size.into());
    }
    // Shapes as best known from Meta's Message reference (UNCERTAIN in detail).
    match a.kind.as_str() {
        "image" => {
            v.insert(
                "image_data".into(),
                json!({"url": a.url, "preview_url": a.url, "width": 0, "height": 0}),
            );
        }
        "video" => {
            v.insert("video_data".into(), json!({"url": a.url, "preview_url": a.url}));
        }
        _ => {
            v.insert("file_url".into(), a.url.clone().into());
        }
    }
    Value::Object(v)
}

fn render_message(
    world: &World,
    key: &ThreadKey,
    t: &Thread,
    m: &StoredMessage,
    fields: &[Field],
) -> Result<Value, GraphError> {
    let (from, to) = if m.from_customer {
        (key.customer.as_str(), key.account.as_str())
    } else {
        (key.account.as_str(), key.customer.as_str())
    };
    render(fields, &m.id, |f| {
        Ok(Some(match f.name.as_str() {
            "id" => return Ok(None),
            "message" => m.text.clone().into(),
            "created_time" => graph_time(m.at_ms).into(),
            "from" => participant(world, t.channel, from, !m.from_customer),
            "to" => json!({"data": [participant(world, t.channel, to, m.from_customer)]}),
            "attachments" if m.attachments.is_empty() => return Ok(None),
            "attachments" => json!({
                "data": m.attachments.iter().enumerate().map(|(i, a)| attachment(m, i, a)).collect::<Vec<_>>()
            }),
            "is_unsupported" => false.into(),
            other => return Err(GraphError::nonexisting_field(other, "Message")),
        }))
    })
}

fn fields_string(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| match &f.sub {
            Some(sub) => format!("{}{{{}}}", f.name, fields_string(sub)),
            None => f.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A nested `messages{…}`: the first page, with a `next` link to the conversation's
/// `messages` edge.
fn nested_messages(
    world: &World,
    req: &GraphRequest,
    key: &ThreadKey,
    t: &Thread,
    sub: &[Field],
) -> Result<Value, GraphError> {
    let visible = t.visible_messages();
    let end = visible.len().min(NESTED_LIMIT);
    let data = visible[..end]
        .iter()
        .map(|m| render_message(world, key, t, m, sub))
        .collect::<Result<Vec<_>, _>>()?;
    if data.is_empty() {
        return Ok(json!({ "data": data }));
    }
    let after = cursor(&visible[end - 1].id);
    let mut paging = json!({"cursors": {"before": cursor(&visible[0].id), "after": after}});
    if end < visible.len()
        && let Ok(mut url) = reqwest::Url::parse(&format!(
            "{}/{}/{}/messages",
            req.base_url(),
            req.version_or_default(),
            t.conversation_id
        ))
    {
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                if k == "access_token" || k == "appsecret_proof" {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("fields", &fields_string(sub));
            q.append_pair("limit", &NESTED_LIMIT.to_string());
            q.append_pair("after", &after);
        }
        paging["next"] = String::from(url).into();
    }
    Ok(json!({ "data": data, "paging": paging }))
}

fn render_conversation(
    world: &World,
    req: &GraphRequest,
    key: &ThreadKey,
    t: &Thread,
    fields: &[Field],
) -> Result<Value, GraphError> {
    render(fields, &t.conversation_id, |f| {
        Ok(Some(match f.name.as_str() {
            "id" => return Ok(None),
            "updated_time" => graph_time(t.updated_ms()).into(),
            "participants" => json!({"data": [
                participant(world, t.channel, &key.customer, false),
                participant(world, t.channel, &key.account, true),
            ]}),
            "messages" => {
                let sub = f
                    .sub
                    .clone()
                    .unwrap_or_else(|| fields::plain(&["id", "created_time"]));
                nested_messages(world, req, key, t, &sub)?
            }
            "message_count" => t.messages.len().into(),
            "unread_count" => 0.into(),
            "snippet" => t
                .messages
                .last()
                .map(|m| m.text.clone())
                .unwrap_or_default()
                .into(),
            "can_reply" => t
                .window_open(super::threads::Purpose::Standard, world.now_ms())
                .into(),
            "link" => format!("/{}/inbox/", page_of(world, &key.account)).into(),
            other => return Err(GraphError::nonexisting_field(other, "UnifiedThread")),
        }))
    })
}

/// `GET /{v}/{page-id|ig-id}/conversations`.
pub fn list(world: &World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    let (account, channel) = match node {
        Node::Page(page_id) => match req.param("platform").unwrap_or("messenger") {
            "messenger" => (page_id.clone(), Channel::Messenger),
            "instagram" => {
                let ig = world
                    .page(page_id)
                    .and_then(|p| p.instagram.clone())
                    .ok_or_else(|| GraphError::invalid_param("The Page has no linked Instagram account"))?;
                (ig, Channel::Instagram)
            }
            other => {
                return Err(GraphError::invalid_param(format!(
                    "Param platform must be one of {{MESSENGER, INSTAGRAM}} - got \"{other}\""
                )));
            }
        },
        Node::Ig(ig) => (ig.clone(), Channel::Instagram),
        other => return Err(GraphError::nonexisting_field("conversations", other.type_name())),
    };
    authorize(world, auth, req, &account, channel)?;
    let fields = requested(req, &["id", "updated_time"])?;
    let convs: Vec<(&ThreadKey, &Thread)> = world
        .threads
        .conversations_of(&account)
        .into_iter()
        .filter(|(k, _)| req.param("user_id").is_none_or(|u| u == k.customer))
        .collect();
    let ids: Vec<String> = convs.iter().map(|(_, t)| t.conversation_id.clone()).collect();
    let (start, end) = window(req, &ids)?;
    let data = convs[start..end]
        .iter()
        .map(|(k, t)| render_conversation(world, req, k, t, &fields))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::Json(paged(req, data, &ids, start, end)))
}

/// `GET /{v}/{conversation-id}`.
pub fn get_conversation(
    world: &World,
    auth: &Auth,
    req: &GraphRequest,
    id: &str,
) -> Result<Reply, GraphError> {
    let (key, t) = world
        .threads
        .find_conversation(id)
        .ok_or_else(|| GraphError::unsupported(&req.method, id))?;
    authorize(world, auth, req, &key.account, t.channel)?;
    let fields = requested(req, &["id", "updated_time"])?;
    Ok(Reply::Json(render_conversation(world, req, key, t, &fields)?))
}

/// `GET /{v}/{conversation-id}/messages`, newest first, cursor-paged.
pub fn messages(world: &World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    let Node::Conversation(id) = node else {
        return Err(GraphError::nonexisting_field("messages", node.type_name()));
    };
    let (key, t) = world
        .threads
        .find_conversation(id)
        .ok_or_else(|| GraphError::unsupported(&req.method, id))?;
    authorize(world, auth, req, &key.account, t.channel)?;
    let fields = requested(req, &["id", "created_time"])?;
    let visible = t.visible_messages();
    let ids: Vec<String> = visible.iter().map(|m| m.id.clone()).collect();
    let (start, end) = window(req, &ids)?;
    let data = visible[start..end]
        .iter()
        .map(|m| render_message(world, key, t, m, &fields))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::Json(paged(req, data, &ids, start, end)))
}

/// `GET /{v}/{message-id}`. On Instagram only the 20 most recent messages of a conversation
/// can be read; older ones answer like a missing object (exact error UNCERTAIN).
pub fn get_message(world: &World, auth: &Auth, req: &GraphRequest, id: &str) -> Result<Reply, GraphError> {
    let (key, t, m) = world
        .threads
        .find_message(id)
        .ok_or_else(|| GraphError::unsupported(&req.method, id))?;
    authorize(world, auth, req, &key.account, t.channel)?;
    if !t.visible_messages().iter().any(|v| v.id == m.id) {
        return Err(GraphError::unsupported(&req.method, id));
    }
    let fields = requested(req, &["id", "created_time"])?;
    Ok(Reply::Json(render_message(world, key, t, m, &fields)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_time_and_field_strings() {
        assert_eq!(graph_time(1_767_225_600_123), "2026-01-01T00:00:00+0000");
        let f = fields::parse("id,message,from,to{id},created_time").unwrap();
        assert_eq!(fields_string(&f), "id,message,from,to{id},created_time");
    }
}
