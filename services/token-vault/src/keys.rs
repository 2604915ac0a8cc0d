//! Data keys per workspace, wrapped under the configured KEKs, and the sealing of tokens with them.
//!
//! Unwrapped data keys are cached in memory (they are needed on every Graph call); the cache is
//! keyed by workspace and version and dropped for a workspace when its keys are destroyed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use scifer_vault_crypto::{DataKey, Keyring, Plaintext, TokenAad};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::{error::VaultError, store::entity::data_key};

type Cache = HashMap<(String, u32), Arc<DataKey>>;

pub struct Keys {
    keyring: Keyring,
    cache: Mutex<Cache>,
}

impl Keys {
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The workspace's newest data key, created (version 1) on first use.
    pub async fn current(
        &self,
        db: &impl ConnectionTrait,
        workspace_id: &str,
    ) -> Result<Arc<DataKey>, VaultError> {
        let newest = data_key::Entity::find()
            .filter(data_key::Column::WorkspaceId.eq(workspace_id))
            .order_by_desc(data_key::Column::Version)
            .one(db)
            .await?;
        match newest {
            Some(row) => self.unwrap_row(&row),
            None => self.add_version(db, workspace_id, 1).await,
        }
    }

    /// Adds data-key version `version` for the workspace (rotation, or the first key).
    pub async fn add_version(
        &self,
        db: &impl ConnectionTrait,
        workspace_id: &str,
        version: u32,
    ) -> Result<Arc<DataKey>, VaultError> {
        let (key, wrapped) = self.keyring.new_data_key(workspace_id, version)?;
        let inserted = data_key::ActiveModel {
            workspace_id: Set(workspace_id.to_string()),
            version: Set(version as i32),
            kek_version: Set(wrapped.kek_version as i32),
            wrapped: Set(wrapped.bytes),
            created_at_ms: Set(chrono::Utc::now().timestamp_millis()),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(_) => {
                let key = Arc::new(key);
                self.cache_put(workspace_id, version, key.clone());
                Ok(key)
            }
            // Another request created this version first: use theirs.
            Err(_) => self.get(db, workspace_id, version).await,
        }
    }

    /// Data key `version` of a workspace.
    pub async fn get(
        &self,
        db: &impl ConnectionTrait,
        workspace_id: &str,
        version: u32,
    ) -> Result<Arc<DataKey>, VaultError> {
        if let Some(key) = self.cache_get(workspace_id, version) {
            return Ok(key);
        }
        let row = data_key::Entity::find_by_id((workspace_id.to_string(), version as i32))
            .one(db)
            .await?
            .ok_or(VaultError::Crypto)?;
        self.unwrap_row(&row)
    }

    fn unwrap_row(&self, row: &data_key::Model) -> Result<Arc<DataKey>, VaultError> {
        let version = row.version as u32;
        if let Some(key) = self.cache_get(&row.workspace_id, version) {
            return Ok(key);
        }
        let key = Arc::new(self.keyring.unwrap(&row.workspace_id, version, &row.wrapped)?);
        self.cache_put(&row.workspace_id, version, key.clone());
        Ok(key)
    }

    /// Seals `plaintext` under the workspace's newest data key. Returns the blob and the version.
    pub async fn seal(
        &self,
        db: &impl ConnectionTrait,
        aad: &TokenAad<'_>,
        plaintext: &Plaintext,
    ) -> Result<(Vec<u8>, i32), VaultError> {
        let key = self.current(db, aad.workspace_id).await?;
        let blob = key.seal(aad, plaintext)?;
        Ok((blob, key.version() as i32))
    }

    pub async fn open(
        &self,
        db: &impl ConnectionTrait,
        aad: &TokenAad<'_>,
        blob: &[u8],
    ) -> Result<Plaintext, VaultError> {
        let version = scifer_vault_crypto::sealed_data_key_version(blob).ok_or(VaultError::Crypto)?;
        let key = self.get(db, aad.workspace_id, version).await?;
        Ok(key.open(aad, blob)?)
    }

    /// Forgets cached keys of a workspace (after its key rows were deleted).
    pub fn forget(&self, workspace_id: &str, version: Option<u32>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(ws, v), _| ws != workspace_id || version.is_some_and(|keep| keep != *v));
        }
    }

    fn cache_get(&self, workspace_id: &str, version: u32) -> Option<Arc<DataKey>> {
        self.cache
            .lock()
            .ok()
            .and_then(|c| c.get(&(workspace_id.to_string(), version)).cloned())
    }

    fn cache_put(&self, workspace_id: &str, version: u32, key: Arc<DataKey>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert((workspace_id.to_string(), version), key);
        }
    }
}
