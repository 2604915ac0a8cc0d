//! The inbox's own store: entities, migrations, and the workspace-scoped reads behind the gRPC API.
//! Writes live in [`crate::apply`], inside the consumers' batch transactions.

pub mod entity;
pub mod migration;

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

pub use migration::Migrator;

use crate::domain::{Cursor, WorkspaceId};
use entity::{channel, contact, conversation, message};

/// Opens the database at `url` and brings its schema up to date.
pub async fn open(url: &str) -> Result<DatabaseConnection, scifer_db::DbError> {
    scifer_db::open::<Migrator>(url).await
}

#[derive(Debug, Default, Clone)]
pub struct ConversationFilter {
    pub channel_id: Option<String>,
    pub status: Option<i32>,
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
    db: &DatabaseConnection,
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
    db: &DatabaseConnection,
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
    db: &DatabaseConnection,
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
