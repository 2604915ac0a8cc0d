//! The vault's engine: the store, the keys, the Graph client and the outbox, shared by the
//! connect, egress, health, rotation and disconnect flows (one file each, all `impl Vault`).

use std::{sync::Arc, time::Duration};

use scifer_audit::{Actor, Audit, AuditEmitter, Outcome};
use scifer_events::Bus;
use scifer_graph::{GraphClient, Token};
use scifer_ids::WorkspaceId;
use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState};
use scifer_vault_crypto::{Plaintext, TokenAad};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use tokio::sync::Notify;

use crate::{
    error::VaultError,
    keys::Keys,
    outbox,
    store::entity::{channel, token},
};

pub struct Vault {
    pub(crate) db: DatabaseConnection,
    pub(crate) keys: Keys,
    pub(crate) graph: GraphClient,
    /// Our Meta app: tokens issued to another app are refused.
    pub(crate) app_id: String,
    pub(crate) bus: Bus,
    pub(crate) audit: AuditEmitter,
    pub(crate) outbox_notify: Arc<Notify>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) connect_ttl: Duration,
    /// Hosts a media URL may be on to receive a token (`MEDIA_URL_HOSTS`).
    pub(crate) media_hosts: Vec<String>,
    pub(crate) media_max_bytes: u64,
}

/// Token kinds as stored (and bound into the associated data).
pub const PAGE_TOKEN: &str = "page";
pub const SYSTEM_USER_TOKEN: &str = "system_user";
pub const USER_TOKEN: &str = "user";

