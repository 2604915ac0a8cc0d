//! Pure rules of the history sync: what to ask the Conversations API, and how its answer becomes
//! MetaEvents for the consumer.

use chrono::DateTime;
use scifer_proto::events::v1::{
    self as ev, ChannelKind, InboundMessage, MetaEvent, OutboundEcho, meta_event::Kind,
};
use serde_json::Value;

/// Instagram shows only the 20 most recent messages of a conversation (Meta's documentation;
/// the simulator does the same).
pub const INSTAGRAM_MESSAGE_CAP: u32 = 20;
/// Graph's largest page of a nested `messages` edge that we ask for.
pub const MAX_MESSAGES_PAGE: u32 = 100;
/// Conversations per listing page.
pub const CONVERSATIONS_PAGE: u32 = 25;

/// Whether a channel kind has a Conversations API.
pub fn supported(kind: ChannelKind) -> bool {
    matches!(kind, ChannelKind::Messenger | ChannelKind::Instagram)
}

/// What Meta lets us read back, in words, for the status.
pub fn limits(kind: ChannelKind, max_conversations: u32, max_messages: u32) -> String {
    match kind {
        ChannelKind::Messenger => format!(
            "the newest {max_conversations} conversations, and of each the newest {} messages",
            max_messages.min(MAX_MESSAGES_PAGE)
        ),
        ChannelKind::Instagram => format!(
            "the newest {max_conversations} conversations, and of each the newest {} messages \
             (Instagram returns only the 20 most recent messages of a conversation)",
            max_messages.min(INSTAGRAM_MESSAGE_CAP)
        ),
        ChannelKind::Whatsapp => {
            "WhatsApp has no API to read past messages: only webhooks fill the inbox".into()
        }
        ChannelKind::Unspecified => String::new(),
    }
}

/// Messages asked of each conversation.
pub fn messages_per_conversation(kind: ChannelKind, max_messages: u32) -> u32 {
    let cap = match kind {
        ChannelKind::Instagram => INSTAGRAM_MESSAGE_CAP,
        _ => MAX_MESSAGES_PAGE,
    };
    max_messages.clamp(1, cap)
}

/// The `fields` of the listing: each conversation with its newest messages nested, so one call
/// per page of conversations reads everything (and no conversation id has to be passed back
/// through the vault).
pub fn fields(messages: u32) -> String {
    format!("id,updated_time,messages.limit({messages}){{id,message,created_time,from,to,attachments}}")
}

/// One channel, as the events need it.
#[derive(Debug, Clone)]
pub struct ChannelRef<'a> {
    pub channel_id: &'a str,
    pub kind: ChannelKind,
    /// Page id or Instagram account id: who "from" is when the business wrote.
    pub account_id: &'a str,
}

/// Which messages of a page to hand on.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_messages: usize,
    /// Reconciliation: only messages sent at or after this (the lookback); 0 for a backfill.
    pub since_ms: i64,
    /// Messages the business sent at or after this are left to their echo or send result.
    pub settle_before_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Graph's conversations answer is not what was expected: {0}")]
