//! Store rows → protobuf (`scifer.inbox.v1`), shared by the gRPC service and the emitted events.

use scifer_proto::inbox::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::{
    domain::{DeliveryState, Reactions},
    store::entity::{contact, conversation, message},
};

/// What the store keeps of an attachment: Meta's metadata, and the state of inbox's own copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachmentRecord {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub caption: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filename: String,
    // History, gaps and media: inbox's own copy (`crate::media`), kept up to date by the media
    // worker. `scifer.inbox.v1.MediaState`; 0 when there is nothing to copy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub media_state: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_failure: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl From<&scifer_proto::events::v1::Attachment> for AttachmentRecord {
    fn from(a: &scifer_proto::events::v1::Attachment) -> Self {
        Self {
            kind: a.r#type.clone(),
            url: a.url.clone(),
            media_id: a.media_id.clone(),
            mime_type: a.mime_type.clone(),
            caption: a.caption.clone(),
            filename: a.filename.clone(),
            ..Self::default()
        }
    }
}

pub fn attachments_to_json(attachments: &[scifer_proto::events::v1::Attachment]) -> String {
    let records: Vec<AttachmentRecord> = attachments.iter().map(AttachmentRecord::from).collect();
    serde_json::to_string(&records).unwrap_or_else(|_| "[]".into())
}

pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn message(m: &message::Model) -> pb::Message {
    let attachments: Vec<AttachmentRecord> = serde_json::from_str(&m.attachments_json).unwrap_or_default();
    let reactions = Reactions::from_json(&m.reactions_json);
    pb::Message {
        id: m.id.clone(),
        conversation_id: m.conversation_id.clone(),
        external_id: if m.external_id.starts_with(crate::send::PLACEHOLDER_PREFIX) {
            String::new()
        } else {
            m.external_id.clone()
        },
        direction: m.direction,
        text: m.text.clone(),
        attachments: attachments
            .into_iter()
            .map(|a| pb::Attachment {
                r#type: a.kind,
                url: a.url,
                media_id: a.media_id,
                mime_type: a.mime_type,
                caption: a.caption,
                filename: a.filename,
                media_state: a.media_state,
                sha256: a.sha256,
                size_bytes: a.size_bytes,
                content_type: a.content_type,
                media_failure: a.media_failure,
            })
            .collect(),
        sent_at: Some(timestamp(m.sent_at_ms)),
        status: DeliveryState::from_i32(m.status).to_i32(),
        error_code: m.error_code,
        error_message: m.error_message.clone(),
        is_echo: m.is_echo,
        reactions: reactions
            .visible()
            .map(|(by, emoji)| pb::Reaction {
                by: by.to_string(),
                emoji: emoji.to_string(),
            })
            .collect(),
        edited: m.edited,
        reply_to_external_id: m.reply_to_external_id.clone(),
        payload: m.payload.clone(),
        author: (m.author_kind != 0).then(|| pb::Author {
            kind: m.author_kind,
            id: m.author_id.clone(),
        }),
        failure_reason: m.failure_reason.clone(),
        retryable: m.retryable,
        reconciled: m.reconciled,
    }
}

pub fn contact(k: &contact::Model) -> pb::Contact {
    pb::Contact {
        id: k.id.clone(),
        external_id: k.external_id.clone(),
        display_name: k.display_name.clone(),
        channel_id: k.channel_id.clone(),
        person_id: k.person().to_string(),
    }
}

pub fn conversation(
    c: &conversation::Model,
    contact: Option<&contact::Model>,
    channel_kind: i32,
) -> pb::Conversation {
    pb::Conversation {
        id: c.id.clone(),
        channel_id: c.channel_id.clone(),
        channel_kind,
        contact: contact.map(self::contact),
        status: c.status,
        last_activity_at: Some(timestamp(c.last_activity_at_ms)),
        last_message_preview: c.last_message_preview.clone(),
        message_count: c.message_count,
        created_at: Some(timestamp(c.created_at_ms)),
        assignee_id: c.assignee_id.clone(),
        team_id: c.team_id.clone(),
        snoozed_until: (c.snoozed_until_ms > 0).then(|| timestamp(c.snoozed_until_ms)),
        // Rows of their own: filled by `views` and the consumer's emissions.
        labels: Vec::new(),
        // Per caller: filled by `unread` for reads.
        unread_count: 0,
        // Automation and handoff (issue 5): a row of its own, filled by `views` and the
        // consumer's emissions.
        handler: 0,
        thread_owner_app_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_milliseconds() {
        let t = timestamp(1_767_225_600_123);
        assert_eq!((t.seconds, t.nanos), (1_767_225_600, 123_000_000));
        let t = timestamp(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_000_000));
    }
}
