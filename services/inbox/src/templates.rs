//! WhatsApp template sync (issue 5). Templates belong to a WhatsApp Business Account (WABA), and
//! every phone number (channel) of the WABA sends them. inbox keeps each WABA's list:
//!
//! - read from Graph (`EGRESS_ACTION_LIST_MESSAGE_TEMPLATES` through token-vault, every page)
//!   when a WhatsApp channel connects (the channel consumer records the channel's WABA, marks it
//!   due and wakes [`Syncer::run`]) and every `TEMPLATE_SYNC_INTERVAL_SECS` (0 = only on connect);
//! - kept current by `message_template_status_update` webhooks, applied by the Meta consumer in
//!   order ([`apply_status`]): a status older than the one stored never overwrites it, so a
//!   redelivery or a late sync changes nothing.
//!
//! The send path asks [`Syncer::approval_for_send`]: a template the WABA does not have is refused
//! as `template_unknown`, one not APPROVED as `template_not_approved`, before anything reaches
//! Meta. A number whose WABA inbox does not know (connected before channel events named it) is
//! not checked: Meta decides, and its refusal (132001) comes back explained.
//!
//! A disconnect forgets the channel's WABA; the WABA's templates go with its last channel.

use std::{collections::HashMap, sync::Arc, time::Duration};

use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{ChannelKind, TemplateStatusUpdate},
    inbox::v1::{ListTemplatesResponse, WhatsAppTemplate},
    tokenvault::v1::{EgressAction, EgressRequest, OnBehalfOf, egress_response},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set, sea_query::OnConflict,
};

use crate::{
    consumer::Engine,
    convert,
    domain::{
        WorkspaceId,
        template::{self, Approval, Listed},
    },
    error::InboxError,
    send::VaultClient,
    store::entity::{channel, template_waba, whatsapp_template},
};

/// How much older than a sync a status webhook may be stamped and still win over the list
/// (webhook times are whole seconds).
const WEBHOOK_TIME_SLACK_MS: i64 = 1_000;