pub struct Malformed(pub &'static str);

/// One page of the listing.
#[derive(Debug, Default)]
pub struct Page {
    pub conversations: Vec<Value>,
    /// Where the next page starts, when there is one.
    pub after: Option<String>,
}

pub fn parse_page(body: &Value) -> Result<Page, Malformed> {
    let data = body["data"].as_array().ok_or(Malformed("no data array"))?;
    let after = if body["paging"]["next"].is_string() {
        body["paging"]["cursors"]["after"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    } else {
        None
    };
    Ok(Page {
        conversations: data.clone(),
        after,
    })
}

/// Graph's time (`2026-01-01T00:00:00+0000`) in Unix ms.
pub fn graph_time_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What one conversation gave.
#[derive(Debug, Default)]
pub struct ReadBack {
    pub events: Vec<MetaEvent>,
    pub messages_seen: u32,
    pub newest_ms: i64,
}

/// The conversation's `updated_time`, if it has one.
pub fn updated_ms(conversation: &Value) -> Option<i64> {
    conversation["updated_time"].as_str().and_then(graph_time_ms)
}

/// The MetaEvents for one conversation of the listing (newest messages first, as Graph lists
/// them), within `bounds`.
pub fn events(channel: &ChannelRef<'_>, conversation: &Value, bounds: Bounds, now_ms: i64) -> ReadBack {
    let mut out = ReadBack::default();
    let Some(messages) = conversation["messages"]["data"].as_array() else {
        return out;
    };
    for m in messages.iter().take(bounds.max_messages) {
        out.messages_seen += 1;
        let (Some(mid), Some(at_ms)) = (
            m["id"].as_str().filter(|s| !s.is_empty()),
            m["created_time"].as_str().and_then(graph_time_ms),
        ) else {
            continue;
        };
        out.newest_ms = out.newest_ms.max(at_ms);
        if at_ms < bounds.since_ms {
            continue;
        }
        let from = m["from"]["id"].as_str().unwrap_or_default();
        let text = m["message"].as_str().unwrap_or_default().to_string();
        let attachments = attachments(m);
        let kind = if from == channel.account_id {
            if at_ms >= bounds.settle_before_ms {
                continue;
            }
            let Some(to) = m["to"]["data"][0]["id"].as_str() else {
                continue;
            };
            Kind::Echo(OutboundEcho {
                external_id: mid.to_string(),
                contact_id: to.to_string(),
                sent_at_ms: at_ms,
                text,
                attachments,
                app_id: String::new(),
                metadata: String::new(),
            })
        } else if from.is_empty() {
            continue;
        } else {
            let name = m["from"]["name"]
                .as_str()
                .or_else(|| m["from"]["username"].as_str())
                .unwrap_or_default();
            Kind::Message(InboundMessage {
                external_id: mid.to_string(),
                contact_id: from.to_string(),
                contact_name: name.to_string(),
                sent_at_ms: at_ms,
                text,
                attachments,
                ..Default::default()
            })
        };
        out.events.push(MetaEvent {
            event_id: event_id(channel.channel_id, mid),
            delivery_id: String::new(),
            received_at: Some(crate::convert::timestamp(now_ms)),
            channel_kind: channel.kind as i32,
            account_id: channel.account_id.to_string(),
            business_account_id: String::new(),
            standby: false,
            raw_item_json: m.to_string(),
            reconciled: true,
            kind: Some(kind),
        });
    }
    out
}

/// Stable per channel and message: a second run publishes the same id and the bus drops it.
pub fn event_id(channel_id: &str, mid: &str) -> String {
    format!("reconcile:{channel_id}:{mid}")
}

fn attachments(m: &Value) -> Vec<ev::Attachment> {
    let Some(list) = m["attachments"]["data"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let mime = a["mime_type"].as_str().unwrap_or_default().to_string();
            let (kind, url) = if let Some(url) = a["image_data"]["url"].as_str() {
                ("image", url)
            } else if let Some(url) = a["video_data"]["url"].as_str() {
                ("video", url)
            } else if let Some(url) = a["file_url"].as_str() {
                (
                    if mime.starts_with("audio/") {
                        "audio"
                    } else {
                        "file"
                    },
                    url,
                )
            } else {
                return None;
            };
            Some(ev::Attachment {
                r#type: kind.to_string(),
                url: url.to_string(),
                mime_type: mime,
                filename: a["name"].as_str().unwrap_or_default().to_string(),
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CH: ChannelRef<'static> = ChannelRef {
        channel_id: "ch-1",
        kind: ChannelKind::Messenger,
        account_id: "111",
    };

    fn conversation() -> Value {
        json!({"id": "t_1", "updated_time": "2026-01-01T00:10:00+0000", "messages": {"data": [
            {"id": "m_4", "message": "just sent", "created_time": "2026-01-01T00:10:00+0000",
             "from": {"id": "111", "name": "Shop"}, "to": {"data": [{"id": "222"}]}},
            {"id": "m_3", "message": "", "created_time": "2026-01-01T00:05:00+0000",
             "from": {"id": "222", "name": "Ann"}, "to": {"data": [{"id": "111"}]},
             "attachments": {"data": [{"id": "a", "mime_type": "image/png",
                 "image_data": {"url": "https://x.fbcdn.net/a.png"}}]}},
            {"id": "m_2", "message": "sure", "created_time": "2026-01-01T00:02:00+0000",
             "from": {"id": "111", "name": "Shop"}, "to": {"data": [{"id": "222"}]}},
            {"id": "m_1", "message": "hi", "created_time": "2026-01-01T00:00:00+0000",
             "from": {"id": "222", "name": "Ann"}, "to": {"data": [{"id": "111"}]}}
        ]}})
    }

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn graph_times_parse() {
        assert_eq!(graph_time_ms("2026-01-01T00:00:00+0000"), Some(T0));
        assert_eq!(graph_time_ms("nonsense"), None);
    }

    #[test]
    fn customers_messages_become_inbound_and_the_business_echoes_marked_reconciled() {
        let bounds = Bounds {
            max_messages: 10,
            since_ms: 0,
            settle_before_ms: T0 + 9 * 60_000,
        };
        let got = events(&CH, &conversation(), bounds, T0);
        assert_eq!(got.messages_seen, 4);
        assert_eq!(got.newest_ms, T0 + 600_000);
        // m_4 is younger than the settle time: left to its own echo.
        let ids: Vec<&str> = got.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            ["reconcile:ch-1:m_3", "reconcile:ch-1:m_2", "reconcile:ch-1:m_1"]
        );
        assert!(got.events.iter().all(|e| e.reconciled && e.account_id == "111"));
        match &got.events[0].kind {
            Some(Kind::Message(m)) => {
                assert_eq!((m.contact_id.as_str(), m.contact_name.as_str()), ("222", "Ann"));
                assert_eq!(m.attachments[0].r#type, "image");
                assert_eq!(m.attachments[0].url, "https://x.fbcdn.net/a.png");
                assert_eq!(m.sent_at_ms, T0 + 300_000);
            }
            other => panic!("{other:?}"),
        }
        match &got.events[1].kind {
            Some(Kind::Echo(e)) => assert_eq!((e.contact_id.as_str(), e.text.as_str()), ("222", "sure")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bounds_cap_messages_and_the_lookback() {
        let bounds = Bounds {
            max_messages: 2,
            since_ms: 0,
            settle_before_ms: i64::MAX,
        };
        assert_eq!(events(&CH, &conversation(), bounds, T0).events.len(), 2);
        let bounds = Bounds {
            max_messages: 10,
            since_ms: T0 + 60_000,
            settle_before_ms: i64::MAX,
        };
        let got = events(&CH, &conversation(), bounds, T0);
        assert_eq!(got.events.len(), 3);
        assert_eq!(got.messages_seen, 4);
    }

    #[test]
    fn instagram_is_capped_at_twenty_and_whatsapp_unsupported() {
        assert_eq!(messages_per_conversation(ChannelKind::Instagram, 50), 20);
        assert_eq!(messages_per_conversation(ChannelKind::Messenger, 50), 50);
        assert_eq!(messages_per_conversation(ChannelKind::Messenger, 500), 100);
        assert!(limits(ChannelKind::Instagram, 10, 50).contains("20 most recent"));
        assert!(!supported(ChannelKind::Whatsapp));
        assert!(fields(20).contains("messages.limit(20){"));
    }

    #[test]
    fn pages_follow_the_after_cursor_only_when_there_is_a_next_page() {
        let p = parse_page(&json!({"data": [{"id": "t_1"}], "paging": {"cursors": {"after": "X"}, "next": "https://graph/next"}})).unwrap();
        assert_eq!((p.conversations.len(), p.after.as_deref()), (1, Some("X")));
        let p = parse_page(&json!({"data": [], "paging": {"cursors": {"after": "X"}}})).unwrap();
        assert_eq!(p.after, None);
        assert!(parse_page(&json!({"error": {}})).is_err());
    }
}
