//! The history worker: backfills channels that connected and reconciles connected ones every
//! `RECONCILE_INTERVAL_SECS`, one channel at a time, and records each run in `channel_sync`.

use std::{collections::HashMap, time::Duration};

use scifer_events::{Bus, Publisher};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    tokenvault::v1::{
        EgressAction, EgressRequest, OnBehalfOf, egress_response, graph_failure::Kind as FailureKind,
    },
};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

use super::domain::{self, Bounds, ChannelRef};
use crate::{
    config::Config,
    store::entity::{channel, channel_sync},
    vault::VaultClient,
};

/// The shortest wait after a throttled or failed run, whatever Meta's retry-after says.
const RETRY_FLOOR_MS: i64 = 60_000;
/// After the token or a permission was refused: the channel goes NEEDS_REAUTH and its
/// reconnect asks for a new backfill; until then, an hour.
const AUTH_RETRY_MS: i64 = 3_600_000;

pub const RUN_BACKFILL: &str = "backfill";
pub const RUN_RECONCILE: &str = "reconcile";

#[derive(Debug, Clone)]
pub struct HistorySettings {
    pub max_conversations: u32,
    pub max_messages: u32,
    /// None: no periodic reconciliation.
    pub interval: Option<Duration>,
    pub lookback: Duration,
    pub settle: Duration,
    pub poll: Duration,
    pub vault_timeout: Duration,
}

impl HistorySettings {
    pub fn from_config(c: &Config) -> Self {
        Self {
            max_conversations: c.backfill_max_conversations.max(1),
            max_messages: c.backfill_max_messages_per_conversation.max(1),
            interval: (c.reconcile_interval_secs > 0).then(|| Duration::from_secs(c.reconcile_interval_secs)),
            lookback: Duration::from_secs(c.reconcile_lookback_hours.saturating_mul(3600)),
            settle: Duration::from_secs(c.reconcile_settle_secs),
            poll: Duration::from_millis(c.history_poll_ms.max(10)),
            vault_timeout: c.token_vault_timeout(),
        }
    }
}

pub struct HistorySync {
    db: DatabaseConnection,
    publisher: Publisher,
    bus: Bus,
    vault: Option<VaultClient>,
    settings: HistorySettings,
}

/// Why a run stopped early, and when the next may start.
#[derive(Debug)]
struct Stopped {
    error: String,
    retry_at_ms: i64,
}

