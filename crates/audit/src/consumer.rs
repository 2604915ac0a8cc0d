//! The gateway's side of the bus: stores every `AuditEvent` with [`store::append_batch`], one
//! transaction per fetched batch, acknowledging only after the commit. In the gateway:
//!
//! ```ignore
//! let consumer = scifer_audit::consumer::durable(&js, &bus).await?;
//! tokio::spawn(scifer_audit::consumer::run(consumer, db.clone(), BatchOptions::default(), shutdown.clone()));
//! ```

use std::time::Duration;

use scifer_events::{
    Batch, BatchOptions, Bus, Delivered, EnsureStreamError, Outcome, StreamKind,
    async_nats::jetstream::{self, consumer::PullConsumer},
};
use scifer_proto::events::v1::AuditEvent;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{entry::AuditEntry, store};

/// The durable consumer's name.
pub const DURABLE_NAME: &str = "gateway-audit";
/// How long a batch that failed on the database waits before redelivery.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// How long the server waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Stream(#[from] EnsureStreamError),
    #[error("cannot create the audit consumer: {0}")]
    Consumer(String),
}

/// Creates (if needed) the audit stream and the durable consumer of every workspace's events.
pub async fn durable(js: &jetstream::Context, bus: &Bus) -> Result<PullConsumer, ConsumerError> {
    let stream = bus.ensure_default_stream(js, StreamKind::Audit).await?;
    scifer_events::durable_consumer(&stream, DURABLE_NAME, bus.audit_events_filter(), ACK_WAIT)
        .await
        .map_err(|e| ConsumerError::Consumer(e.to_string()))
}

/// Stores audit events until `shutdown`; a batch in progress is committed and acknowledged first.
pub async fn run(
    consumer: PullConsumer,
    db: DatabaseConnection,
    options: BatchOptions,
    shutdown: CancellationToken,
) {
    let handler = AuditConsumer::new(db);
    scifer_events::consume_batches(consumer, options, shutdown, move |batch| {
        let handler = handler.clone();
        async move { handler.handle_batch(batch).await }
    })
    .await
}

/// The batch handler; public so tests drive the same code path as [`run`].
#[derive(Clone)]
pub struct AuditConsumer {
    db: DatabaseConnection,
}

impl AuditConsumer {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores a batch in one transaction; one outcome per message, in order. Undecodable or
    /// malformed events are rejected (never stored); a database failure retries the whole batch.
    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let span = tracing::info_span!("audit.batch", size = msgs.len());
        self.handle(msgs).instrument(span).await
    }

    async fn handle(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Ack; msgs.len()];
        let mut indices = Vec::with_capacity(msgs.len());
        let mut entries = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            match parse(msg) {
                Ok(entry) => {
                    indices.push(i);
                    entries.push(entry);
                }
                Err(reason) => {
                    tracing::error!(subject = %msg.subject, %reason, "audit event rejected");
                    outcomes[i] = Outcome::Reject;
                }
            }
        }
        if entries.is_empty() {
            return outcomes;
        }
        match store::append_batch(&self.db, &entries).await {
            Ok(appended) => {
                tracing::debug!(appended, received = entries.len(), "audit events stored");
            }
            Err(e) => {
                tracing::error!(error = %e, events = entries.len(), "audit batch failed; will be redelivered");
                for i in indices {
                    if let Some(o) = outcomes.get_mut(i) {
                        *o = Outcome::Retry(RETRY_DELAY);
                    }
                }
            }
        }
        outcomes
    }
}

/// The message's event, checked, and published on its own workspace's subject.
fn parse(msg: &Delivered) -> Result<AuditEntry, String> {
    let event = scifer_events::decode::<AuditEvent>(msg).map_err(|e| format!("undecodable: {e}"))?;
    let entry = AuditEntry::try_from(event).map_err(|e| e.to_string())?;
    let on_own_subject = msg
        .subject
        .as_str()
        .strip_suffix(entry.workspace_id().as_str())
        .is_some_and(|rest| rest.ends_with(".audit."));
    if !on_own_subject {
        return Err(format!(
            "event of workspace {} published on another workspace's subject",
            entry.workspace_id()
        ));
    }
    Ok(entry)
}
