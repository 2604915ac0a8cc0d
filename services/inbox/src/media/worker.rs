//! The media worker: purges of disconnected channels first, then the due downloads.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1 as ev,
    inbox::v1::MediaState,
    tokenvault::v1::{FetchMediaRequest, OnBehalfOf, media_chunk},
};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::{
    MediaStorage,
    domain::{self, FetchError, HostAllowList, Source},
    storage::Stored,
};
use crate::{
    config::Config,
    consumer::Engine,
    convert::{self, AttachmentRecord},
    store::entity::{media_file, media_purge, message},
    vault::VaultClient,
};

/// Rows taken per round, and downloads at once.
const ROUND: u64 = 32;
const CONCURRENCY: usize = 4;

#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub max_bytes: u64,
    pub timeout: Duration,
    pub hosts: HostAllowList,
    pub poll: Duration,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
}

impl MediaSettings {
    pub fn from_config(c: &Config) -> Self {
        Self {
            max_bytes: c.media_max_bytes.max(1),
            timeout: Duration::from_millis(c.media_fetch_timeout_ms.max(100)),
            hosts: HostAllowList::parse(&c.media_url_hosts),
            poll: Duration::from_millis(c.media_poll_ms.max(10)),
            max_attempts: c.media_max_attempts.max(1),
            retry_base_ms: c.media_retry_base_ms,
        }
    }
}

pub struct MediaWorker {
    db: DatabaseConnection,
    engine: Arc<Engine>,
    storage: MediaStorage,
    http: reqwest::Client,
    vault: Option<VaultClient>,
    settings: MediaSettings,
    /// Serialises the read-modify-write of a message's attachments (two attachments of one
    /// message may finish at once). The consumer writes that column only when it inserts.
    attachments_lock: tokio::sync::Mutex<()>,
}

