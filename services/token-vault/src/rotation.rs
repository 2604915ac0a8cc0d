//! Key rotation without downtime. A new KEK is added to the configuration and promoted (made
//! primary); a new data-key version is added per workspace with RotateDataKey. This job then
//! re-wraps data keys under the primary KEK and re-seals tokens under their workspace's newest
//! data key, a batch per transaction, while the vault keeps serving: every blob names its key
//! version, so old and new coexist until the job is done. Data-key versions no token uses any more
//! are deleted; a KEK can be removed from the configuration once no data key names it.

use std::{collections::HashMap, time::Duration};

use scifer_audit::{Actor, Audit, Outcome, action};
use scifer_ids::WorkspaceId;
use scifer_proto::tokenvault::v1::RotationStatus;
use scifer_vault_crypto::TokenAad;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, sea_query::Expr};
use tokio_util::sync::CancellationToken;

use crate::{
    error::VaultError,
    store::entity::{connect_session, data_key, token},
    vault::Vault,
};

impl Vault {
    /// Adds the next data-key version for a workspace; tokens move to it in the background.
    pub async fn rotate_data_key(&self, workspace: &WorkspaceId, caller: &str) -> Result<(), VaultError> {
        let current = self.keys.current(&self.db, workspace.as_str()).await?;
        let next = current.version() + 1;
        self.keys.add_version(&self.db, workspace.as_str(), next).await?;
        self.record(
            &self.db,
            Audit::new(
                workspace,
                Actor::service(caller),
                action::KEYS_ROTATED,
                Outcome::Success,
            )
            .target("workspace", workspace.as_str())
            .detail(format!("data key version {next}")),
        )
        .await?;
        self.published();
        Ok(())
    }

    /// Newest data-key version per workspace.
    async fn newest_versions(&self) -> Result<HashMap<String, i32>, VaultError> {
        let rows: Vec<(String, i32)> = data_key::Entity::find()
            .select_only()
            .column(data_key::Column::WorkspaceId)
            .column_as(data_key::Column::Version.max(), "version")
            .group_by(data_key::Column::WorkspaceId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn rotation_status(&self) -> Result<RotationStatus, VaultError> {
        let primary = self.keys.keyring().primary_version();
        let data_keys_on_old_kek = data_key::Entity::find()
            .filter(data_key::Column::KekVersion.ne(primary as i32))
            .count(&self.db)
            .await?;
        let newest = self.newest_versions().await?;
        let mut tokens_on_old_data_key = 0;
        for (workspace, version) in &newest {
            tokens_on_old_data_key += token::Entity::find()
                .filter(token::Column::WorkspaceId.eq(workspace))
                .filter(token::Column::DataKeyVersion.lt(*version))
                .count(&self.db)
                .await?;
        }
        let mut kek_versions_in_use: Vec<u32> = data_key::Entity::find()
            .select_only()
            .column(data_key::Column::KekVersion)
            .distinct()
            .into_tuple::<i32>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|v| v as u32)
            .collect();
        kek_versions_in_use.sort_unstable();
        Ok(RotationStatus {
            primary_kek_version: primary,
            data_keys_on_old_kek,
            tokens_on_old_data_key,
            kek_versions_in_use,
        })
    }

    /// One pass of the rotation job; returns how many rows it changed.
    pub async fn rotate_step(&self, batch: u64) -> Result<u64, VaultError> {
        let mut changed = 0;
        let primary = self.keys.keyring().primary_version() as i32;
        // 1. Data keys wrapped under an older KEK.
        let stale = data_key::Entity::find()
            .filter(data_key::Column::KekVersion.ne(primary))
            .limit(batch)
            .all(&self.db)
            .await?;
        for dk in stale {
            let rewrapped = self
                .keys
                .keyring()
                .rewrap(&dk.workspace_id, dk.version as u32, &dk.wrapped)?;
            let done = data_key::Entity::update_many()
                .col_expr(data_key::Column::Wrapped, Expr::value(rewrapped.bytes))
                .col_expr(
                    data_key::Column::KekVersion,
                    Expr::value(rewrapped.kek_version as i32),
                )
                .filter(data_key::Column::WorkspaceId.eq(&dk.workspace_id))
                .filter(data_key::Column::Version.eq(dk.version))
                .filter(data_key::Column::KekVersion.eq(dk.kek_version))
                .exec(&self.db)
                .await?;
            changed += done.rows_affected;
        }
        // 2. Tokens sealed under an older data key of their workspace.
        for (workspace, newest) in self.newest_versions().await? {
            let stale = token::Entity::find()
                .filter(token::Column::WorkspaceId.eq(&workspace))
                .filter(token::Column::DataKeyVersion.lt(newest))
                .limit(batch)
                .all(&self.db)
                .await?;
            if stale.is_empty() {
                self.retire_old_data_keys(&workspace, newest).await?;
                continue;
            }
            let txn = scifer_db::begin_write(&self.db).await?;
            for row in stale {
                let aad = TokenAad {
                    workspace_id: &row.workspace_id,
                    channel_id: &row.channel_id,
                    token_kind: &row.kind,
                    record_id: &row.id,
                };
                let plain = self.keys.open(&txn, &aad, &row.sealed).await?;
                let (sealed, version) = self.keys.seal(&txn, &aad, &plain).await?;
                // Only if nobody replaced the token meanwhile (a reconnect writes a new row).
                let done = token::Entity::update_many()
                    .col_expr(token::Column::Sealed, Expr::value(sealed))
                    .col_expr(token::Column::DataKeyVersion, Expr::value(version))
                    .filter(token::Column::Id.eq(&row.id))
                    .filter(token::Column::DataKeyVersion.eq(row.data_key_version))
                    .exec(&txn)
                    .await?;
                changed += done.rows_affected;
            }
            txn.commit().await?;
        }
        Ok(changed)
    }

    /// Deletes data-key versions older than `newest` that no token or connect session uses.
    async fn retire_old_data_keys(&self, workspace: &str, newest: i32) -> Result<(), VaultError> {
        let sessions_on_old = connect_session::Entity::find()
            .filter(connect_session::Column::WorkspaceId.eq(workspace))
            .filter(connect_session::Column::DataKeyVersion.lt(newest))
            .count(&self.db)
            .await?;
        if sessions_on_old > 0 {
            return Ok(());
        }
        let retired = data_key::Entity::delete_many()
            .filter(data_key::Column::WorkspaceId.eq(workspace))
            .filter(data_key::Column::Version.lt(newest))
            .exec(&self.db)
            .await?;
        if retired.rows_affected > 0 {
            self.keys.forget(workspace, Some(newest as u32));
            tracing::info!(
                workspace,
                retired = retired.rows_affected,
                "old data-key versions retired"
            );
        }
        Ok(())
    }

    /// The rotation job, until `shutdown`: drains everything due, then waits `interval`.
    pub async fn run_rotation(&self, interval: Duration, batch: u64, shutdown: CancellationToken) {
        loop {
            loop {
                match self.rotate_step(batch).await {
                    Ok(0) => break,
                    Ok(n) => tracing::info!(rows = n, "key rotation progressed"),
                    Err(e) => {
                        tracing::error!(error = %scifer_plumbing::error_chain(&e), "key rotation step failed");
                        break;
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
