//! Connection health: debug_token finds invalid or expiring tokens and lost scopes; the app's
//! webhook subscription is checked and restored where Meta dropped it. Runs periodically for every
//! connected channel and on demand (CheckChannel).

use std::time::Duration;

use scifer_audit::{Actor, Audit, Outcome, action};
use scifer_graph::GraphError;
use scifer_ids::WorkspaceId;
use scifer_proto::events::v1::{ChannelKind, ChannelState};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, Set};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{scopes, state},
    error::VaultError,
    store::entity::channel,
    vault::{Vault, now_ms},
};

/// What one check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy {
        resubscribed: bool,
    },
    NeedsReauth(String),
    /// Meta could not be asked (network, throttling): nothing changed.
    Unknown(String),
    /// Not connected (already NEEDS_REAUTH): left alone until an admin reconnects it.
    Skipped,
}

impl Vault {
    pub async fn check_channel(
        &self,
        workspace: &WorkspaceId,
        channel_id: &str,
    ) -> Result<(channel::Model, Health), VaultError> {
        let ch = self.channel(&self.db, workspace, channel_id).await?;
        let health = self.check(&ch).await?;
        let ch = self.channel(&self.db, workspace, channel_id).await?;
        Ok((ch, health))
    }

    pub(crate) async fn check(&self, ch: &channel::Model) -> Result<Health, VaultError> {
        if ch.state != ChannelState::Connected as i32 {
            return Ok(Health::Skipped);
        }
        let kind = ChannelKind::try_from(ch.kind).unwrap_or(ChannelKind::Unspecified);
        let token = self.token_of(&self.db, ch).await?;
        let info = match self.graph.debug_token(&token).await {
            Ok(info) => info,
            Err(e) => return self.unreachable_or_reauth(ch, e).await,
        };
        if !info.is_valid {
            let reason = state::invalid_token_reason(info.error);
            self.mark_needs_reauth(ch, &reason).await?;
            return Ok(Health::NeedsReauth(reason));
        }
        if let Some(missing) = scopes::first_missing(kind, &info.scopes) {
            let reason = state::missing_scope_reason(missing);
            self.mark_needs_reauth(ch, &reason).await?;
            return Ok(Health::NeedsReauth(reason));
        }
        // The subscription lives on the Page (also for its Instagram account) or on the WABA.
        let (object, fields): (&str, &[&str]) = match kind {
            ChannelKind::Messenger => (&ch.account_id, scopes::PAGE_FIELDS),
            ChannelKind::Instagram => (&ch.parent_account_id, scopes::PAGE_FIELDS),
            _ => (&ch.parent_account_id, &[]),
        };
        let subscribed = match self.graph.subscribed_fields(object, &token).await {
            Ok(s) => s,
            Err(e) => return self.unreachable_or_reauth(ch, e).await,
        };
        let complete = subscribed
            .as_ref()
            .is_some_and(|have| fields.iter().all(|f| have.iter().any(|h| h == f)));
        let mut resubscribed = false;
        if !complete {
            if let Err(e) = self.graph.subscribe_app(object, fields, &token).await {
                return self.unreachable_or_reauth(ch, e).await;
            }
            resubscribed = true;
            tracing::warn!(channel_id = %ch.id, object, "webhook subscription was missing; subscribed again");
        }
        let mut row = ch.clone().into_active_model();
        row.scopes = Set(info.scopes.join(","));
        row.token_expires_at_ms = Set(info.expires_at.filter(|t| *t > 0).map(|t| t * 1000));
        row.last_checked_at_ms = Set(Some(now_ms()));
        row.update(&self.db).await?;
        if resubscribed {
            let workspace = WorkspaceId::parse(&ch.workspace_id)?;
            self.record(
                &self.db,
                Audit::new(
                    &workspace,
                    Actor::system(),
                    action::CHANNEL_RESUBSCRIBED,
                    Outcome::Success,
                )
                .target("channel", &ch.id)
                .detail(format!("object {object}")),
            )
            .await?;
            self.published();
        }
        Ok(Health::Healthy { resubscribed })
    }

    async fn unreachable_or_reauth(&self, ch: &channel::Model, e: GraphError) -> Result<Health, VaultError> {
        if let GraphError::Meta(m) = &e
            && let Some(reason) = state::reauth_reason(m)
        {
            self.mark_needs_reauth(ch, &reason).await?;
            return Ok(Health::NeedsReauth(reason));
        }
        tracing::warn!(channel_id = %ch.id, error = %e, "health check could not reach Meta");
        Ok(Health::Unknown(e.to_string()))
    }

    /// Checks every connected channel not checked within `interval`, one at a time.
    pub async fn check_due(&self, interval: Duration) -> Result<usize, VaultError> {
        let due_before = now_ms() - interval.as_millis() as i64;
        let due = channel::Entity::find()
            .filter(channel::Column::State.eq(ChannelState::Connected as i32))
            .filter(
                Condition::any()
                    .add(channel::Column::LastCheckedAtMs.is_null())
                    .add(channel::Column::LastCheckedAtMs.lt(due_before)),
            )
            .all(&self.db)
            .await?;
        let count = due.len();
        for ch in due {
            if let Err(e) = self.check(&ch).await {
                tracing::error!(channel_id = %ch.id, error = %scifer_plumbing::error_chain(&e), "health check failed");
            }
        }
        Ok(count)
    }

    /// The periodic health check, until `shutdown`.
    pub async fn run_health_checks(&self, interval: Duration, shutdown: CancellationToken) {
        // Wake up more often than the interval so a channel is checked soon after it falls due.
        let tick = (interval / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
        loop {
            if let Err(e) = self.check_due(interval).await {
                tracing::error!(error = %scifer_plumbing::error_chain(&e), "health check round failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(tick) => {}
            }
        }
    }
}
