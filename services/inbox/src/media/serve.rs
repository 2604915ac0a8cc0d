//! `GetMedia`: a stored attachment copy streamed back, in the caller's workspace only.

use futures::{StreamExt, stream::BoxStream};
use scifer_proto::inbox::v1::{GetMediaRequest, MediaChunk, MediaInfo, MediaState, media_chunk};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::MediaStorage;
use crate::{
    convert::AttachmentRecord,
    domain::WorkspaceId,
    error::InboxError,
    store::entity::{media_file, message},
};

/// Chunks of at most this size (object stores hand back whatever their transport read).
const CHUNK: usize = 64 * 1024;

pub type MediaStream = BoxStream<'static, Result<MediaChunk, tonic::Status>>;

/// The description first, then the bytes.
pub async fn get_media(
    db: &DatabaseConnection,
    storage: &MediaStorage,
    ws: &WorkspaceId,
    request: &GetMediaRequest,
) -> Result<MediaStream, InboxError> {
    let m = message::Entity::find_by_id(request.message_id.clone())
        .filter(message::Column::WorkspaceId.eq(ws.as_str()))
        .one(db)
        .await?
        .ok_or(InboxError::MessageNotFound)?;
    let index = i32::try_from(request.attachment_index).map_err(|_| InboxError::AttachmentNotFound)?;
    let records: Vec<AttachmentRecord> = serde_json::from_str(&m.attachments_json).unwrap_or_default();
    let record = records
        .get(request.attachment_index as usize)
        .ok_or(InboxError::AttachmentNotFound)?;
    let copy = media_file::Entity::find()
        .filter(media_file::Column::WorkspaceId.eq(ws.as_str()))
        .filter(media_file::Column::MessageId.eq(m.id.as_str()))
        .filter(media_file::Column::AttachmentIndex.eq(index))
        .one(db)
        .await?
        .ok_or_else(|| InboxError::MediaNotStored("this attachment has no copy to serve".into()))?;
    match MediaState::try_from(copy.state) {
        Ok(MediaState::Stored) => {}
        Ok(MediaState::Pending) => {
            return Err(InboxError::MediaNotStored(
                "the attachment is still being fetched".into(),
            ));
        }
        Ok(MediaState::Expired) => {
            return Err(InboxError::MediaNotStored(
                "Meta's link to the attachment expired before it could be fetched".into(),
            ));
        }
        _ => {
            return Err(InboxError::MediaNotStored(format!(
                "the attachment could not be fetched ({})",
                copy.failure
            )));
        }
    }
    let body = storage
        .read(&copy.storage_key)
        .await
        .map_err(InboxError::MediaStorage)?;
    let info = MediaChunk {
        part: Some(media_chunk::Part::Info(MediaInfo {
            content_type: copy.content_type.clone(),
            sha256: copy.sha256.clone(),
            size_bytes: u64::try_from(copy.size_bytes).unwrap_or(0),
            filename: record.filename.clone(),
        })),
    };
    let message_id = m.id.clone();
    let data = body.flat_map(move |chunk| {
        let parts: Vec<Result<MediaChunk, tonic::Status>> = match chunk {
            Ok(bytes) => bytes
                .chunks(CHUNK)
                .map(|c| {
                    Ok(MediaChunk {
                        part: Some(media_chunk::Part::Data(c.to_vec())),
                    })
                })
                .collect(),
            Err(e) => {
                tracing::error!(%message_id, error = %e, "reading a stored attachment failed");
                vec![Err(tonic::Status::internal("internal error"))]
            }
        };
        futures::stream::iter(parts)
    });
    Ok(futures::stream::once(async { Ok(info) }).chain(data).boxed())
}
