//! Disconnecting: unsubscribe the app from the account at Meta, destroy the tokens, delete the
//! channel, announce DISCONNECTED (every service then deletes the channel's data) and audit it.
//! When a workspace has no token left, its data keys are deleted too (crypto-shredding: any copy
//! of a sealed token, e.g. in a backup, can no longer be opened).

use scifer_audit::{Actor, Audit, Outcome, action};
use scifer_ids::WorkspaceId;
use scifer_proto::events::v1::{ChannelKind, ChannelState};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    error::VaultError,
    store::entity::{channel, connect_session, data_key, token},
    vault::{Vault, now_ms},
};

impl Vault {
    /// Disconnects a channel (a Page with its Instagram accounts). Returns the channel ids removed.
    pub async fn disconnect(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        channel_id: &str,
    ) -> Result<Vec<String>, VaultError> {
        let ch = self.channel(&self.db, workspace, channel_id).await?;
        let kind = ChannelKind::try_from(ch.kind).unwrap_or(ChannelKind::Unspecified);
        let mut removed = vec![ch.clone()];
        if kind == ChannelKind::Messenger {
            removed.extend(
                channel::Entity::find()
                    .filter(channel::Column::WorkspaceId.eq(workspace.as_str()))
                    .filter(channel::Column::Kind.eq(ChannelKind::Instagram as i32))
                    .filter(channel::Column::ParentAccountId.eq(&ch.account_id))
                    .all(&self.db)
                    .await?,
            );
        }
        let unsubscribed = self.unsubscribe(&ch, kind, &removed).await;

        let txn = scifer_db::begin_write(&self.db).await?;
        for gone in &removed {
            token::Entity::delete_many()
                .filter(token::Column::ChannelId.eq(&gone.id))
                .exec(&txn)
                .await?;
            channel::Entity::delete_by_id(gone.id.clone()).exec(&txn).await?;
            let mut tombstone = gone.clone();
            tombstone.state = ChannelState::Disconnected as i32;
            tombstone.state_reason = String::new();
            tombstone.version = gone.version + 1;
            tombstone.updated_at_ms = now_ms();
            self.announce(&txn, &tombstone).await?;
            self.record(
                &txn,
                Audit::new(
                    workspace,
                    Actor::user(user_id),
                    action::CHANNEL_DISCONNECTED,
                    Outcome::Success,
                )
                .target("channel", &gone.id)
                .detail(format!(
                    "{} {}; webhooks {}",
                    ChannelKind::try_from(gone.kind)
                        .map(|k| k.as_str_name())
                        .unwrap_or("?"),
                    gone.account_id,
                    unsubscribed
                )),
            )
            .await?;
        }
        let tokens_left = token::Entity::find()
            .filter(token::Column::WorkspaceId.eq(workspace.as_str()))
            .count(&txn)
            .await?;
        let sessions_left = connect_session::Entity::find()
            .filter(connect_session::Column::WorkspaceId.eq(workspace.as_str()))
            .count(&txn)
            .await?;
        let shred = tokens_left == 0 && sessions_left == 0;
        if shred {
            data_key::Entity::delete_many()
                .filter(data_key::Column::WorkspaceId.eq(workspace.as_str()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if shred {
            self.keys.forget(workspace.as_str(), None);
        }
        self.published();
        tracing::info!(
            channel_id,
            removed = removed.len(),
            shredded_keys = shred,
            "channel disconnected"
        );
        Ok(removed.into_iter().map(|c| c.id).collect())
    }

    /// Asks Meta to stop sending this account's webhooks. Best effort: a token Meta already
    /// revoked cannot unsubscribe, and the disconnect must still remove our copy of everything.
    async fn unsubscribe(
        &self,
        ch: &channel::Model,
        kind: ChannelKind,
        removed: &[channel::Model],
    ) -> &'static str {
        let object = match kind {
            ChannelKind::Messenger => ch.account_id.clone(),
            // Page-linked Instagram webhooks ride on the Page's subscription, which the Page's own
            // channel still needs; the inbox ignores events of a disconnected account.
            ChannelKind::Instagram => return "kept (delivered through the Page's subscription)",
            ChannelKind::Whatsapp => {
                let others = channel::Entity::find()
                    .filter(channel::Column::WorkspaceId.eq(&ch.workspace_id))
                    .filter(channel::Column::ParentAccountId.eq(&ch.parent_account_id))
                    .filter(channel::Column::Kind.eq(ChannelKind::Whatsapp as i32))
                    .all(&self.db)
                    .await
                    .map(|all| {
                        all.into_iter()
                            .filter(|c| !removed.iter().any(|r| r.id == c.id))
                            .count()
                    })
                    .unwrap_or(0);
                if others > 0 {
                    return "kept (other numbers of the WABA remain connected)";
                }
                ch.parent_account_id.clone()
            }
            ChannelKind::Unspecified => return "none",
        };
        let token = match self.token_of(&self.db, ch).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(channel_id = %ch.id, error = %e, "no usable token to unsubscribe with");
                return "not unsubscribed (no usable token)";
            }
        };
        match self.graph.unsubscribe_app(&object, &token).await {
            Ok(()) => "unsubscribed",
            Err(e) => {
                tracing::warn!(channel_id = %ch.id, error = %e, "unsubscribing at Meta failed; disconnecting anyway");
                "not unsubscribed (Meta refused)"
            }
        }
    }
}
