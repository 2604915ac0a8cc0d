//! Transactional outbox: channel and audit events are written in the same transaction as the
//! change they announce, and a relay publishes them afterwards. A crash between the commit and the
//! publish loses nothing: the row is still there on restart. JetStream deduplicates on the
//! message id, so a crash between the publish and the row's deletion does not duplicate either.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use scifer_events::Publisher;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::entity::outbox;

/// Adds an event to the outbox inside the caller's transaction.
pub async fn enqueue<M: prost::Name>(
    db: &impl ConnectionTrait,
    subject: String,
    msg_id: &str,
    event: &M,
) -> Result<(), DbErr> {
    outbox::ActiveModel {
        subject: Set(subject),
        msg_id: Set(msg_id.to_string()),
        event_type: Set(M::full_name()),
        payload: Set(event.encode_to_vec()),
        created_at_ms: Set(chrono::Utc::now().timestamp_millis()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Publishes outbox rows in order until `shutdown`. Woken by `notify` after each commit that
/// enqueued something, and every `poll` regardless (after a restart, or a broker outage).
pub async fn relay(
    db: DatabaseConnection,
    publisher: Publisher,
    notify: Arc<Notify>,
    poll: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match publish_pending(&db, &publisher).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay could not publish; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = notify.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    // One last pass so events committed just before shutdown leave with us when the bus is up.
    if let Err(e) = publish_pending(&db, &publisher).await {
        tracing::warn!(error = %e, "outbox not empty at shutdown; it is published on the next start");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] DbErr),
    #[error(transparent)]
    Publish(#[from] scifer_events::PublishError),
}

/// Publishes up to one batch of rows, oldest first; returns how many left the outbox.
pub async fn publish_pending(db: &DatabaseConnection, publisher: &Publisher) -> Result<usize, RelayError> {
    let rows = outbox::Entity::find()
        .order_by_asc(outbox::Column::Id)
        .limit(256)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut acks = Vec::with_capacity(rows.len());
    for row in &rows {
        let ack = publisher
            .send_bytes(
                row.subject.clone(),
                &row.msg_id,
                &row.event_type,
                Bytes::from(row.payload.clone()),
            )
            .await?;
        acks.push(ack);
    }
    let mut done = Vec::with_capacity(rows.len());
    for (row, ack) in rows.iter().zip(acks) {
        match ack.await {
            Ok(_) => done.push(row.id),
            Err(e) => {
                tracing::warn!(error = %e, subject = %row.subject, "outbox event not acknowledged; kept");
                break;
            }
        }
    }
    let count = done.len();
    if !done.is_empty() {
        outbox::Entity::delete_many()
            .filter(outbox::Column::Id.is_in(done))
            .exec(db)
            .await?;
    }
    Ok(count)
}
