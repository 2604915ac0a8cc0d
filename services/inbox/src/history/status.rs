//! `GetChannelSync`: a channel's history sync, as the team sees it.

use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    inbox::v1::ChannelSync,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use super::{HistorySettings, domain};
use crate::{
    convert::timestamp,
    domain::WorkspaceId,
    error::InboxError,
    store::entity::{channel, channel_sync, message},
};

pub async fn get(
    db: &DatabaseConnection,
    settings: &HistorySettings,
    ws: &WorkspaceId,
    channel_id: &str,
) -> Result<ChannelSync, InboxError> {
    let ch = channel::Entity::find_by_id(channel_id.to_string())
        .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
        .filter(channel::Column::State.ne(ChannelState::Disconnected as i32))
        .one(db)
        .await?
        .ok_or(InboxError::ChannelNotFound)?;
    let kind = ChannelKind::try_from(ch.kind).unwrap_or(ChannelKind::Unspecified);
    let sync = channel_sync::Entity::find_by_id(ch.id.clone()).one(db).await?;
    let reconciled = message::Entity::find()
        .filter(message::Column::ChannelId.eq(ch.id.as_str()))
        .filter(message::Column::Reconciled.eq(true))
        .count(db)
        .await?;
    let at = |ms: i64| (ms > 0).then(|| timestamp(ms));
    let mut status = ChannelSync {
        channel_id: ch.id.clone(),
        supported: domain::supported(kind) && ch.state == ChannelState::Connected as i32,
        limits: domain::limits(kind, settings.max_conversations, settings.max_messages),
        reconciled_messages: reconciled,
        ..Default::default()
    };
    if let Some(s) = sync {
        let next = match (s.backfill_pending, settings.interval) {
            (true, _) => s.not_before_ms,
            (false, Some(every)) => s
                .last_run_at_ms
                .saturating_add(i64::try_from(every.as_millis()).unwrap_or(i64::MAX))
                .max(s.not_before_ms),
            (false, None) => s.not_before_ms,
        };
        status.backfill_pending = s.backfill_pending;
        status.backfilled_at = at(s.backfilled_at_ms);
        status.last_run_at = at(s.last_run_at_ms);
        status.last_run_kind = s.last_run_kind;
        status.last_success_at = at(s.last_success_at_ms);
        status.high_water_at = at(s.high_water_ms);
        status.conversations_seen = u32::try_from(s.conversations_seen).unwrap_or(0);
        status.messages_seen = u32::try_from(s.messages_seen).unwrap_or(0);
        status.messages_published = u32::try_from(s.messages_published).unwrap_or(0);
        status.last_error = s.last_error;
        status.next_run_at = at(next);
        status.runs = u32::try_from(s.runs).unwrap_or(0);
    }
    Ok(status)
}