/// The egress target a stored channel names.
pub(crate) fn target(channel: &channel::Model) -> crate::domain::egress::Target<'_> {
    crate::domain::egress::Target {
        kind: ChannelKind::try_from(channel.kind).unwrap_or(ChannelKind::Unspecified),
        account_id: &channel.account_id,
        parent_account_id: &channel.parent_account_id,
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Vault {
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Wakes the outbox relay after a commit that enqueued events.
    pub(crate) fn published(&self) {
        self.outbox_notify.notify_one();
    }

    /// A workspace's channel, or NOT_FOUND (also for another workspace's channel).
    pub(crate) async fn channel(
        &self,
        db: &impl ConnectionTrait,
        workspace: &WorkspaceId,
        channel_id: &str,
    ) -> Result<channel::Model, VaultError> {
        channel::Entity::find_by_id(channel_id.to_string())
            .filter(channel::Column::WorkspaceId.eq(workspace.as_str()))
            .one(db)
            .await?
            .ok_or(VaultError::ChannelNotFound)
    }

    /// Opens a channel's token. The plaintext lives only in the returned zeroizing `Token`.
    pub(crate) async fn token_of(
        &self,
        db: &impl ConnectionTrait,
        ch: &channel::Model,
    ) -> Result<Token, VaultError> {
        let row = token::Entity::find()
            .filter(token::Column::ChannelId.eq(&ch.id))
            .filter(token::Column::WorkspaceId.eq(&ch.workspace_id))
            .one(db)
            .await?
            .ok_or_else(|| VaultError::NeedsReauth("no token stored".into()))?;
        let aad = TokenAad {
            workspace_id: &row.workspace_id,
            channel_id: &row.channel_id,
            token_kind: &row.kind,
            record_id: &row.id,
        };
        let plain = self.keys.open(db, &aad, &row.sealed).await?;
        let text = plain.expose_str().ok_or(VaultError::Crypto)?;
        Ok(Token::new(text.to_string()))
    }

    /// Seals `token` for a channel as a new token row (replacing any previous one).
    pub(crate) async fn store_token(
        &self,
        db: &impl ConnectionTrait,
        ch: &channel::Model,
        kind: &str,
        token: &Token,
    ) -> Result<(), VaultError> {
        token::Entity::delete_many()
            .filter(token::Column::ChannelId.eq(&ch.id))
            .exec(db)
            .await?;
        let id = uuid::Uuid::now_v7().to_string();
        let aad = TokenAad {
            workspace_id: &ch.workspace_id,
            channel_id: &ch.id,
            token_kind: kind,
            record_id: &id,
        };
        let plain = Plaintext::from_string(token.expose().to_string());
        let (sealed, version) = self.keys.seal(db, &aad, &plain).await?;
        token::ActiveModel {
            id: Set(id),
            workspace_id: Set(ch.workspace_id.clone()),
            channel_id: Set(ch.id.clone()),
            kind: Set(kind.to_string()),
            sealed: Set(sealed),
            data_key_version: Set(version),
            created_at_ms: Set(now_ms()),
        }
        .insert(db)
        .await?;
        Ok(())
    }

    /// Enqueues the channel's current state on the bus (in the caller's transaction).
    pub(crate) async fn announce(
        &self,
        db: &impl ConnectionTrait,
        ch: &channel::Model,
    ) -> Result<(), VaultError> {
        let state = ChannelState::try_from(ch.state).unwrap_or(ChannelState::Unspecified);
        let event_id = uuid::Uuid::now_v7().to_string();
        let event = ChannelEvent {
            event_id: event_id.clone(),
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            kind: ch.kind,
            account_id: ch.account_id.clone(),
            display_name: if state == ChannelState::Disconnected {
                String::new()
            } else {
                ch.display_name.clone()
            },
            state: ch.state,
            version: ch.version,
            at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            state_reason: ch.state_reason.clone(),
            parent_account_id: ch.parent_account_id.clone(),
        };
        outbox::enqueue(db, self.bus.channel_event(state), &event_id, &event).await?;
        Ok(())
    }

    /// Enqueues an audit record (in the caller's transaction, so it exists iff the change does).
    pub(crate) async fn record(&self, db: &impl ConnectionTrait, audit: Audit) -> Result<(), VaultError> {
        let entry = self
            .audit
            .prepare(audit)
            .map_err(|e| VaultError::Internal(format!("audit entry: {e}")))?;
        let subject = self.bus.audit_event(entry.workspace_id().as_str());
        outbox::enqueue(db, subject, entry.event_id(), &entry.to_event()).await?;
        Ok(())
    }

    /// Channels that use the same Meta token as `ch`: a Page and its Instagram accounts; the
    /// numbers of one WABA.
    pub(crate) async fn token_siblings(
        &self,
        db: &impl ConnectionTrait,
        ch: &channel::Model,
    ) -> Result<Vec<channel::Model>, VaultError> {
        let page = match ChannelKind::try_from(ch.kind) {
            Ok(ChannelKind::Messenger) => Some(ch.account_id.clone()),
            Ok(ChannelKind::Instagram) => Some(ch.parent_account_id.clone()),
            _ => None,
        };
        let all = channel::Entity::find()
            .filter(channel::Column::WorkspaceId.eq(&ch.workspace_id))
            .all(db)
            .await?;
        Ok(all
            .into_iter()
            .filter(|c| {
                c.id == ch.id
                    || match &page {
                        Some(p) => {
                            (c.kind == ChannelKind::Messenger as i32 && &c.account_id == p)
                                || (c.kind == ChannelKind::Instagram as i32 && &c.parent_account_id == p)
                        }
                        None => {
                            c.kind == ChannelKind::Whatsapp as i32
                                && !ch.parent_account_id.is_empty()
                                && c.parent_account_id == ch.parent_account_id
                        }
                    }
            })
            .collect())
    }

    /// Puts `ch` and the channels sharing its token in NEEDS_REAUTH with `reason`, announces it
    /// and audits it. Calls for them are refused until they are reconnected. Each update is
    /// conditional on the version read here, so a reconnect that landed meanwhile wins: its new
    /// token was not the one Meta refused.
    pub(crate) async fn mark_needs_reauth(
        &self,
        ch: &channel::Model,
        reason: &str,
    ) -> Result<(), VaultError> {
        let mut targets = vec![ch.clone()];
        targets.extend(
            self.token_siblings(&self.db, ch)
                .await?
                .into_iter()
                .filter(|s| s.id != ch.id),
        );
        let txn = scifer_db::begin_write(&self.db).await?;
        let mut changed = 0;
        for target in targets {
            if target.state != ChannelState::Connected as i32 {
                continue;
            }
            let now = now_ms();
            let updated = channel::Entity::update_many()
                .col_expr(
                    channel::Column::State,
                    Expr::value(ChannelState::NeedsReauth as i32),
                )
                .col_expr(channel::Column::StateReason, Expr::value(reason))
                .col_expr(channel::Column::Version, Expr::value(target.version + 1))
                .col_expr(channel::Column::UpdatedAtMs, Expr::value(now))
                .filter(channel::Column::Id.eq(&target.id))
                .filter(channel::Column::Version.eq(target.version))
                .exec(&txn)
                .await?;
            if updated.rows_affected != 1 {
                continue;
            }
            let marked = channel::Model {
                state: ChannelState::NeedsReauth as i32,
                state_reason: reason.to_string(),
                version: target.version + 1,
                updated_at_ms: now,
                ..target
            };
            self.announce(&txn, &marked).await?;
            let workspace = WorkspaceId::parse(&marked.workspace_id)?;
            self.record(
                &txn,
                Audit::new(
                    &workspace,
                    Actor::system(),
                    scifer_audit::action::CHANNEL_NEEDS_REAUTH,
                    Outcome::Failure,
                )
                .target("channel", &marked.id)
                .detail(reason),
            )
            .await?;
            changed += 1;
        }
        txn.commit().await?;
        if changed > 0 {
            tracing::warn!(channel_id = %ch.id, reason, changed, "channel needs reconnecting");
            self.published();
        }
        Ok(())
    }
}