impl MediaWorker {
    pub fn new(
        db: DatabaseConnection,
        engine: Arc<Engine>,
        storage: MediaStorage,
        vault: Option<VaultClient>,
        settings: MediaSettings,
    ) -> Result<Self, reqwest::Error> {
        let hosts = settings.hosts.clone();
        let http = reqwest::Client::builder()
            // Meta's CDN may redirect between its own hosts; never anywhere else.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if hosts.allows(attempt.url()) {
                    attempt.follow()
                } else {
                    attempt.error("redirect outside MEDIA_URL_HOSTS")
                }
            }))
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            db,
            engine,
            storage,
            http,
            vault,
            settings,
            attachments_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Every `MEDIA_POLL_MS` until `shutdown`: purges, then due downloads (round after round
    /// while rounds come back full).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.settings.poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            loop {
                let round = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = self.run_once() => r,
                };
                match round {
                    Ok(n) if n as u64 == ROUND => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "media worker round failed; will try again");
                        break;
                    }
                }
            }
        }
    }

    /// One round: the pending purges, then up to [`ROUND`] due downloads. Returns how many
    /// downloads were tried.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        self.purge().await?;
        let now = now_ms();
        let due = media_file::Entity::find()
            .filter(media_file::Column::State.eq(MediaState::Pending as i32))
            .filter(media_file::Column::NextAttemptAtMs.lte(now))
            .order_by_asc(media_file::Column::NextAttemptAtMs)
            .order_by_asc(media_file::Column::Id)
            .limit(ROUND)
            .all(&self.db)
            .await?;
        let count = due.len();
        if count == 0 {
            return Ok(0);
        }
        // A lease: if inbox stops mid-download, the row is due again after it.
        let lease =
            now.saturating_add(i64::try_from(self.settings.timeout.as_millis()).unwrap_or(i64::MAX) * 2);
        media_file::Entity::update_many()
            .col_expr(media_file::Column::NextAttemptAtMs, Expr::value(lease))
            .col_expr(
                media_file::Column::Attempts,
                sea_orm::sea_query::ExprTrait::add(Expr::col(media_file::Column::Attempts), 1),
            )
            .filter(media_file::Column::Id.is_in(due.iter().map(|r| r.id.clone())))
            .exec(&self.db)
            .await?;
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |row| async move {
                if let Err(e) = self.process(row).await {
                    tracing::warn!(error = %e, "media download bookkeeping failed; the row is retried after its lease");
                }
            })
            .await;
        Ok(count)
    }

    async fn purge(&self) -> Result<(), DbErr> {
        let purges = media_purge::Entity::find().all(&self.db).await?;
        for p in purges {
            let disconnected_at =
                chrono::DateTime::from_timestamp_millis(p.created_at_ms).unwrap_or_else(chrono::Utc::now);
            match self.storage.delete_prefix(&p.prefix, disconnected_at).await {
                Ok(deleted) => {
                    media_purge::Entity::delete_by_id(p.prefix.clone())
                        .exec(&self.db)
                        .await?;
                    tracing::info!(prefix = %p.prefix, deleted, "media of a disconnected channel deleted");
                }
                Err(e) => {
                    tracing::warn!(prefix = %p.prefix, error = %e, "deleting a disconnected channel's media failed; will try again")
                }
            }
        }
        Ok(())
    }

    async fn process(&self, row: media_file::Model) -> Result<(), DbErr> {
        let attempt = u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let fetched = match Source::from_row(&row.source_kind, &row.source) {
            Some(Source::Url(url)) => self.fetch_url(&row, &url).await,
            Some(Source::WhatsApp(id)) => self.fetch_whatsapp(&row, &id).await,
            None => Err(FetchError::Permanent("unknown_source".into())),
        };
        let now = now_ms();
        let updated = match fetched {
            Ok((stored, content_type)) => {
                let done = media_file::Entity::update_many()
                    .col_expr(media_file::Column::State, Expr::value(MediaState::Stored as i32))
                    .col_expr(media_file::Column::StorageKey, Expr::value(stored.key.clone()))
                    .col_expr(media_file::Column::Sha256, Expr::value(stored.sha256.clone()))
                    .col_expr(
                        media_file::Column::SizeBytes,
                        Expr::value(i64::try_from(stored.size).unwrap_or(i64::MAX)),
                    )
                    .col_expr(media_file::Column::ContentType, Expr::value(content_type.clone()))
                    .col_expr(media_file::Column::Failure, Expr::value(""))
                    .col_expr(media_file::Column::UpdatedAtMs, Expr::value(now))
                    .filter(media_file::Column::Id.eq(row.id.as_str()))
                    .exec(&self.db)
                    .await?;
                if done.rows_affected == 0 {
                    // The channel was disconnected meanwhile: its prefix is being purged, and
                    // this file must not outlive it.
                    self.storage.delete(&stored.key).await.ok();
                    return Ok(());
                }
                tracing::debug!(message_id = %row.message_id, index = row.attachment_index, size = stored.size, "attachment stored");
                AttachmentRecordUpdate {
                    state: MediaState::Stored,
                    sha256: stored.sha256,
                    size: stored.size,
                    content_type,
                    failure: String::new(),
                }
            }
            Err(error) => {
                let (state, next) = domain::after_failure(
                    &error,
                    attempt,
                    self.settings.max_attempts,
                    self.settings.retry_base_ms,
                    now,
                );
                tracing::info!(message_id = %row.message_id, index = row.attachment_index, attempt,
                    reason = error.reason(), ?state, "attachment not fetched");
                media_file::Entity::update_many()
                    .col_expr(media_file::Column::State, Expr::value(state as i32))
                    .col_expr(
                        media_file::Column::NextAttemptAtMs,
                        Expr::value(next.unwrap_or(0)),
                    )
                    .col_expr(
                        media_file::Column::Failure,
                        Expr::value(error.reason().to_string()),
                    )
                    .col_expr(media_file::Column::UpdatedAtMs, Expr::value(now))
                    .filter(media_file::Column::Id.eq(row.id.as_str()))
                    .exec(&self.db)
                    .await?;
                if state == MediaState::Pending {
                    // Nothing a reader sees changed.
                    return Ok(());
                }
                AttachmentRecordUpdate {
                    state,
                    sha256: String::new(),
                    size: 0,
                    content_type: String::new(),
                    failure: error.reason().to_string(),
                }
            }
        };
        self.record_on_message(&row, updated).await
    }

    /// Writes the copy's state into the message's attachments and announces the message.
    async fn record_on_message(
        &self,
        row: &media_file::Model,
        update: AttachmentRecordUpdate,
    ) -> Result<(), DbErr> {
        let saved = {
            let _one_at_a_time = self.attachments_lock.lock().await;
            let Some(mut m) = message::Entity::find_by_id(row.message_id.clone())
                .one(&self.db)
                .await?
            else {
                return Ok(());
            };
            let mut records: Vec<AttachmentRecord> =
                serde_json::from_str(&m.attachments_json).unwrap_or_default();
            let Some(record) = usize::try_from(row.attachment_index)
                .ok()
                .and_then(|i| records.get_mut(i))
            else {
                return Ok(());
            };
            record.media_state = update.state as i32;
            record.sha256 = update.sha256;
            record.size_bytes = update.size;
            record.content_type = update.content_type;
            record.media_failure = update.failure;
            m.attachments_json = serde_json::to_string(&records).unwrap_or_else(|_| "[]".into());
            m.updated_at_ms = now_ms();
            message::Entity::update_many()
                .col_expr(
                    message::Column::AttachmentsJson,
                    Expr::value(m.attachments_json.clone()),
                )
                .col_expr(message::Column::UpdatedAtMs, Expr::value(m.updated_at_ms))
                .filter(message::Column::Id.eq(m.id.as_str()))
                .exec(&self.db)
                .await?;
            m
        };
        self.engine.announce(vec![message_updated(&saved)]).await;
        Ok(())
    }

    async fn fetch_url(&self, row: &media_file::Model, raw: &str) -> Result<(Stored, String), FetchError> {
        let url = url::Url::parse(raw).map_err(|_| FetchError::Permanent("invalid_url".into()))?;
        if !self.settings.hosts.allows(&url) {
            return Err(FetchError::Permanent("host_not_allowed".into()));
        }
        let response = self
            .http
            .get(url)
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(request_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::from_http_status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.settings.max_bytes)
        {
            return Err(FetchError::Permanent("too_large".into()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let body = response.bytes_stream().map_err(request_failure);
        let stored = self
            .storage
            .write(&row.workspace_id, &row.channel_id, body, self.settings.max_bytes)
            .await?;
        Ok((stored, content_type))
    }

    async fn fetch_whatsapp(
        &self,
        row: &media_file::Model,
        media_id: &str,
    ) -> Result<(Stored, String), FetchError> {
        let mut vault = self
            .vault
            .clone()
            .ok_or_else(|| FetchError::Transient("vault_not_configured".into()))?;
        let mut request = tonic::Request::new(FetchMediaRequest {
            workspace_id: row.workspace_id.clone(),
            channel_id: row.channel_id.clone(),
            media_id: media_id.to_string(),
            actor: Some(OnBehalfOf {
                kind: "service".into(),
                id: "inbox-media".into(),
            }),
        });
        request.set_timeout(self.settings.timeout);
        let work = async {
            let mut stream = vault
                .fetch_media(request)
                .await
                .map_err(vault_failure)?
                .into_inner();
            let info = match stream.message().await.map_err(vault_failure)? {
                Some(scifer_proto::tokenvault::v1::MediaChunk {
                    part: Some(media_chunk::Part::Info(info)),
                }) => info,
                _ => return Err(FetchError::Transient("vault_answered_no_description".into())),
            };
            if info.file_size > self.settings.max_bytes {
                return Err(FetchError::Permanent("too_large".into()));
            }
            let body = stream.map(|chunk| match chunk {
                Ok(scifer_proto::tokenvault::v1::MediaChunk {
                    part: Some(media_chunk::Part::Data(data)),
                }) => Ok(Bytes::from(data)),
                Ok(_) => Err(FetchError::Transient("vault_sent_a_second_description".into())),
                Err(status) => Err(vault_failure(status)),
            });
            let stored = self
                .storage
                .write(&row.workspace_id, &row.channel_id, body, self.settings.max_bytes)
                .await?;
            // The vault checked Meta's hash already; a mismatch here would be our bug.
            if !info.sha256.is_empty() && !info.sha256.eq_ignore_ascii_case(&stored.sha256) {
                return Err(FetchError::Transient("sha256_mismatch".into()));
            }
            let content_type = if info.mime_type.is_empty() {
                "application/octet-stream".to_string()
            } else {
                info.mime_type
            };
            Ok((stored, content_type))
        };
        match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Transient("timeout".into())),
        }
    }
}

