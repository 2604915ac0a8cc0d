//! The workspace's media storage: a local directory by default, S3-compatible object storage in
//! production. Both are `object_store` implementations; `ObjectStore` is the seam, so this is a
//! thin wrapper that adds what we need on top: stream in while hashing, content-addressed keys,
//! and a prefix delete.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart, path::Path};

use crate::config::Config;

use super::domain::{FetchError, storage_key};

#[derive(Debug, thiserror::Error)]
pub enum StorageSetupError {
    #[error("MEDIA_STORE must be `local` or `s3`, not `{0}`")]
    UnknownStore(String),
    #[error("MEDIA_STORE=s3 needs MEDIA_S3_BUCKET")]
    NoBucket,
    #[error("MEDIA_DIR {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("media storage: {0}")]
    Store(#[from] object_store::Error),
}

/// A file written: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone)]
pub struct MediaStorage {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for MediaStorage {
    // The S3 client's own Debug is not ours to vouch for; print the kind only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStorage").finish_non_exhaustive()
    }
}

impl MediaStorage {
    pub fn from_config(config: &Config) -> Result<Self, StorageSetupError> {
        let store: Arc<dyn ObjectStore> = match config.media_store.as_str() {
            "local" => {
                std::fs::create_dir_all(&config.media_dir).map_err(|source| StorageSetupError::Dir {
                    dir: config.media_dir.clone(),
                    source,
                })?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&config.media_dir)?
                        // Deleting a channel's files leaves no empty directories behind.
                        .with_automatic_cleanup(true),
                )
            }
            "s3" => {
                let bucket = config
                    .media_s3_bucket
                    .clone()
                    .ok_or(StorageSetupError::NoBucket)?;
                // Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
                // AWS_SESSION_TOKEN in the environment (or the instance's role), never from our
                // settings, so they are never printed with them.
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &config.media_s3_endpoint {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint.clone());
                }
                if let Some(region) = &config.media_s3_region {
                    builder = builder.with_region(region.clone());
                }
                Arc::new(builder.build()?)
            }
            other => return Err(StorageSetupError::UnknownStore(other.to_string())),
        };
        Ok(Self { store })
    }

    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Streams `body` into the store under `<workspace>/<channel>/<sha256>`, hashing as it goes
    /// and refusing more than `max_bytes`; only one multipart chunk is in memory at a time.
    /// The bytes go to a temporary key first, since the name is known only at the end.
    pub async fn write<S, E>(
        &self,
        workspace_id: &str,
        channel_id: &str,
        mut body: S,
        max_bytes: u64,
    ) -> Result<Stored, FetchError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<FetchError>,
    {
        let prefix = super::domain::channel_prefix(workspace_id, channel_id);
        let tmp = Path::from(format!("{prefix}tmp-{}", uuid::Uuid::now_v7()));
        let upload = self.store.put_multipart(&tmp).await.map_err(storage_failure)?;
        let mut writer = WriteMultipart::new(upload);
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size: u64 = 0;
        let result: Result<(), FetchError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Into::into)?;
                size = size.saturating_add(chunk.len() as u64);
                if size > max_bytes {
                    return Err(FetchError::Permanent("too_large".into()));
                }
                hash.update(&chunk);
                writer.wait_for_capacity(2).await.map_err(storage_failure)?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            writer.abort().await.ok();
            return Err(e);
        }
        writer.finish().await.map_err(storage_failure)?;
        let sha256 = hex::encode(hash.finish().as_ref());
        let key = storage_key(workspace_id, channel_id, &sha256);
        // Same content, same key: overwriting an identical file is harmless.
        if let Err(e) = self.store.rename(&tmp, &Path::from(key.as_str())).await {
            self.store.delete(&tmp).await.ok();
            return Err(storage_failure(e));
        }
        Ok(Stored { key, sha256, size })
    }

    /// The bytes of `key`, in chunks.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        Ok(self.store.get(&Path::from(key)).await?.into_stream())
    }

    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the objects under `prefix` (a channel's files) written at or before `written_by`
    /// (a disconnect's time: a reconnected channel's new files stay); returns how many.
    pub async fn delete_prefix(
        &self,
        prefix: &str,
        written_by: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, object_store::Error> {
        let prefix = Path::from(prefix.trim_end_matches('/'));
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut count = 0;
        for meta in metas.into_iter().filter(|m| m.last_modified <= written_by) {
            self.delete(meta.location.as_ref()).await?;
            count += 1;
        }
        Ok(count)
    }
}

fn storage_failure(e: object_store::Error) -> FetchError {
    // The store's error text names paths and buckets, never credentials.
    FetchError::Transient(format!("storage: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn local() -> (tempfile::TempDir, MediaStorage) {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true);
        (dir, MediaStorage::new(Arc::new(store)))
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, FetchError>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn files_are_hashed_while_written_kept_by_content_and_deleted_by_channel() {
        let (_dir, storage) = local();
        let stored = storage
            .write("ws", "ch", chunks(&[b"hello ", b"world"]), 1024)
            .await
            .unwrap();
        let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"hello world").as_ref());
        assert_eq!(stored.sha256, expected);
        assert_eq!(stored.size, 11);
        assert_eq!(stored.key, format!("ws/ch/{expected}"));
        let read: Vec<Bytes> = storage
            .read(&stored.key)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(read.concat(), b"hello world");
        storage.write("ws", "other", chunks(&[b"x"]), 10).await.unwrap();
        let before = chrono::Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(
            storage.delete_prefix("ws/ch/", before).await.unwrap(),
            0,
            "newer files stay"
        );
        let now = chrono::Utc::now();
        assert_eq!(storage.delete_prefix("ws/ch/", now).await.unwrap(), 1);
        assert!(storage.read(&stored.key).await.is_err());
        assert_eq!(storage.delete_prefix("ws/other/", now).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn too_large_files_are_refused_and_leave_nothing_behind() {
        let (dir, storage) = local();
        let err = storage
            .write("ws", "ch", chunks(&[b"12345", b"67890"]), 8)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::Permanent("too_large".into()));
        assert_eq!(
            storage.delete_prefix("ws/ch/", chrono::Utc::now()).await.unwrap(),
            0
        );
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
