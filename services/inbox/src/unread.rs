//! Unread counts per user: each user's read marker per conversation (`MarkRead`), and the count
//! of customer messages after it. Messages are shown ordered by (sent_at_ms, id), so the marker
//! is that pair of the newest message the user has seen: a message that arrives late with an
//! older Meta timestamp sorts before it and is not counted, as it is shown above what they read.
//! Only inbound messages count: our replies, echoes and notes are never "unread".

use std::collections::HashMap;

use scifer_proto::events::v1::{self as ev, InboxEvent, inbox_event};
use scifer_proto::inbox::v1::{self as pb, MarkReadRequest, MarkReadResponse, MessageDirection};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::{
    apply::Emission,
    consumer::Engine,
    convert,
    domain::{AgentId, WorkspaceId},
    error::InboxError,
    store::{
        self,
        entity::{message, read_marker},
    },
};

/// Conversations per count query (each adds a few bind values).
const CHUNK: usize = 100;

/// Fills `unread_count` of `conversations` for `agent`.
pub async fn fill(
    db: &impl ConnectionTrait,
    agent: &AgentId,
    conversations: &mut [pb::Conversation],
) -> Result<(), DbErr> {
    let ids: Vec<String> = conversations.iter().map(|c| c.id.clone()).collect();
    let counts = counts(db, agent, &ids).await?;
    for c in conversations {
        c.unread_count = counts.get(&c.id).copied().unwrap_or(0);
    }
    Ok(())
}

/// Customer messages after `agent`'s marker, by conversation (absent: none).
pub async fn counts(
    db: &impl ConnectionTrait,
    agent: &AgentId,
    conversation_ids: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    let mut counts = HashMap::new();
    for chunk in conversation_ids.chunks(CHUNK) {
        let markers: HashMap<String, read_marker::Model> = read_marker::Entity::find()
            .filter(read_marker::Column::AgentId.eq(agent.as_str()))
            .filter(read_marker::Column::ConversationId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id.clone(), m))
            .collect();
        let mut after = Condition::any();
        for id in chunk {
            after = after.add(match markers.get(id) {
                None => Condition::all().add(message::Column::ConversationId.eq(id.as_str())),
                Some(m) => Condition::all()
                    .add(message::Column::ConversationId.eq(id.as_str()))
                    .add(
                        Condition::any()
                            .add(message::Column::SentAtMs.gt(m.read_sent_at_ms))
                            .add(
                                Condition::all()
                                    .add(message::Column::SentAtMs.eq(m.read_sent_at_ms))
                                    .add(message::Column::Id.gt(m.read_message_id.as_str())),
                            ),
                    ),
            });
        }
        let rows: Vec<(String, i64)> = message::Entity::find()
            .select_only()
            .column(message::Column::ConversationId)
            .column_as(message::Column::Id.count(), "unread")
            .filter(message::Column::Direction.eq(MessageDirection::Inbound as i32))
            .filter(after)
            .group_by(message::Column::ConversationId)
            .into_tuple()
            .all(db)
            .await?;
        counts.extend(rows);
    }
    Ok(counts)
}

/// Moves `agent`'s marker of a conversation forward to a message (its newest by default); never
/// back. Holds the engine's write lock so that the marker cannot outlive a conversation a
/// disconnect is deleting. A move is announced (`ReadMarkerMoved`) so the agent's other watchers
/// update their unread count.
pub async fn mark_read(
    db: &DatabaseConnection,
    engine: &Engine,
    ws: &WorkspaceId,
    agent: &AgentId,
    req: MarkReadRequest,
) -> Result<MarkReadResponse, InboxError> {
    let moved_to = {
        let _writer = engine.lock_writes().await;
        let txn = scifer_db::begin_write(db).await?;
        let conv = store::find_conversation(&txn, ws, &req.conversation_id)
            .await?
            .ok_or(InboxError::ConversationNotFound)?;
        let mut target = message::Entity::find()
            .filter(message::Column::WorkspaceId.eq(ws.as_str()))
            .filter(message::Column::ConversationId.eq(conv.id.as_str()));
        target = match req.up_to_message_id.trim() {
            "" => target,
            id => target.filter(message::Column::Id.eq(id)),
        };
        let target = target
            .order_by_desc(message::Column::SentAtMs)
            .order_by_desc(message::Column::Id)
            .one(&txn)
            .await?;
        let target = match (target, req.up_to_message_id.trim().is_empty()) {
            (Some(m), _) => Some(m),
            (None, false) => return Err(InboxError::MessageNotFound),
            (None, true) => None,
        };
        let mut moved_to = None;
        if let Some(target) = target {
            let current = read_marker::Entity::find_by_id((agent.as_str().to_string(), conv.id.clone()))
                .one(&txn)
                .await?;
            let newer = current.as_ref().is_none_or(|m| {
                (target.sent_at_ms, target.id.as_str()) > (m.read_sent_at_ms, m.read_message_id.as_str())
            });
            if newer {
                let row = read_marker::Model {
                    agent_id: agent.as_str().to_string(),
                    conversation_id: conv.id.clone(),
                    workspace_id: conv.workspace_id.clone(),
                    channel_id: conv.channel_id.clone(),
                    read_sent_at_ms: target.sent_at_ms,
                    read_message_id: target.id.clone(),
                    updated_at_ms: chrono::Utc::now().timestamp_millis(),
                };
                read_marker::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
                    .on_conflict(
                        OnConflict::columns([
                            read_marker::Column::AgentId,
                            read_marker::Column::ConversationId,
                        ])
                        .update_columns([
                            read_marker::Column::ReadSentAtMs,
                            read_marker::Column::ReadMessageId,
                            read_marker::Column::UpdatedAtMs,
                        ])
                        .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?;
                moved_to = Some(target.id);
            }
        }
        txn.commit().await?;
        moved_to
    };
    let unread = counts(db, agent, std::slice::from_ref(&req.conversation_id)).await?;
    let unread_count = unread.get(&req.conversation_id).copied().unwrap_or(0);
    if let Some(read_message_id) = moved_to {
        engine
            .announce(vec![read_marker_moved(
                ws,
                agent,
                &req.conversation_id,
                read_message_id,
                unread_count,
            )])
            .await;
    }
    Ok(MarkReadResponse { unread_count })
}

/// The `ReadMarkerMoved` event of one move; its id names the marker's new position, so a
/// republished move is deduplicated by the bus.
fn read_marker_moved(
    ws: &WorkspaceId,
    agent: &AgentId,
    conversation_id: &str,
    read_message_id: String,
    unread_count: i64,
) -> Emission {
    let msg_id = format!(
        "inbox.read_marker_moved.{}.{}.{}",
        conversation_id,
        agent.as_str(),
        read_message_id
    );
    Emission {
        subject_kind: "read_marker_moved",
        workspace_id: ws.as_str().to_string(),
        msg_id: msg_id.clone(),
        event: InboxEvent {
            event_id: msg_id,
            workspace_id: ws.as_str().to_string(),
            at: Some(convert::timestamp(chrono::Utc::now().timestamp_millis())),
            kind: Some(inbox_event::Kind::ReadMarkerMoved(ev::ReadMarkerMoved {
                conversation_id: conversation_id.to_string(),
                user_id: agent.as_str().to_string(),
                read_message_id,
                unread_count,
            })),
        },
        cause: String::new(),
    }
}
