//! The two JetStream consumers. Each fetched batch is applied in ONE transaction, committed, its
//! `InboxEvent`s published, and only then (when `handle_batch` returns) acknowledged by
//! `scifer_events::consume_batches`. `handle_batch` is public so tests drive the very same code path,
//! e.g. process a batch and not acknowledge it, as a crash between commit and ack would.
//!
//! A channel batch that disconnects a channel also deletes the channel's data in its transaction
//! (see [`crate::apply`]); beside the consumers, [`Engine::run_expiry`] deletes, once an hour, the
//! events parked for a disconnected account that no reconnect claimed within a day.

use std::{collections::HashMap, sync::Arc, time::Duration};

use scifer_events::{
    Batch, BatchOptions, Bus, Delivered, Outcome, Publisher, async_nats::jetstream::consumer::PullConsumer,
};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{ChannelEvent, MetaEvent},
    inbox::v1::ConversationStatus,
};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, sea_query::Expr,
};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    apply::{self, Applier, Emission},
    domain::WorkspaceId,
    store::entity::conversation,
    views,
};

/// Snoozed conversations reopened per transaction.
const WAKE_BATCH: u64 = 500;

/// How long a batch that failed on the database waits before redelivery.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// How long an event parked for a disconnected account waits for a reconnect before it is deleted.
/// A reconnect announces its channel within seconds of Meta's first webhook; a day is plenty.
pub const PARKED_AFTER_DISCONNECT_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often that expiry runs.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// What both consumers share: the store, the bus, and a lock that serialises their transactions
/// (SQLite has a single writer anyway, and it closes the window in which a channel could connect
/// while an event for it is being parked as pending in a concurrent transaction).
///
/// The same lock serialises every other write to rows the consumers write back whole from their
/// batch's copy (conversations and contacts): an RPC that changes a conversation's status or
/// assignee, or a contact's name, holds it for its short transaction ([`Engine::lock_writes`]).
/// A batch reads its rows after taking the lock, inside its transaction, and keeps nothing
/// between batches, so it always starts from what such a write committed and cannot overwrite it
/// with an older copy. (inbox runs as one replica; see k8s/overlays/production.)
pub struct Engine {
    db: DatabaseConnection,
    publisher: Publisher,
    bus: Bus,
    write_lock: tokio::sync::Mutex<()>,
    // Issue 5: the clock of the team's actions, and the wake-up of the template sync.
    clock: crate::clock::Clock,
    templates_due: tokio::sync::Notify,
}

impl Engine {
    pub fn new(db: DatabaseConnection, publisher: Publisher, bus: Bus) -> Arc<Self> {
        Arc::new(Self {
            db,
            publisher,
            bus,
            write_lock: tokio::sync::Mutex::new(()),
            clock: crate::clock::Clock::system(),
            templates_due: tokio::sync::Notify::new(),
        })
    }

    // ---- Issue 5: WhatsApp template sync, inbox analytics ----

    /// The time of the team's actions (status changes, sends); tests pin it.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// Wakes the template sync: a WhatsApp channel connected and its WABA's list is due.
    pub fn wake_template_sync(&self) {
        self.templates_due.notify_one();
    }

    /// Resolves when [`Engine::wake_template_sync`] was called (once per call or less).
    pub async fn templates_due(&self) {
        self.templates_due.notified().await;
    }

    /// Holds off both consumers' batches (and other such writers) until the guard is dropped.
    /// For writes to conversation and contact rows outside the consumers; keep it short.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// Publishes events of changes made outside the consumers, after their commit.
    pub async fn announce(&self, emissions: Vec<Emission>) {
        self.emit(emissions, &HashMap::new()).await;
    }