/// Records the WABA of a connected WhatsApp channel and marks its list due. Runs in the channel
/// consumer's transaction.
pub async fn remember_waba<C: ConnectionTrait>(
    db: &C,
    channel_id: &str,
    workspace_id: &str,
    waba_id: &str,
) -> Result<(), DbErr> {
    let row = template_waba::ActiveModel {
        channel_id: Set(channel_id.to_string()),
        workspace_id: Set(workspace_id.to_string()),
        waba_id: Set(waba_id.to_string()),
        synced_at_ms: Set(0),
    };
    template_waba::Entity::insert(row)
        .on_conflict(
            OnConflict::column(template_waba::Column::ChannelId)
                .update_columns([
                    template_waba::Column::WorkspaceId,
                    template_waba::Column::WabaId,
                    template_waba::Column::SyncedAtMs,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// A disconnected channel no longer reads its WABA's templates; the last channel of a WABA takes
/// the WABA's templates with it.
pub async fn forget_channel<C: ConnectionTrait>(db: &C, channel_id: &str) -> Result<(), DbErr> {
    let Some(row) = template_waba::Entity::find_by_id(channel_id.to_string())
        .one(db)
        .await?
    else {
        return Ok(());
    };
    template_waba::Entity::delete_by_id(channel_id.to_string())
        .exec(db)
        .await?;
    let others = template_waba::Entity::find()
        .filter(template_waba::Column::WabaId.eq(row.waba_id.as_str()))
        .one(db)
        .await?;
    if others.is_none() {
        whatsapp_template::Entity::delete_many()
            .filter(whatsapp_template::Column::WabaId.eq(row.waba_id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Applies a `message_template_status_update`; false when it changed nothing (a WABA no channel
/// here belongs to, or a status older than the stored one). A template not listed yet is added
/// with what the webhook says (its components come with the next sync).
pub async fn apply_status<C: ConnectionTrait>(
    db: &C,
    update: &TemplateStatusUpdate,
    at_ms: i64,
    now_ms: i64,
) -> Result<bool, DbErr> {
    if update.name.is_empty() || update.language.is_empty() || update.status.is_empty() {
        tracing::warn!(template_id = %update.template_id, "template status without name, language or status; ignored");
        return Ok(false);
    }
    let ours = template_waba::Entity::find()
        .filter(template_waba::Column::WabaId.eq(update.waba_id.as_str()))
        .one(db)
        .await?;
    if ours.is_none() {
        return Ok(false);
    }
    let key = (
        update.waba_id.clone(),
        update.name.clone(),
        update.language.clone(),
    );
    let stored = whatsapp_template::Entity::find_by_id(key).one(db).await?;
    let status = update.status.to_ascii_uppercase();
    match stored {
        Some(current) if current.status_at_ms > at_ms => Ok(false),
        Some(current) if current.status == status && current.reason == update.reason => Ok(false),
        Some(current) => {
            let mut next = current.clone().into_active_model();
            next.status = Set(status);
            next.reason = Set(update.reason.clone());
            next.status_at_ms = Set(at_ms);
            next.updated_at_ms = Set(now_ms);
            if !update.template_id.is_empty() {
                next.template_id = Set(update.template_id.clone());
            }
            if !update.category.is_empty() {
                next.category = Set(update.category.to_ascii_uppercase());
            }
            whatsapp_template::Entity::update(next).exec(db).await?;
            Ok(true)
        }
        None => {
            let row = whatsapp_template::Model {
                waba_id: update.waba_id.clone(),
                name: update.name.clone(),
                language: update.language.clone(),
                template_id: update.template_id.clone(),
                status,
                category: update.category.to_ascii_uppercase(),
                components_json: "[]".into(),
                reason: update.reason.clone(),
                status_at_ms: at_ms,
                updated_at_ms: now_ms,
            };
            whatsapp_template::Entity::insert(row.into_active_model())
                .exec_without_returning(db)
                .await?;
            Ok(true)
        }
    }
}

/// Whether the channel's WABA may send template `name` in `language`, from what is stored.
pub async fn approval<C: ConnectionTrait>(
    db: &C,
    channel_id: &str,
    name: &str,
    language: &str,
) -> Result<Approval, DbErr> {
    let Some(waba) = template_waba::Entity::find_by_id(channel_id.to_string())
        .one(db)
        .await?
    else {
        return Ok(Approval::Unchecked);
    };
    let found = whatsapp_template::Entity::find_by_id((waba.waba_id, name.to_string(), language.to_string()))
        .one(db)
        .await?;
    Ok(match found {
        Some(t) => Approval::of_status(&t.status),
        None => Approval::Unknown,
    })
}

/// Why one WABA's list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sending through token-vault is not configured")]
    NoVault,
    #[error("token-vault: {0}")]
    Vault(String),
    #[error("Graph refused the template list: code {code} ({message})")]
    Graph { code: i64, message: String },
    #[error(transparent)]
    Malformed(#[from] template::MalformedPage),
    #[error("Graph kept paging past {} pages", template::MAX_PAGES)]
    TooManyPages,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Reads the lists from Graph and serves `ListTemplates`.
pub struct Syncer {
    db: DatabaseConnection,
    engine: Arc<Engine>,
    vault: Option<VaultClient>,
    timeout: Duration,
}

impl Syncer {
    pub fn new(
        db: DatabaseConnection,
        engine: Arc<Engine>,
        vault: Option<VaultClient>,
        timeout: Duration,
    ) -> Self {
        Self {
            db,
            engine,
            vault,
            timeout,
        }
    }

    /// `ListTemplates`: the templates of a WhatsApp channel's WABA.
    pub async fn list(
        &self,
        ws: &WorkspaceId,
        channel_id: &str,
    ) -> Result<ListTemplatesResponse, InboxError> {
        let ch = channel::Entity::find_by_id(channel_id.to_string())
            .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .filter(|c| c.state != scifer_proto::events::v1::ChannelState::Disconnected as i32)
            .ok_or(InboxError::ChannelNotFound)?;
        if ch.kind != ChannelKind::Whatsapp as i32 {
            return Err(InboxError::Invalid(
                "templates are WhatsApp's; this channel is not a WhatsApp number".into(),
            ));
        }
        let Some(waba) = template_waba::Entity::find_by_id(ch.id.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(ListTemplatesResponse::default());
        };
        let rows = whatsapp_template::Entity::find()
            .filter(whatsapp_template::Column::WabaId.eq(waba.waba_id.as_str()))
            .order_by_asc(whatsapp_template::Column::Name)
            .order_by_asc(whatsapp_template::Column::Language)
            .all(&self.db)
            .await?;
        Ok(ListTemplatesResponse {
            templates: rows
                .into_iter()
                .map(|t| WhatsAppTemplate {
                    id: t.template_id,
                    name: t.name,
                    language: t.language,
                    status: t.status,
                    category: t.category,
                    components_json: t.components_json,
                    reason: t.reason,
                    updated_at: Some(convert::timestamp(t.updated_at_ms)),
                })
                .collect(),
            synced_at: (waba.synced_at_ms > 0).then(|| convert::timestamp(waba.synced_at_ms)),
        })
    }

    /// [`approval`] for a send: a WABA whose list was never read (a send right after its number
    /// connected, before the background sync ran) is read first, so the answer is Meta's list and
    /// not "unknown" by timing. A failed read leaves the answer to what is stored.
    pub async fn approval_for_send(
        &self,
        channel_id: &str,
        name: &str,
        language: &str,
    ) -> Result<Approval, DbErr> {
        let known = approval(&self.db, channel_id, name, language).await?;
        if known != Approval::Unknown {
            return Ok(known);
        }
        let never_synced = template_waba::Entity::find_by_id(channel_id.to_string())
            .one(&self.db)
            .await?
            .filter(|w| w.synced_at_ms == 0);
        if let Some(via) = never_synced {
            if let Err(e) = self.sync_waba(&via).await {
                tracing::warn!(waba_id = %via.waba_id, error = %e, "WhatsApp templates not synced before a send");
                return Ok(known);
            }
            return approval(&self.db, channel_id, name, language).await;
        }
        Ok(known)
    }

    /// Syncs the WABAs whose channels are due (just connected): one channel per WABA reads the
    /// list. Returns how many WABAs were synced.
    pub async fn sync_due(&self) -> Result<usize, DbErr> {
        let due = template_waba::Entity::find()
            .filter(template_waba::Column::SyncedAtMs.eq(0))
            .all(&self.db)
            .await?;
        Ok(self.sync_each(due).await)
    }

    /// Syncs every WABA known here.
    pub async fn sync_all(&self) -> Result<usize, DbErr> {
        let all = template_waba::Entity::find().all(&self.db).await?;
        Ok(self.sync_each(all).await)
    }

    async fn sync_each(&self, rows: Vec<template_waba::Model>) -> usize {
        let mut by_waba: HashMap<String, template_waba::Model> = HashMap::new();
        for row in rows {
            by_waba.entry(row.waba_id.clone()).or_insert(row);
        }
        let mut synced = 0;
        for (waba_id, via) in by_waba {
            match self.sync_waba(&via).await {
                Ok(count) => {
                    synced += 1;
                    tracing::info!(%waba_id, channel_id = %via.channel_id, templates = count, "WhatsApp templates synced");
                }
                Err(e) => {
                    tracing::warn!(%waba_id, channel_id = %via.channel_id, error = %e, "WhatsApp templates not synced; will try again")
                }
            }
        }
        synced
    }

    /// Reads every page of the WABA's list through `via`'s channel, then replaces the stored
    /// list in one transaction (a template Graph no longer lists was deleted at Meta). A status a
    /// webhook stored after the read began is newer than the list and is kept.
    pub async fn sync_waba(&self, via: &template_waba::Model) -> Result<usize, SyncError> {
        let started_ms = self.engine.clock().now_ms();
        let listed = self.read_all(via).await?;
        let count = listed.len();
        let _writer = self.engine.lock_writes().await;
        let txn = scifer_db::begin_write(&self.db).await?;
        let stored: HashMap<(String, String), whatsapp_template::Model> = whatsapp_template::Entity::find()
            .filter(whatsapp_template::Column::WabaId.eq(via.waba_id.as_str()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|t| ((t.name.clone(), t.language.clone()), t))
            .collect();
        whatsapp_template::Entity::delete_many()
            .filter(whatsapp_template::Column::WabaId.eq(via.waba_id.as_str()))
            .exec(&txn)
            .await?;
        let now = self.engine.clock().now_ms();
        let mut rows: HashMap<(String, String), whatsapp_template::Model> = HashMap::new();
        for Listed {
            id,
            name,
            language,
            status,
            category,
            components_json,
        } in listed
        {
            let key = (name.clone(), language.clone());
            let newer = stored.get(&key).filter(|s| s.status_at_ms > started_ms);
            rows.insert(
                key,
                whatsapp_template::Model {
                    waba_id: via.waba_id.clone(),
                    name,
                    language,
                    template_id: id,
                    status: newer.map(|s| s.status.clone()).unwrap_or(status),
                    category,
                    components_json,
                    reason: newer.map(|s| s.reason.clone()).unwrap_or_default(),
                    // A webhook carries whole seconds and Meta's clock: one stamped up to a second
                    // before this read still applies after it.
                    status_at_ms: newer
                        .map(|s| s.status_at_ms)
                        .unwrap_or(started_ms - WEBHOOK_TIME_SLACK_MS),
                    updated_at_ms: now,
                },
            );
        }
        let rows: Vec<_> = rows
            .into_values()
            .map(IntoActiveModel::into_active_model)
            .collect();
        for chunk in rows.chunks(500) {
            whatsapp_template::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        template_waba::Entity::update_many()
            .col_expr(
                template_waba::Column::SyncedAtMs,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(template_waba::Column::WabaId.eq(via.waba_id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(count)
    }

    async fn read_all(&self, via: &template_waba::Model) -> Result<Vec<Listed>, SyncError> {
        let mut vault = self.vault.clone().ok_or(SyncError::NoVault)?;
        let mut listed = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..template::MAX_PAGES {
            let mut request = tonic::Request::new(EgressRequest {
                workspace_id: via.workspace_id.clone(),
                channel_id: via.channel_id.clone(),
                action: EgressAction::ListMessageTemplates as i32,
                params_json: template::page_params(after.as_deref()).to_string(),
                actor: Some(OnBehalfOf {
                    kind: "service".into(),
                    id: "inbox-template-sync".into(),
                }),
            });
            request.set_timeout(self.timeout);
            let answer = vault
                .egress(request)
                .await
                .map_err(|s| SyncError::Vault(format!("{}: {}", s.code(), s.message())))?
                .into_inner();
            let body = match answer.outcome {
                Some(egress_response::Outcome::ResultJson(json)) => {
                    serde_json::from_str(&json).map_err(|_| template::MalformedPage("not JSON"))?
                }
                Some(egress_response::Outcome::Failure(f)) => {
                    return Err(SyncError::Graph {
                        code: f.code,
                        message: f.message,
                    });
                }
                None => return Err(SyncError::Vault("token-vault answered nothing".into())),
            };
            let page = template::parse_page(&body)?;
            listed.extend(page.templates);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(listed),
            }
        }
        Err(SyncError::TooManyPages)
    }

    /// Syncs due WABAs when the channel consumer says a WhatsApp channel connected (and once at
    /// start, for connects before a restart), and every WABA every `every` (None: never) until
    /// `shutdown`.
    pub async fn run(self: Arc<Self>, every: Option<Duration>, shutdown: CancellationToken) {
        let mut ticks = every.map(|every| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        if let Err(e) = self.sync_due().await {
            tracing::warn!(error = %e, "template sync: cannot read the due WABAs");
        }
        loop {
            let periodic = async {
                match ticks.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.engine.templates_due() => self.sync_due().await,
                () = periodic => self.sync_all().await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "template sync: cannot read the WABAs to sync");
            }
        }
    }
}