/// What a run read and handed on.
#[derive(Debug, Default)]
struct Counts {
    conversations: u32,
    messages: u32,
    published: u32,
    newest_ms: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl HistorySync {
    pub fn new(
        db: DatabaseConnection,
        publisher: Publisher,
        bus: Bus,
        vault: Option<VaultClient>,
        settings: HistorySettings,
    ) -> Self {
        if vault.is_none() {
            tracing::warn!(
                "TOKEN_VAULT_CREDENTIAL is unset: history backfill and reconciliation are disabled"
            );
        }
        Self {
            db,
            publisher,
            bus,
            vault,
            settings,
        }
    }

    pub fn settings(&self) -> &HistorySettings {
        &self.settings
    }

    /// Every `HISTORY_POLL_MS` until `shutdown`: the due runs.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        if self.vault.is_none() {
            return;
        }
        let mut ticks = tokio::time::interval(self.settings.poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let ran = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.run_due() => r,
            };
            if let Err(e) = ran {
                tracing::warn!(error = %e, "history sync round failed; will try again");
            }
        }
    }

    /// Runs every channel whose backfill or reconciliation is due; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, DbErr> {
        let now = now_ms();
        let channels = channel::Entity::find()
            .filter(channel::Column::State.eq(ChannelState::Connected as i32))
            .filter(
                channel::Column::Kind.is_in([ChannelKind::Messenger as i32, ChannelKind::Instagram as i32]),
            )
            .all(&self.db)
            .await?;
        if channels.is_empty() {
            return Ok(0);
        }
        let mut syncs: HashMap<String, channel_sync::Model> = channel_sync::Entity::find()
            .filter(channel_sync::Column::ChannelId.is_in(channels.iter().map(|c| c.id.clone())))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.channel_id.clone(), s))
            .collect();
        let mut ran = 0;
        for ch in channels {
            let sync = match syncs.remove(&ch.id) {
                Some(s) => s,
                // Connected before this inbox kept sync state: reconciliation only.
                None => super::insert_state(&self.db, &ch.workspace_id, &ch.id, false, now).await?,
            };
            if sync.not_before_ms > now {
                continue;
            }
            let kind = if sync.backfill_pending {
                RUN_BACKFILL
            } else {
                match self.settings.interval {
                    Some(every) if sync.last_run_at_ms.saturating_add(ms(every)) <= now => RUN_RECONCILE,
                    _ => continue,
                }
            };
            self.run_channel(&ch, kind, sync.high_water_ms).await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// One run for one channel, recorded whatever its outcome.
    pub async fn run_channel(
        &self,
        ch: &channel::Model,
        run: &'static str,
        high_water_ms: i64,
    ) -> Result<(), DbErr> {
        let started = now_ms();
        let mut counts = Counts::default();
        let outcome = self.read_back(ch, run, started, &mut counts).await;
        let span_kind = ChannelKind::try_from(ch.kind).unwrap_or(ChannelKind::Unspecified);
        let mut update = channel_sync::Entity::update_many()
            .col_expr(channel_sync::Column::LastRunAtMs, Expr::value(started))
            .col_expr(channel_sync::Column::LastRunKind, Expr::value(run))
            .col_expr(
                channel_sync::Column::ConversationsSeen,
                Expr::value(i32::try_from(counts.conversations).unwrap_or(i32::MAX)),
            )
            .col_expr(
                channel_sync::Column::MessagesSeen,
                Expr::value(i32::try_from(counts.messages).unwrap_or(i32::MAX)),
            )
            .col_expr(
                channel_sync::Column::MessagesPublished,
                Expr::value(i32::try_from(counts.published).unwrap_or(i32::MAX)),
            )
            .col_expr(
                channel_sync::Column::Runs,
                sea_orm::sea_query::ExprTrait::add(Expr::col(channel_sync::Column::Runs), 1),
            )
            .col_expr(
                channel_sync::Column::HighWaterMs,
                // Only up: a bounded run may see less than an earlier one.
                Expr::value(counts.newest_ms.max(high_water_ms)),
            );
        match &outcome {
            Ok(()) => {
                update = update
                    .col_expr(channel_sync::Column::LastSuccessAtMs, Expr::value(now_ms()))
                    .col_expr(channel_sync::Column::LastError, Expr::value(""))
                    .col_expr(channel_sync::Column::NotBeforeMs, Expr::value(0i64));
                tracing::info!(channel_id = %ch.id, kind = ?span_kind, run, conversations = counts.conversations,
                    messages = counts.messages, published = counts.published, "history sync run done");
            }
            Err(stopped) => {
                update = update
                    .col_expr(
                        channel_sync::Column::LastError,
                        Expr::value(stopped.error.clone()),
                    )
                    .col_expr(
                        channel_sync::Column::NotBeforeMs,
                        Expr::value(stopped.retry_at_ms),
                    );
                tracing::warn!(channel_id = %ch.id, kind = ?span_kind, run, error = %stopped.error,
                    retry_at_ms = stopped.retry_at_ms, "history sync run stopped");
            }
        }
        // An update, never an insert: a channel disconnected meanwhile stays forgotten.
        update
            .filter(channel_sync::Column::ChannelId.eq(ch.id.as_str()))
            .exec(&self.db)
            .await?;
        if run == RUN_BACKFILL && outcome.is_ok() {
            // Cleared only if the channel did not connect again while this ran.
            channel_sync::Entity::update_many()
                .col_expr(channel_sync::Column::BackfillPending, Expr::value(false))
                .col_expr(channel_sync::Column::BackfilledAtMs, Expr::value(now_ms()))
                .filter(channel_sync::Column::ChannelId.eq(ch.id.as_str()))
                .filter(channel_sync::Column::BackfillRequestedAtMs.lte(started))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Pages through the channel's conversations and publishes what they hold.
    async fn read_back(
        &self,
        ch: &channel::Model,
        run: &'static str,
        started: i64,
        counts: &mut Counts,
    ) -> Result<(), Stopped> {
        let kind = ChannelKind::try_from(ch.kind).unwrap_or(ChannelKind::Unspecified);
        let messages = domain::messages_per_conversation(kind, self.settings.max_messages);
        let since_ms = if run == RUN_RECONCILE {
            started.saturating_sub(ms(self.settings.lookback))
        } else {
            0
        };
        let bounds = Bounds {
            max_messages: messages as usize,
            since_ms,
            settle_before_ms: started.saturating_sub(ms(self.settings.settle)),
        };
        let channel_ref = ChannelRef {
            channel_id: &ch.id,
            kind,
            account_id: &ch.account_id,
        };
        let mut after: Option<String> = None;
        loop {
            let remaining = self
                .settings
                .max_conversations
                .saturating_sub(counts.conversations);
            if remaining == 0 {
                return Ok(());
            }
            let mut params = serde_json::json!({
                "fields": domain::fields(messages),
                "limit": remaining.min(domain::CONVERSATIONS_PAGE),
            });
            if let Some(cursor) = &after {
                params["after"] = cursor.clone().into();
            }
            let body = self.list(ch, &params).await?;
            let page = domain::parse_page(&body).map_err(|e| Stopped {
                error: e.to_string(),
                retry_at_ms: now_ms().saturating_add(RETRY_FLOOR_MS),
            })?;
            let mut events = Vec::new();
            let mut older_than_lookback = false;
            for conversation in page.conversations.iter().take(remaining as usize) {
                // Newest first: a conversation older than the lookback ends the run.
                if run == RUN_RECONCILE && domain::updated_ms(conversation).is_some_and(|u| u < since_ms) {
                    older_than_lookback = true;
                    break;
                }
                counts.conversations += 1;
                let got = domain::events(&channel_ref, conversation, bounds, now_ms());
                counts.messages += got.messages_seen;
                counts.newest_ms = counts.newest_ms.max(got.newest_ms);
                events.extend(got.events);
            }
            self.publish(kind, &events).await?;
            counts.published += u32::try_from(events.len()).unwrap_or(u32::MAX);
            match page.after {
                Some(next) if !older_than_lookback => after = Some(next),
                _ => return Ok(()),
            }
        }
    }

    async fn list(
        &self,
        ch: &channel::Model,
        params: &serde_json::Value,
    ) -> Result<serde_json::Value, Stopped> {
        let Some(mut vault) = self.vault.clone() else {
            return Err(Stopped {
                error: "token-vault is not configured".into(),
                retry_at_ms: now_ms().saturating_add(AUTH_RETRY_MS),
            });
        };
        let mut request = tonic::Request::new(EgressRequest {
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            action: EgressAction::ListConversations as i32,
            params_json: params.to_string(),
            actor: Some(OnBehalfOf {
                kind: "service".into(),
                id: "inbox-history".into(),
            }),
        });
        request.set_timeout(self.settings.vault_timeout);
        let now = now_ms();
        let retry = |after_ms: i64| now.saturating_add(after_ms.max(RETRY_FLOOR_MS));
        let answer = match tokio::time::timeout(self.settings.vault_timeout, vault.egress(request)).await {
            Err(_) => {
                return Err(Stopped {
                    error: "token-vault did not answer in time".into(),
                    retry_at_ms: retry(0),
                });
            }
            Ok(Err(status)) => {
                let (error, wait) = match status.code() {
                    tonic::Code::NotFound => (
                        "the channel is not connected in token-vault".to_string(),
                        AUTH_RETRY_MS,
                    ),
                    tonic::Code::FailedPrecondition => ("channel_needs_reconnect".to_string(), AUTH_RETRY_MS),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                        ("token-vault is unreachable".to_string(), 0)
                    }
                    code => (format!("token-vault refused the call ({code:?})"), AUTH_RETRY_MS),
                };
                return Err(Stopped {
                    error,
                    retry_at_ms: retry(wait),
                });
            }
            Ok(Ok(response)) => response.into_inner().outcome,
        };
        match answer {
            Some(egress_response::Outcome::ResultJson(json)) => {
                serde_json::from_str(&json).map_err(|_| Stopped {
                    error: "Graph answered something that is not JSON".into(),
                    retry_at_ms: retry(0),
                })
            }
            Some(egress_response::Outcome::Failure(f)) => {
                let kind = FailureKind::try_from(f.kind).unwrap_or(FailureKind::Other);
                let label = match kind {
                    FailureKind::Throttled => "throttled",
                    FailureKind::TokenInvalid => "token_invalid",
                    FailureKind::Permission => "permission",
                    FailureKind::Transient => "transient",
                    FailureKind::InvalidRequest => "invalid_request",
                    FailureKind::Policy => "policy",
                    FailureKind::Duplicate | FailureKind::Other | FailureKind::Unspecified => "graph_error",
                };
                let wait = match kind {
                    FailureKind::Throttled | FailureKind::Transient => f.retry_after_ms,
                    _ => AUTH_RETRY_MS,
                };
                // Meta's message never holds a token (the vault's contract).
                Err(Stopped {
                    error: format!("{label}: code {} ({})", f.code, f.message),
                    retry_at_ms: retry(wait),
                })
            }
            None => Err(Stopped {
                error: "token-vault answered nothing".into(),
                retry_at_ms: retry(0),
            }),
        }
    }

    /// Hands the events to the META stream (Nats-Msg-Id = event id), acknowledgements awaited.
    async fn publish(
        &self,
        kind: ChannelKind,
        events: &[scifer_proto::events::v1::MetaEvent],
    ) -> Result<(), Stopped> {
        let subject = self.bus.meta_event(kind, "reconciled");
        let mut acks = Vec::with_capacity(events.len());
        for e in events {
            match self.publisher.send(subject.clone(), &e.event_id, e).await {
                Ok(ack) => acks.push(ack),
                Err(err) => {
                    return Err(Stopped {
                        error: format!("the bus refused a reconciled message: {err}"),
                        retry_at_ms: now_ms().saturating_add(RETRY_FLOOR_MS),
                    });
                }
            }
        }
        for ack in acks {
            if let Err(err) = ack.await {
                return Err(Stopped {
                    error: format!("the bus did not acknowledge a reconciled message: {err}"),
                    retry_at_ms: now_ms().saturating_add(RETRY_FLOOR_MS),
                });
            }
        }
        Ok(())
    }
}