    /// Reopens the conversations whose snooze is due at `now_ms` (up to [`WAKE_BATCH`] per call),
    /// announces them, and returns how many.
    pub async fn wake_snoozed(&self, now_ms: i64) -> Result<usize, DbErr> {
        let woken = {
            let _writer = self.write_lock.lock().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let due = conversation::Entity::find()
                .filter(conversation::Column::Status.eq(ConversationStatus::Snoozed as i32))
                .filter(conversation::Column::SnoozedUntilMs.lte(now_ms))
                .order_by_asc(conversation::Column::SnoozedUntilMs)
                .limit(WAKE_BATCH)
                .all(&txn)
                .await?;
            if due.is_empty() {
                return Ok(0);
            }
            let updated_at = chrono::Utc::now().timestamp_millis();
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::Status,
                    Expr::value(ConversationStatus::Open as i32),
                )
                .col_expr(conversation::Column::SnoozedUntilMs, Expr::value(0i64))
                .col_expr(conversation::Column::UpdatedAtMs, Expr::value(updated_at))
                .filter(conversation::Column::Id.is_in(due.iter().map(|c| c.id.clone())))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            due.into_iter()
                .map(|c| conversation::Model {
                    status: ConversationStatus::Open as i32,
                    snoozed_until_ms: 0,
                    updated_at_ms: updated_at,
                    ..c
                })
                .collect::<Vec<_>>()
        };
        let count = woken.len();
        let mut by_workspace: HashMap<String, Vec<conversation::Model>> = HashMap::new();
        for c in woken {
            by_workspace.entry(c.workspace_id.clone()).or_default().push(c);
        }
        let mut emissions = Vec::with_capacity(count);
        for (ws, rows) in by_workspace {
            let Ok(workspace) = WorkspaceId::parse(&ws) else {
                continue;
            };
            for view in views::conversations(&self.db, &workspace, &rows).await? {
                emissions.push(views::conversation_updated(&ws, view));
            }
        }
        self.announce(emissions).await;
        tracing::info!(count, "snoozed conversations reopened");
        Ok(count)
    }

    /// Runs [`Engine::wake_snoozed`] every `every` until `shutdown`: a snooze ends within that
    /// period of its time.
    pub async fn run_snooze_wake(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            loop {
                match self.wake_snoozed(chrono::Utc::now().timestamp_millis()).await {
                    // A full batch may have left more due ones.
                    Ok(n) if n as u64 == WAKE_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "reopening snoozed conversations failed; will try again");
                        break;
                    }
                }
            }
        }
    }

    /// Deletes the events parked for disconnected accounts longer than
    /// [`PARKED_AFTER_DISCONNECT_TTL`]; returns how many.
    pub async fn expire_parked(&self) -> Result<u64, DbErr> {
        let ttl_ms = i64::try_from(PARKED_AFTER_DISCONNECT_TTL.as_millis()).unwrap_or(i64::MAX);
        let cutoff = chrono::Utc::now().timestamp_millis().saturating_sub(ttl_ms);
        let deleted = {
            let _writer = self.write_lock.lock().await;
            apply::expire_parked_after_disconnect(&self.db, cutoff).await?
        };
        if deleted > 0 {
            tracing::info!(deleted, "events parked for disconnected accounts expired");
        }
        Ok(deleted)
    }

    /// Runs [`Engine::expire_parked`] every [`EXPIRY_INTERVAL`] (first at start) until `shutdown`.
    pub async fn run_expiry(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(EXPIRY_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = self.expire_parked().await {
                tracing::warn!(error = %e, "expiring parked events failed; will try again");
            }
        }
    }

    /// Publishes after the commit, each event inside the span of the bus event that caused it (so
    /// the trace that began at Meta's webhook reaches the gateway). A failure is logged and not
    /// retried: the store is the truth, and readers can always re-read it (an outbox table would
    /// make emission durable; not done yet).
    async fn emit(&self, emissions: Vec<Emission>, spans: &HashMap<&str, tracing::Span>) {
        let mut acks = Vec::with_capacity(emissions.len());
        for e in emissions {
            let subject = self.bus.inbox_event(&e.workspace_id, e.subject_kind);
            let span = spans
                .get(e.cause.as_str())
                .cloned()
                .unwrap_or_else(tracing::Span::current);
            match self
                .publisher
                .send(subject, &e.msg_id, &e.event)
                .instrument(span)
                .await
            {
                Ok(ack) => acks.push((e.msg_id, ack)),
                Err(err) => tracing::warn!(msg_id = %e.msg_id, error = %err, "inbox event not published"),
            }
        }
        // Sent first, awaited after: the acknowledgements pipeline.
        for (msg_id, ack) in acks {
            if let Err(err) = ack.await {
                tracing::warn!(%msg_id, error = %err, "inbox event not acknowledged by the bus");
            }
        }
    }
}

/// The span of one event, continuing the trace its publisher started.
fn event_span(name: &'static str, msg: &Delivered) -> tracing::Span {
    let span = tracing::info_span!("inbox.event", consumer = name, subject = %msg.subject);
    let _ = span.set_parent(scifer_events::parent_context(msg.headers.as_ref()));
    span
}

fn retry_all(outcomes: &mut [Outcome], indices: &[usize]) {
    for &i in indices {
        if let Some(o) = outcomes.get_mut(i) {
            *o = Outcome::Retry(RETRY_DELAY);
        }
    }
}

/// Consumes `MetaEvent`s (durable `inbox-meta`).
#[derive(Clone)]
pub struct MetaConsumer {
    engine: Arc<Engine>,
}

