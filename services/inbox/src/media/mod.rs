//! History, gaps and media: inbox's own copy of every inbound attachment.
//!
//! Meta's attachment URLs (Messenger, Instagram) expire within days and WhatsApp's media ids
//! lead to URLs that live minutes, so each attachment is fetched once, in the background, and
//! kept in the workspace's media storage ([`storage`]: a local directory by default,
//! S3-compatible object storage in production) under its SHA-256.
//!
//! - The consumer that stores an inbound message also stores a PENDING `media_files` row per
//!   attachment with a source (in the same transaction), so the work survives restarts.
//! - The [`worker::MediaWorker`] fetches due rows: URLs directly (hosts from `MEDIA_URL_HOSTS`
//!   only, redirects only inside that list, at most `MEDIA_MAX_BYTES`, within
//!   `MEDIA_FETCH_TIMEOUT_MS`), WhatsApp media ids through token-vault's `FetchMedia`, and
//!   streams the bytes to storage while hashing them. A 403/404 from the CDN ends EXPIRED; other
//!   failures are retried with a doubling wait up to `MEDIA_MAX_ATTEMPTS`, then FAILED. Each
//!   change is written into the message's attachments and announced as `MessageUpdated`.
//! - `GetMedia` ([`serve`]) streams a stored copy back, scoped to the caller's workspace.
//! - A channel's disconnect deletes its rows and leaves a purge of its storage prefix, which the
//!   worker carries out (see [`forget_channel`]).

pub mod domain;
pub mod serve;
pub mod storage;
pub mod worker;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, sea_query::OnConflict};

use crate::store::entity::{media_file, media_purge};

pub use storage::MediaStorage;
pub use worker::MediaWorker;

/// The copy rows for one new inbound message (written by the consumer with the message).
pub fn jobs_for(
    workspace_id: &str,
    channel_id: &str,
    message_id: &str,
    jobs: Vec<(i32, domain::Source)>,
    now_ms: i64,
) -> Vec<media_file::Model> {
    jobs.into_iter()
        .map(|(index, source)| media_file::Model {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: workspace_id.to_string(),
            channel_id: channel_id.to_string(),
            message_id: message_id.to_string(),
            attachment_index: index,
            source_kind: source.kind().to_string(),
            source: source.value().to_string(),
            state: scifer_proto::inbox::v1::MediaState::Pending as i32,
            attempts: 0,
            next_attempt_at_ms: now_ms,
            failure: String::new(),
            storage_key: String::new(),
            sha256: String::new(),
            size_bytes: 0,
            content_type: String::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
        .collect()
}

/// Inserts copy rows; an attachment that has one already keeps it.
pub async fn insert_jobs<C: ConnectionTrait>(db: &C, rows: &[media_file::Model]) -> Result<(), DbErr> {
    // 17 columns a row; well under any bind limit.
    for chunk in rows.chunks(500) {
        media_file::Entity::insert_many(
            chunk
                .iter()
                .map(|m| sea_orm::IntoActiveModel::into_active_model(m.clone())),
        )
        .on_conflict(
            OnConflict::columns([media_file::Column::MessageId, media_file::Column::AttachmentIndex])
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// In the disconnect's transaction: deletes the channel's copy rows and records the purge of
/// its storage prefix for the worker (storage is not transactional; the purge row makes the
/// delete survive a crash). Returns how many rows went.
pub async fn forget_channel<C: ConnectionTrait>(
    db: &C,
    workspace_id: &str,
    channel_id: &str,
    now_ms: i64,
) -> Result<u64, DbErr> {
    let deleted = media_file::Entity::delete_many()
        .filter(media_file::Column::ChannelId.eq(channel_id))
        .exec(db)
        .await?
        .rows_affected;
    media_purge::Entity::insert(media_purge::ActiveModel {
        prefix: Set(domain::channel_prefix(workspace_id, channel_id)),
        created_at_ms: Set(now_ms),
    })
    .on_conflict(
        OnConflict::column(media_purge::Column::Prefix)
            .update_column(media_purge::Column::CreatedAtMs)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(deleted)
}
