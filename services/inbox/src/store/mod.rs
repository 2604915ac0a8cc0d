//! The inbox's own store: entities, migrations, and the workspace-scoped reads behind the gRPC API.
//! Writes from bus events live in [`crate::apply`], inside the consumers' batch transactions; the
//! team's writes (status, assignment, labels, notes, contacts) in the RPC modules, under the
//! consumers' write lock where they touch the same rows.

pub mod entity;
pub mod migration;
// Automation and handoff (issue 5).
pub mod automation_entity;
mod automation_migration;
// Issue 5: WhatsApp template sync, inbox analytics.
mod templates_analytics_migration;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

pub use migration::Migrator;

use std::collections::HashMap;

use crate::domain::{Cursor, WorkspaceId};
use entity::{channel, contact, conversation, conversation_label, message};

/// Values per `IN (...)` list.
const IN_CHUNK: usize = 500;

/// Opens the database at `url` and brings its schema up to date.
pub async fn open(url: &str) -> Result<DatabaseConnection, scifer_db::DbError> {
    scifer_db::open::<Migrator>(url).await
}

#[derive(Debug, Default, Clone)]
pub struct ConversationFilter {
    pub channel_id: Option<String>,
    pub status: Option<i32>,
    pub assignee: Option<Assignee>,
    pub team_id: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Agent(String),
    Nobody,
}

/// A page of conversations, newest activity first, after `cursor`; `limit` rows at most.
pub async fn list_conversations(
    db: &DatabaseConnection,
    workspace: &WorkspaceId,
    filter: &ConversationFilter,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<conversation::Model>, DbErr> {
    let mut query = conversation::Entity::find()
        .filter(conversation::Column::WorkspaceId.eq(workspace.as_str()))
        // The row is created just before its first message; if that insert loses a race with another
        // replica the conversation stays empty, and an empty conversation is not worth listing.
        .filter(conversation::Column::MessageCount.gt(0));
    if let Some(channel_id) = &filter.channel_id {
        query = query.filter(conversation::Column::ChannelId.eq(channel_id.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(conversation::Column::Status.eq(status));
    }
    match &filter.assignee {
        Some(Assignee::Agent(id)) => query = query.filter(conversation::Column::AssigneeId.eq(id.as_str())),
        Some(Assignee::Nobody) => query = query.filter(conversation::Column::AssigneeId.eq("")),
        None => {}
    }
    if let Some(team_id) = &filter.team_id {
        query = query.filter(conversation::Column::TeamId.eq(team_id.as_str()));
    }
    if let Some(label) = &filter.label {
        query = query.filter(
            conversation::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(conversation_label::Column::ConversationId)
                    .from(conversation_label::Entity)
                    .and_where(conversation_label::Column::WorkspaceId.eq(workspace.as_str()))
                    .and_where(conversation_label::Column::Label.eq(label.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(c) = cursor {
        query = query.filter(
            Condition::any()
                .add(conversation::Column::LastActivityAtMs.lt(c.at_ms))
                .add(
                    Condition::all()
                        .add(conversation::Column::LastActivityAtMs.eq(c.at_ms))
                        .add(conversation::Column::Id.lt(c.id.as_str())),
                ),
        );
    }
    query
        .order_by_desc(conversation::Column::LastActivityAtMs)
        .order_by_desc(conversation::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn find_conversation(
    db: &impl ConnectionTrait,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<Option<conversation::Model>, DbErr> {
    conversation::Entity::find_by_id(id.to_string())
        .filter(conversation::Column::WorkspaceId.eq(workspace.as_str()))
        .one(db)
        .await
}

/// Messages of a conversation older than `cursor`, newest first (the caller reverses the page).
pub async fn list_messages(
    db: &DatabaseConnection,
    workspace: &WorkspaceId,
    conversation_id: &str,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let mut query = message::Entity::find()
        .filter(message::Column::WorkspaceId.eq(workspace.as_str()))
        .filter(message::Column::ConversationId.eq(conversation_id));
    if let Some(c) = cursor {
        query = query.filter(
            Condition::any().add(message::Column::SentAtMs.lt(c.at_ms)).add(
                Condition::all()
                    .add(message::Column::SentAtMs.eq(c.at_ms))
                    .add(message::Column::Id.lt(c.id.as_str())),
            ),
        );
    }
    query
        .order_by_desc(message::Column::SentAtMs)
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn contacts_by_id(
    db: &impl ConnectionTrait,
    workspace: &WorkspaceId,
    ids: Vec<String>,
) -> Result<Vec<contact::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    contact::Entity::find()
        .filter(contact::Column::WorkspaceId.eq(workspace.as_str()))
        .filter(contact::Column::Id.is_in(ids))
        .all(db)
        .await
}

pub async fn channels_by_id(
    db: &impl ConnectionTrait,
    workspace: &WorkspaceId,
    ids: Vec<String>,
) -> Result<Vec<channel::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    channel::Entity::find()
        .filter(channel::Column::WorkspaceId.eq(workspace.as_str()))
        .filter(channel::Column::Id.is_in(ids))
        .all(db)
        .await
}

/// The labels of each of `conversation_ids` (ids read under their workspace), sorted; conversations
/// without labels are absent.
pub async fn labels_of(
    db: &impl ConnectionTrait,
    conversation_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, DbErr> {
    let mut labels: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in conversation_ids.chunks(IN_CHUNK) {
        let rows = conversation_label::Entity::find()
            .filter(conversation_label::Column::ConversationId.is_in(chunk.iter().cloned()))
            .order_by_asc(conversation_label::Column::Label)
            .all(db)
            .await?;
        for row in rows {
            labels.entry(row.conversation_id).or_default().push(row.label);
        }
    }
    Ok(labels)
}