impl MetaConsumer {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Applies a batch in one transaction; returns one outcome per message, in order.
    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let span = tracing::info_span!("inbox.meta_batch", size = msgs.len());
        self.handle(msgs).instrument(span).await
    }

    async fn handle(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Ack; msgs.len()];
        let mut events = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            match scifer_events::decode::<MetaEvent>(msg) {
                Ok(event) => events.push((i, event, event_span("inbox-meta", msg))),
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "undecodable meta event rejected");
                    outcomes[i] = Outcome::Reject;
                }
            }
        }
        if events.is_empty() {
            return outcomes;
        }
        let indices: Vec<usize> = events.iter().map(|(i, _, _)| *i).collect();
        let result = {
            let _writer = self.engine.write_lock.lock().await;
            self.apply(&events).await
        };
        match result {
            Ok(emissions) => {
                let spans = events
                    .iter()
                    .map(|(_, e, span)| (e.event_id.as_str(), span.clone()))
                    .collect();
                self.engine.emit(emissions, &spans).await
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "meta batch failed; will be redelivered");
                retry_all(&mut outcomes, &indices);
            }
        }
        outcomes
    }

    async fn apply(&self, events: &[(usize, MetaEvent, tracing::Span)]) -> Result<Vec<Emission>, DbErr> {
        let txn = self.engine.db.begin().await?;
        let mut applier = Applier::new(&txn);
        let batch: Vec<&MetaEvent> = events.iter().map(|(_, e, _)| e).collect();
        applier.prefetch(&batch).await?;
        for (_, event, span) in events {
            let disposition = applier.meta_event(event).instrument(span.clone()).await?;
            span.in_scope(|| tracing::debug!(event_id = %event.event_id, ?disposition, "meta event"));
        }
        let emissions = applier.finish().await?;
        txn.commit().await?;
        Ok(emissions)
    }

    /// Runs until `shutdown`; the batch in flight is finished and acknowledged first.
    pub async fn run(self, consumer: PullConsumer, options: BatchOptions, shutdown: CancellationToken) {
        scifer_events::consume_batches(consumer, options, shutdown, |batch| {
            let this = self.clone();
            async move { this.handle_batch(batch).await }
        })
        .await;
    }
}

/// Consumes `ChannelEvent`s (durable `inbox-channels`).
#[derive(Clone)]
pub struct ChannelConsumer {
    engine: Arc<Engine>,
}

impl ChannelConsumer {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let span = tracing::info_span!("inbox.channel_batch", size = msgs.len());
        self.handle(msgs).instrument(span).await
    }

    async fn handle(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Ack; msgs.len()];
        let mut events = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            let decoded = scifer_events::decode::<ChannelEvent>(msg);
            match decoded {
                Ok(event) => match WorkspaceId::parse(&event.workspace_id) {
                    Ok(ws) if !event.channel_id.is_empty() => {
                        events.push((i, event, ws, event_span("inbox-channels", msg)));
                    }
                    _ => {
                        tracing::error!(channel_id = %event.channel_id, "channel event without a valid workspace or channel id rejected");
                        outcomes[i] = Outcome::Reject;
                    }
                },
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "undecodable channel event rejected");
                    outcomes[i] = Outcome::Reject;
                }
            }
        }
        if events.is_empty() {
            return outcomes;
        }
        let indices: Vec<usize> = events.iter().map(|(i, ..)| *i).collect();
        let result = {
            let _writer = self.engine.write_lock.lock().await;
            self.apply(&events).await
        };
        match result {
            Ok(emissions) => {
                // Issue 5: a WhatsApp number connected: its WABA's templates are due.
                if events.iter().any(|(_, e, ..)| {
                    e.kind == scifer_proto::events::v1::ChannelKind::Whatsapp as i32
                        && e.state == scifer_proto::events::v1::ChannelState::Connected as i32
                }) {
                    self.engine.wake_template_sync();
                }
                let spans = events
                    .iter()
                    .map(|(_, e, _, span)| (e.event_id.as_str(), span.clone()))
                    .collect();
                self.engine.emit(emissions, &spans).await
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "channel batch failed; will be redelivered");
                retry_all(&mut outcomes, &indices);
            }
        }
        outcomes
    }

    async fn apply(
        &self,
        events: &[(usize, ChannelEvent, WorkspaceId, tracing::Span)],
    ) -> Result<Vec<Emission>, DbErr> {
        let txn = self.engine.db.begin().await?;
        let mut applier = Applier::new(&txn);
        for (_, event, ws, span) in events {
            let replayed = applier.channel_event(event, ws).instrument(span.clone()).await?;
            span.in_scope(|| {
                tracing::info!(channel_id = %event.channel_id, version = event.version, state = event.state, replayed, "channel event")
            });
        }
        let emissions = applier.finish().await?;
        txn.commit().await?;
        Ok(emissions)
    }

    pub async fn run(self, consumer: PullConsumer, options: BatchOptions, shutdown: CancellationToken) {
        scifer_events::consume_batches(consumer, options, shutdown, |batch| {
            let this = self.clone();
            async move { this.handle_batch(batch).await }
        })
        .await;
    }
}
