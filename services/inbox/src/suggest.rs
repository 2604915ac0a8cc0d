//! `SuggestReply`: a draft reply from the configured AI provider (scifer-ai's OpenAI-compatible
//! client), for an agent to review. The provider sees the conversation's newest messages (not the
//! team's internal notes) and the workspace's canned responses, rendered for this conversation and
//! the most relevant to the customer's last message first. Nothing is stored or sent: the agent
//! sends the draft (or not) through SendMessage like any reply, and the gateway audits the
//! suggestion. Neither the prompt, the draft nor the key is logged.

use std::sync::Arc;

use scifer_ai::{
    AiError, CannedResponse, Channel, ContextMessage, OpenAiCompatible, Speaker, SuggestionProvider,
    SuggestionRequest,
};
use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1::{AuthorKind, MessageDirection, SuggestReplyRequest, SuggestReplyResponse},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{
    canned::Canned,
    convert::AttachmentRecord,
    domain::{
        self, WorkspaceId, attributes,
        canned::{Values, relevance},
    },
    error::InboxError,
    store::{
        self,
        entity::{channel, contact, message},
    },
};

/// Canned responses offered to the provider (its prompt keeps 50).
const MAX_CANNED: usize = 50;

pub struct Suggester {
    db: DatabaseConnection,
    canned: Canned,
    provider: Option<Arc<OpenAiCompatible>>,
}

fn channel_of(kind: i32) -> Channel {
    match ChannelKind::try_from(kind) {
        Ok(ChannelKind::Instagram) => Channel::Instagram,
        Ok(ChannelKind::Whatsapp) => Channel::WhatsApp,
        _ => Channel::Messenger,
    }
}

/// What the provider reads of a stored message; None for one with nothing to read.
fn context(m: &message::Model) -> Option<ContextMessage> {
    let speaker = match MessageDirection::try_from(m.direction) {
        Ok(MessageDirection::Inbound) => Speaker::Customer,
        Ok(MessageDirection::Outbound) => match AuthorKind::try_from(m.author_kind) {
            Ok(AuthorKind::Automation | AuthorKind::Ai) => Speaker::Automation,
            _ => Speaker::Agent,
        },
        // Internal notes stay with the team.
        _ => return None,
    };
    let text = if m.text.trim().is_empty() {
        // An attachment alone reads as its kind, "[image]".
        let attachments: Vec<AttachmentRecord> =
            serde_json::from_str(&m.attachments_json).unwrap_or_default();
        domain::preview("", attachments.first().map(|a| a.kind.as_str()))
    } else {
        m.text.clone()
    };
    if text.is_empty() {
        return None;
    }
    Some(ContextMessage {
        speaker,
        text,
        at: chrono::DateTime::from_timestamp_millis(m.sent_at_ms).unwrap_or_default(),
    })
}

impl Suggester {
    pub fn new(db: DatabaseConnection, provider: Option<Arc<OpenAiCompatible>>) -> Self {
        Self {
            canned: Canned::new(db.clone()),
            db,
            provider,
        }
    }

    pub async fn suggest(
        &self,
        ws: &WorkspaceId,
        req: SuggestReplyRequest,
    ) -> Result<SuggestReplyResponse, InboxError> {
        let provider = self.provider.as_ref().ok_or(InboxError::Ai(AiError::Disabled))?;
        let conv = store::find_conversation(&self.db, ws, &req.conversation_id)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let ch = channel::Entity::find_by_id(conv.channel_id.clone())
            .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?;
        let contact = contact::Entity::find_by_id(conv.contact_id.clone())
            .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?;
        let max_messages = provider.config().max_context_messages as u64;
        let messages: Vec<ContextMessage> = message::Entity::find()
            .filter(message::Column::WorkspaceId.eq(ws.as_str()))
            .filter(message::Column::ConversationId.eq(conv.id.as_str()))
            .filter(message::Column::Direction.ne(MessageDirection::Note as i32))
            .order_by_desc(message::Column::SentAtMs)
            .order_by_desc(message::Column::Id)
            .limit(max_messages)
            .all(&self.db)
            .await?
            .iter()
            .filter_map(context)
            .collect();
        let last_customer = messages
            .iter()
            .find(|m| m.speaker == Speaker::Customer)
            .map(|m| m.text.clone())
            .unwrap_or_default();

        // Rendered for this conversation, so the model sees the texts an agent would send.
        let values = Values {
            contact_name: contact
                .as_ref()
                .map(|c| c.display_name.clone())
                .unwrap_or_default(),
            agent_name: String::new(),
            business_name: ch.as_ref().map(|c| c.display_name.clone()).unwrap_or_default(),
            custom: contact
                .as_ref()
                .map(|c| attributes::from_json(&c.custom_attributes_json))
                .unwrap_or_default(),
        };
        let mut canned: Vec<CannedResponse> = self
            .canned
            .models(ws, "")
            .await?
            .iter()
            .map(|c| CannedResponse {
                shortcut: format!("/{}", c.short_code),
                text: domain::canned::render(&c.content, &values).text,
            })
            .collect();
        // Stable: equally relevant ones keep their short-code order.
        canned.sort_by_key(|c| std::cmp::Reverse(relevance(&c.text, &last_customer)));
        canned.truncate(MAX_CANNED);

        let request = SuggestionRequest {
            channel: ch.as_ref().map_or(Channel::Messenger, |c| channel_of(c.kind)),
            business_name: values.business_name.clone(),
            contact_name: Some(values.contact_name.clone()).filter(|n| !n.trim().is_empty()),
            messages,
            canned,
            language_hint: None,
        };
        let suggestion = provider.suggest(&request).await.map_err(InboxError::Ai)?;
        tracing::info!(
            conversation_id = %conv.id,
            model = %suggestion.model,
            confidence = suggestion.confidence,
            wants_human = suggestion.wants_human,
            truncated = suggestion.truncated,
            tokens = suggestion.usage_tokens,
            "reply suggested"
        );
        Ok(SuggestReplyResponse {
            text: suggestion.text,
            confidence: suggestion.confidence,
            wants_human: suggestion.wants_human,
            model: suggestion.model,
            truncated: suggestion.truncated,
        })
    }
}