struct AttachmentRecordUpdate {
    state: MediaState,
    sha256: String,
    size: u64,
    content_type: String,
    failure: String,
}

fn request_failure(e: reqwest::Error) -> FetchError {
    // Never the URL itself in the reason: a CDN URL is a bearer credential for its file.
    if e.is_redirect() {
        FetchError::Permanent("redirect_not_allowed".into())
    } else if e.is_timeout() {
        FetchError::Transient("timeout".into())
    } else {
        FetchError::Transient("network".into())
    }
}

fn vault_failure(status: tonic::Status) -> FetchError {
    use tonic::Code;
    match status.code() {
        Code::NotFound => FetchError::Expired("media_not_found".into()),
        Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented => {
            FetchError::Permanent(format!("vault_refused_{:?}", status.code()).to_ascii_lowercase())
        }
        Code::FailedPrecondition => FetchError::Transient("channel_needs_reconnect".into()),
        Code::DeadlineExceeded | Code::Cancelled => FetchError::Transient("timeout".into()),
        _ => FetchError::Transient(format!("vault_{:?}", status.code()).to_ascii_lowercase()),
    }
}

fn message_updated(m: &message::Model) -> crate::apply::Emission {
    let msg_id = format!("inbox.message_updated.{}.{}", m.id, uuid::Uuid::now_v7());
    crate::apply::Emission {
        subject_kind: "message_updated",
        workspace_id: m.workspace_id.clone(),
        msg_id: msg_id.clone(),
        event: scifer_proto::events::v1::InboxEvent {
            event_id: msg_id,
            workspace_id: m.workspace_id.clone(),
            at: Some(convert::timestamp(now_ms())),
            kind: Some(scifer_proto::events::v1::inbox_event::Kind::MessageUpdated(
                ev::MessageUpdated {
                    message: Some(convert::message(m)),
                },
            )),
        },
        cause: String::new(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
