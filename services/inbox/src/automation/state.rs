//! Per-conversation automation state: the handler, the thread owner Meta named, the last away
//! message; and the standby marks. What the views show and a disconnect deletes.

use std::collections::HashMap;

use scifer_automation::HandlerKind;
use scifer_proto::inbox::v1 as pb;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::OnConflict};

use super::domain;
use crate::store::{
    automation_entity::{automation_idle, conversation_automation, standby_message},
    entity::conversation,
};

/// Values per `IN (...)` list.
const IN_CHUNK: usize = 500;

/// The state of `conversation`, with defaults when it has no row yet.
pub async fn load(
    db: &impl ConnectionTrait,
    conv: &conversation::Model,
) -> Result<conversation_automation::Model, DbErr> {
    Ok(conversation_automation::Entity::find_by_id(conv.id.clone())
        .filter(conversation_automation::Column::WorkspaceId.eq(conv.workspace_id.as_str()))
        .one(db)
        .await?
        .unwrap_or_else(|| conversation_automation::Model {
            conversation_id: conv.id.clone(),
            workspace_id: conv.workspace_id.clone(),
            channel_id: conv.channel_id.clone(),
            handler: pb::HandlerKind::Automation as i32,
            thread_owner_app_id: String::new(),
            last_away_at_ms: 0,
            updated_at_ms: 0,
        }))
}

/// Writes the whole state row (each writer holds the engine's write lock, so the read before it
/// is current).
pub async fn save(db: &impl ConnectionTrait, row: conversation_automation::Model) -> Result<(), DbErr> {
    conversation_automation::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
        .on_conflict(
            OnConflict::column(conversation_automation::Column::ConversationId)
                .update_columns([
                    conversation_automation::Column::Handler,
                    conversation_automation::Column::ThreadOwnerAppId,
                    conversation_automation::Column::LastAwayAtMs,
                    conversation_automation::Column::UpdatedAtMs,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The handler (`HandlerKind` as i32, AUTOMATION without a row) and thread owner of each of
/// `ids` (they are not columns of the conversation row).
pub async fn handlers(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, (i32, String)>, DbErr> {
    let mut found: HashMap<String, (i32, String)> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        for row in conversation_automation::Entity::find()
            .filter(conversation_automation::Column::ConversationId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            let handler = domain::handler_to_proto(domain::handler_from_i32(row.handler)) as i32;
            found.insert(row.conversation_id, (handler, row.thread_owner_app_id));
        }
    }
    for id in ids {
        found.entry(id.clone()).or_insert_with(|| {
            (
                domain::handler_to_proto(HandlerKind::Automation) as i32,
                String::new(),
            )
        });
    }
    Ok(found)
}

/// Sets `handler` and `thread_owner_app_id` on the views.
pub async fn fill(db: &impl ConnectionTrait, views: &mut [pb::Conversation]) -> Result<(), DbErr> {
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let mut found = handlers(db, &ids).await?;
    for view in views {
        if let Some((handler, owner)) = found.remove(&view.id) {
            view.handler = handler;
            view.thread_owner_app_id = owner;
        }
    }
    Ok(())
}

/// Sets the handler on the conversations of the consumer's `ConversationUpdated` events.
pub async fn fill_emissions(
    db: &impl ConnectionTrait,
    emissions: &mut [crate::apply::Emission],
) -> Result<(), DbErr> {
    use scifer_proto::events::v1::inbox_event::Kind;
    let ids: Vec<String> = emissions
        .iter()
        .filter_map(|e| match &e.event.kind {
            Some(Kind::ConversationUpdated(u)) => u.conversation.as_ref().map(|c| c.id.clone()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found = handlers(db, &ids).await?;
    for e in emissions {
        if let Some(Kind::ConversationUpdated(u)) = &mut e.event.kind
            && let Some(c) = u.conversation.as_mut()
            && let Some((handler, owner)) = found.get(&c.id)
        {
            c.handler = *handler;
            c.thread_owner_app_id = owner.clone();
        }
    }
    Ok(())
}

/// Marks a customer message Meta delivered on `standby`; called in the Meta consumer's batch
/// transaction, so the mark is committed with the message, before its MessageCreated goes out.
pub async fn mark_standby(
    db: &impl ConnectionTrait,
    channel_id: &str,
    external_id: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    let row = standby_message::Model {
        channel_id: channel_id.to_string(),
        external_id: external_id.to_string(),
        at_ms,
    };
    standby_message::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
        .on_conflict(
            OnConflict::columns([
                standby_message::Column::ChannelId,
                standby_message::Column::ExternalId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .try_insert()
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn is_standby(
    db: &impl ConnectionTrait,
    channel_id: &str,
    external_id: &str,
) -> Result<bool, DbErr> {
    Ok(
        standby_message::Entity::find_by_id((channel_id.to_string(), external_id.to_string()))
            .one(db)
            .await?
            .is_some(),
    )
}

/// Deletes the automation rows of a disconnected channel (inside its erase transaction).
pub async fn erase_channel(db: &impl ConnectionTrait, channel_id: &str) -> Result<(), DbErr> {
    conversation_automation::Entity::delete_many()
        .filter(conversation_automation::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?;
    automation_idle::Entity::delete_many()
        .filter(automation_idle::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?;
    standby_message::Entity::delete_many()
        .filter(standby_message::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?;
    Ok(())
}
