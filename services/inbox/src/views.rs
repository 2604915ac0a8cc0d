//! Conversations as the API and the live events show them: the stored row with its contact and
//! channel kind. Shared by the gRPC reads, the RPCs that change a conversation and the snooze
//! wake-up, so an event and a read of the same conversation always agree.

use std::collections::HashMap;

use scifer_proto::{
    events::v1::{self as ev, InboxEvent, inbox_event},
    inbox::v1 as pb,
};
use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    apply::Emission,
    convert,
    domain::WorkspaceId,
    store,
    store::entity::{conversation, message},
};

/// `rows` (all of workspace `ws`) with their details, in the same order.
pub async fn conversations(
    db: &impl ConnectionTrait,
    ws: &WorkspaceId,
    rows: &[conversation::Model],
) -> Result<Vec<pb::Conversation>, DbErr> {
    let contacts: HashMap<String, _> =
        store::contacts_by_id(db, ws, rows.iter().map(|c| c.contact_id.clone()).collect())
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
    let kinds: HashMap<String, i32> =
        store::channels_by_id(db, ws, rows.iter().map(|c| c.channel_id.clone()).collect())
            .await?
            .into_iter()
            .map(|c| (c.id, c.kind))
            .collect();
    let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
    let mut labels = store::labels_of(db, &ids).await?;
    let mut views: Vec<pb::Conversation> = rows
        .iter()
        .map(|c| {
            let kind = kinds.get(&c.channel_id).copied().unwrap_or_default();
            let mut view = convert::conversation(c, contacts.get(&c.contact_id), kind);
            view.labels = labels.remove(&c.id).unwrap_or_default();
            view
        })
        .collect();
    // Automation and handoff (issue 5): who handles each conversation.
    crate::automation::state::fill(db, &mut views).await?;
    Ok(views)
}

/// One conversation with its details.
pub async fn conversation(
    db: &impl ConnectionTrait,
    ws: &WorkspaceId,
    row: &conversation::Model,
) -> Result<pb::Conversation, DbErr> {
    let mut one = conversations(db, ws, std::slice::from_ref(row)).await?;
    Ok(one.pop().unwrap_or_default())
}

/// The `ConversationUpdated` event for a change made outside the consumers (an RPC, the snooze
/// wake-up). Each change gets its own message id: two changes are two events.
pub fn conversation_updated(workspace_id: &str, conversation: pb::Conversation) -> Emission {
    let msg_id = format!(
        "inbox.conversation_updated.{}.{}",
        conversation.id,
        uuid::Uuid::now_v7()
    );
    Emission {
        subject_kind: "conversation_updated",
        workspace_id: workspace_id.to_string(),
        msg_id: msg_id.clone(),
        event: InboxEvent {
            event_id: msg_id,
            workspace_id: workspace_id.to_string(),
            at: Some(convert::timestamp(chrono::Utc::now().timestamp_millis())),
            kind: Some(inbox_event::Kind::ConversationUpdated(ev::ConversationUpdated {
                conversation: Some(conversation),
            })),
        },
        cause: String::new(),
    }
}

/// The `MessageCreated` event for a message stored outside the consumers (a note).
pub fn message_created(m: &message::Model) -> Emission {
    let msg_id = format!("inbox.message_created.{}", m.id);
    Emission {
        subject_kind: "message_created",
        workspace_id: m.workspace_id.clone(),
        msg_id: msg_id.clone(),
        event: InboxEvent {
            event_id: msg_id,
            workspace_id: m.workspace_id.clone(),
            at: Some(convert::timestamp(chrono::Utc::now().timestamp_millis())),
            kind: Some(inbox_event::Kind::MessageCreated(ev::MessageCreated {
                message: Some(convert::message(m)),
            })),
        },
        cause: String::new(),
    }
}
