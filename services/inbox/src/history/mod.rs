//! History, gaps and media: the backfill and reconciliation with Meta's Conversations API.
//!
//! Messenger and Instagram only: WhatsApp has no API to read past messages, so a WhatsApp inbox
//! holds what webhooks delivered since the number connected.
//!
//! - **When.** A backfill once per *connection*: when a channel becomes CONNECTED from anything
//!   else (new, DISCONNECTED, NEEDS_REAUTH, where webhooks may have been missed). A version bump
//!   of a channel that stays CONNECTED (a new name, a refreshed token) asks for none. The
//!   consumer records the request in `channel_sync` in the transaction that applies the
//!   channel event, so it survives restarts. Then every `RECONCILE_INTERVAL_SECS` (0 = off) a
//!   reconciliation of connected channels looks back `RECONCILE_LOOKBACK_HOURS`.
//! - **How much.** The newest `BACKFILL_MAX_CONVERSATIONS` conversations, and of each the
//!   newest `BACKFILL_MAX_MESSAGES_PER_CONVERSATION` messages (one nested page, at most 100).
//!   Instagram returns only the 20 most recent messages of a conversation: an Instagram
//!   backfill is capped there, and `GetChannelSync` says so.
//! - **Not from the side.** What Graph returned is published as MetaEvents (marked
//!   `reconciled`, event id `reconcile:<channel>:<mid>`) on the META stream, so the one consumer
//!   applies them in order with the webhooks; a message it already has (same mid on the
//!   channel) is a duplicate and stays as the webhook made it. A message stored this way is
//!   `reconciled`; the webhook delivering it later adds nothing. Business messages younger
//!   than `RECONCILE_SETTLE_SECS` are left to their echo or send result, which know whether
//!   inbox sent them.
//! - **Errors.** Throttling (with Meta's retry-after), an invalid token or a refused permission
//!   stop that channel's run; the error and the earliest next run are recorded
//!   (`channel_sync`), and other channels carry on.
//! - A reconnect of an account that was disconnected before gets only what Meta holds from
//!   after that disconnect: the consumer drops older events of a disconnected account.

pub mod domain;
pub mod status;
pub mod worker;

use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};

use crate::store::entity::channel_sync;

pub use worker::{HistorySettings, HistorySync};

/// In the consumer's transaction, after a channel event was applied over `previous_state` (None
/// for a new channel): asks for a backfill when the channel has just connected; forgets the
/// sync state when it disconnected.
pub async fn on_channel_event<C: ConnectionTrait>(
    db: &C,
    workspace_id: &str,
    event: &ChannelEvent,
    previous_state: Option<i32>,
    now_ms: i64,
) -> Result<(), DbErr> {
    if event.state == ChannelState::Disconnected as i32 {
        channel_sync::Entity::delete_by_id(event.channel_id.clone())
            .exec(db)
            .await?;
        return Ok(());
    }
    let kind = ChannelKind::try_from(event.kind).unwrap_or(ChannelKind::Unspecified);
    let connected_now = event.state == ChannelState::Connected as i32
        && previous_state != Some(ChannelState::Connected as i32);
    if connected_now && domain::supported(kind) {
        let row = state_row(workspace_id, &event.channel_id, true, now_ms);
        channel_sync::Entity::insert(row)
            .on_conflict(
                OnConflict::column(channel_sync::Column::ChannelId)
                    .update_columns([
                        channel_sync::Column::WorkspaceId,
                        channel_sync::Column::BackfillPending,
                        channel_sync::Column::BackfillRequestedAtMs,
                        channel_sync::Column::NotBeforeMs,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        tracing::info!(channel_id = %event.channel_id, "channel connected: history backfill requested");
    }
    Ok(())
}

fn state_row(workspace_id: &str, channel_id: &str, backfill: bool, now_ms: i64) -> channel_sync::ActiveModel {
    channel_sync::ActiveModel {
        channel_id: Set(channel_id.to_string()),
        workspace_id: Set(workspace_id.to_string()),
        backfill_pending: Set(backfill),
        backfill_requested_at_ms: Set(if backfill { now_ms } else { 0 }),
        backfilled_at_ms: Set(0),
        last_run_at_ms: Set(0),
        last_run_kind: Set(String::new()),
        last_success_at_ms: Set(0),
        high_water_ms: Set(0),
        conversations_seen: Set(0),
        messages_seen: Set(0),
        messages_published: Set(0),
        last_error: Set(String::new()),
        not_before_ms: Set(0),
        runs: Set(0),
    }
}

/// The sync state of a channel connected before inbox kept one (or whose connect it missed).
pub(crate) async fn insert_state<C: ConnectionTrait>(
    db: &C,
    workspace_id: &str,
    channel_id: &str,
    backfill: bool,
    now_ms: i64,
) -> Result<channel_sync::Model, DbErr> {
    channel_sync::Entity::insert(state_row(workspace_id, channel_id, backfill, now_ms))
        .on_conflict(
            OnConflict::column(channel_sync::Column::ChannelId)
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(db)
        .await?;
    channel_sync::Entity::find_by_id(channel_id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("channel_sync {channel_id}")))
}
