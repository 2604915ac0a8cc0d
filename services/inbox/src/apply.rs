//! Applying Meta and channel events to the store, inside a transaction the caller owns (one per
//! consumer batch). Nothing here publishes: the changes are collected in [`Effects`] and turned into
//! `InboxEvent`s that the caller emits after its commit.
//!
//! The rules run one event at a time, in order, against an in-memory copy of the rows the batch
//! touches ([`Rows`]); the writes are made set-based at the end ([`Applier::finish`]): one multi-row
//! insert per table for new rows and one multi-row upsert per table for changed ones. A batch that
//! called [`Applier::prefetch`] first reads those rows with a handful of `IN (...)` queries; any row
//! not prefetched is read on first use, so the rules never depend on what was prefetched.
//!
//! # Disconnected channels
//!
//! A `ChannelEvent` that disconnects a channel (a higher version in state DISCONNECTED) deletes,
//! in the transaction that records it, everything the inbox holds for that channel: its messages
//! (with their attachments, reactions and statuses, which are columns of the message row) and the
//! team's internal notes (messages too), its conversations with their labels and read markers,
//! its contacts (a contact belongs to one channel), its deferred updates and applied-event rows,
//! and the pending events of its account. Each is one `DELETE ... WHERE` statement, never a read
//! of the rows. The channel row stays as a tombstone (display name
//! cleared, version and disconnect time kept), so a late lower version cannot resurrect it.
//!
//! Afterwards an event of that account whose Meta time is at or before the disconnect belongs to
//! the deleted data and is dropped, whether it is a redelivery or arrives after a reconnect (which
//! comes as a new channel id). A later event is parked as usual: a reconnect picks it up, and
//! [`expire_parked_after_disconnect`] deletes it if none comes.

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use scifer_proto::{
    events::v1::{
        self as ev, ChannelEvent, ChannelKind, ChannelState, InboxEvent, MetaEvent, OutboundEcho,
        OutboundResult, WhatsAppStatusKind, inbox_event, meta_event::Kind,
    },
    inbox::v1::{ConversationStatus, MessageDirection},
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, Iterable, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TryInsertResult,
    sea_query::OnConflict,
};

use crate::{
    convert,
    domain::{self, DeliveryState, Reactions, WorkspaceId, assignment, reactions::BY_CUSTOMER},
    send::{OWN_METADATA_PREFIX, PLACEHOLDER_PREFIX, UNCONFIRMED},
    store::entity::{
        agent, applied_event, assignment_settings, channel, contact, conversation, conversation_label,
        deferred_update, media_file, message, pending_event, read_marker,
    },
};

/// Values per `IN (...)` list and per multi-row statement, well under SQLite's (32,766) and
/// PostgreSQL's (65,535) bind-parameter limits.
const MAX_BINDS: usize = 8_000;
const IN_CHUNK: usize = 500;

/// What became of one event, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Applied,
    /// Seen before (same event id, or a message already stored): nothing changed.
    Duplicate,
    /// No connected channel maps the account yet: parked until one does.
    Pending,
    /// Targets a message not stored yet: parked until it arrives.
    Deferred,
    /// Recorded only in the log (handover, feed change) or unusable (no contact id).
    Ignored,
    /// Meta's time is at or before the last disconnect of its account: it belongs to a channel
    /// whose data was deleted, so it is not stored (nor parked) again.
    Dropped,
}

/// Where an event goes.
enum Route {
    To(channel::Model),
    Park,
    Drop,
}

/// What the store says about one (kind, account_id).
#[derive(Debug, Clone, Default)]
struct Account {
    /// The channel its events attach to (connected or needing reauth; the newest if several).
    channel: Option<channel::Model>,
    /// The latest disconnect of any channel of the account (0 if none).
    disconnected_at_ms: i64,
}

/// Rows deleted for a disconnected channel, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Customer messages, our replies and the team's internal notes.
    pub messages: u64,
    pub labels: u64,
    pub conversations: u64,
    pub contacts: u64,
    pub deferred_updates: u64,
    pub applied_events: u64,
    pub pending_events: u64,
}

/// Rows touched in one transaction, in first-touched order, each with the event that last touched
/// it (used for deterministic `Nats-Msg-Id`s).
#[derive(Debug, Default)]
struct Touched {
    order: Vec<String>,
    cause: HashMap<String, String>,
}

impl Touched {
    fn touch(&mut self, id: &str, cause: &str) {
        if self.cause.insert(id.to_string(), cause.to_string()).is_none() {
            self.order.push(id.to_string());
        }
    }
}

#[derive(Debug, Default)]
pub struct Effects {
    created: Touched,
    updated: Touched,
    conversations: Touched,
}

/// An `InboxEvent` ready to publish: subject, message id and payload.
#[derive(Debug, Clone)]
pub struct Emission {
    pub subject_kind: &'static str,
    pub workspace_id: String,
    pub msg_id: String,
    pub event: InboxEvent,
    /// The bus event that caused it, so the publish continues that event's trace.
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowState {
    /// As read from the store.
    Stored,
    /// Created in this transaction: inserted by `finish`.
    New,
    /// Read from the store and changed since: updated by `finish`.
    Changed,
}

/// The batch's copy of one table: every row it read or created, by id.
struct Rows<M> {
    rows: Vec<(M, RowState)>,
    by_id: HashMap<String, usize>,
}

impl<M> Default for Rows<M> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            by_id: HashMap::new(),
        }
    }
}

impl<M> Rows<M> {
    /// Adds a row; a row already held (perhaps changed) wins over a fresh read of it.
    fn add(&mut self, id: &str, model: M, state: RowState) -> (usize, bool) {
        if let Some(&i) = self.by_id.get(id) {
            return (i, false);
        }
        self.rows.push((model, state));
        let i = self.rows.len() - 1;
        self.by_id.insert(id.to_string(), i);
        (i, true)
    }

    fn get(&self, i: usize) -> &M {
        &self.rows[i].0
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn replace(&mut self, i: usize, model: M) {
        let row = &mut self.rows[i];
        row.0 = model;
        if row.1 == RowState::Stored {
            row.1 = RowState::Changed;
        }
    }

    fn in_state(&self, state: RowState) -> impl Iterator<Item = &M> {
        self.rows.iter().filter(move |(_, s)| *s == state).map(|(m, _)| m)
    }
}

type Key = (String, String);

/// A workspace's auto-assignment as one batch sees it: read on first use, moved forward in memory
/// as the batch assigns, and its cursor written back with the batch.
#[derive(Debug)]
struct Assigner {
    cap: i32,
    cursor: String,
    moved: bool,
    /// The available agents, sorted by id.
    agents: Vec<String>,
    /// OPEN conversations per available agent, this batch's assignments included.
    open: HashMap<String, i64>,
}

pub struct Applier<'a, C: ConnectionTrait> {
    db: &'a C,
    now_ms: i64,
    effects: Effects,
    /// The channels of each (kind, account_id), looked up once per batch.
    channels: HashMap<(i32, String), Account>,
    /// Channel kinds by channel id, for the conversation events.
    channel_kinds: HashMap<String, i32>,
    /// Event ids whose `applied_events` row `prefetch` tried to insert, and those it did insert
    /// (each consumed by the first occurrence of the event in the batch).
    applied_prefetched: HashSet<String>,
    applied_fresh: HashSet<String>,
    contacts: Rows<contact::Model>,
    /// By (channel id, external id); `None` when the store has none.
    contact_keys: HashMap<Key, Option<usize>>,
    conversations: Rows<conversation::Model>,
    /// The open conversation by contact id; `None` when the store has none.
    open_conversations: HashMap<String, Option<usize>>,
    messages: Rows<message::Model>,
    /// By (channel id, external id); `None` when the store has none.
    message_keys: HashMap<Key, Option<usize>>,
    /// Outbound messages held, by contact id: what watermark receipts move forward.
    outbound: HashMap<String, Vec<usize>>,
    /// Contact id → the watermark up to which its outbound candidates have been read.
    outbound_read_upto: HashMap<String, i64>,
    /// Deferred updates by (channel id, target external id), and which targets were read.
    deferred: HashMap<Key, Vec<deferred_update::Model>>,
    deferred_read: HashSet<Key>,
    /// Deferred updates created in this transaction (not stored yet) and stored ones consumed.
    new_deferred: HashMap<String, deferred_update::Model>,
    consumed_deferred: Vec<String>,
    /// Events of rows already written by [`Applier::flush`], with the channel of each row.
    owed: Vec<(String, Emission)>,
    /// Auto-assignment by workspace id, read on first use; `None` when it is off.
    assigners: HashMap<String, Option<Assigner>>,
    /// The labels of the conversations this batch announces, read just before it announces them
    /// (labels are written by RPCs only).
    labels: HashMap<String, Vec<String>>,
    /// History, gaps and media: the attachment copies the new inbound messages need.
    media_jobs: Vec<media_file::Model>,
    /// Issue 5: the analytics facts of this transaction.
    analytics: crate::analytics::Recorder,
}

/// The Meta timestamp of an event, which orders pending replays and deferred updates.
pub fn event_time_ms(event: &MetaEvent) -> i64 {
    let at = match &event.kind {
        Some(Kind::Message(m)) => m.sent_at_ms,
        Some(Kind::Echo(e)) => e.sent_at_ms,
        Some(Kind::Delivery(d)) => d.watermark_ms,
        Some(Kind::Read(r)) => r.watermark_ms,
        Some(Kind::Reaction(r)) => r.at_ms,
        Some(Kind::Edit(e)) => e.at_ms,
        Some(Kind::Postback(p)) => p.at_ms,
        Some(Kind::WhatsappStatus(s)) => s.at_ms,
        Some(Kind::Handover(h)) => h.at_ms,
        Some(Kind::Change(c)) => c.created_at_ms,
        Some(Kind::OutboundResult(r)) => r.at_ms,
        Some(Kind::TemplateStatus(t)) => t.at_ms,
        None => 0,
    };
    if at > 0 {
        at
    } else {
        event
            .received_at
            .as_ref()
            .map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
            .unwrap_or(0)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The external id a message-creating event stores its message under (`None` for other kinds).
fn stored_external_id(event: &MetaEvent) -> Option<String> {
    match &event.kind {
        Some(Kind::Message(m)) => Some(m.external_id.clone()),
        Some(Kind::Echo(e)) => Some(e.external_id.clone()),
        // Postbacks from before v11.0 carry no mid; the event id is stable for them.
        Some(Kind::Postback(p)) if p.external_id.is_empty() => Some(format!("postback:{}", event.event_id)),
        Some(Kind::Postback(p)) => Some(p.external_id.clone()),
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

/// The stored messages an event reads: its own (to detect a resend) or the ones it updates.
fn message_refs(event: &MetaEvent) -> Vec<String> {
    let mut refs: Vec<String> = stored_external_id(event).into_iter().collect();
    match &event.kind {
        Some(Kind::Delivery(d)) => refs.extend(d.external_ids.iter().cloned()),
        Some(Kind::Read(r)) if r.watermark_ms <= 0 => refs.push(r.external_id.clone()),
        Some(Kind::Reaction(r)) => refs.push(r.target_external_id.clone()),
        Some(Kind::Edit(e)) => refs.push(e.external_id.clone()),
        Some(Kind::WhatsappStatus(s)) => refs.push(s.external_id.clone()),
        _ => {}
    }
    refs.retain(|r| !r.is_empty());
    refs
}

/// The customer an event names, and the watermark it raises (if it is a thread-wide receipt).
fn contact_ref(event: &MetaEvent) -> Option<(&str, Option<i64>)> {
    let (id, watermark) = match &event.kind {
        Some(Kind::Message(m)) => (m.contact_id.as_str(), None),
        Some(Kind::Echo(e)) => (e.contact_id.as_str(), None),
        Some(Kind::Postback(p)) => (p.contact_id.as_str(), None),
        Some(Kind::Delivery(d)) => (d.contact_id.as_str(), Some(d.watermark_ms)),
        Some(Kind::Read(r)) if r.watermark_ms > 0 => (r.contact_id.as_str(), Some(r.watermark_ms)),
        _ => return None,
    };
    (!id.is_empty()).then_some((id, watermark.filter(|w| *w > 0)))
}

/// Delivery states a watermark receipt can still move forward.
fn receipt_candidate_states() -> [i32; 4] {
    [
        DeliveryState::Pending.to_i32(),
        DeliveryState::Sent.to_i32(),
        DeliveryState::Delivered.to_i32(),
        DeliveryState::Failed.to_i32(),
    ]
}

/// A message about to be stored.
struct NewMessage<'e> {
    external_id: String,
    contact_external_id: &'e str,
    contact_name: &'e str,
    direction: MessageDirection,
    text: String,
    attachments: &'e [ev::Attachment],
    sent_at_ms: i64,
    is_echo: bool,
    reply_to: String,
    payload: String,
    /// History, gaps and media: read back from the Conversations API, not a webhook.
    reconciled: bool,
}

impl<'a, C: ConnectionTrait> Applier<'a, C> {
    pub fn new(db: &'a C) -> Self {
        Self {
            db,
            now_ms: now_ms(),
            effects: Effects::default(),
            channels: HashMap::new(),
            channel_kinds: HashMap::new(),
            applied_prefetched: HashSet::new(),
            applied_fresh: HashSet::new(),
            contacts: Rows::default(),
            contact_keys: HashMap::new(),
            conversations: Rows::default(),
            open_conversations: HashMap::new(),
            messages: Rows::default(),
            message_keys: HashMap::new(),
            outbound: HashMap::new(),
            outbound_read_upto: HashMap::new(),
            deferred: HashMap::new(),
            deferred_read: HashSet::new(),
            new_deferred: HashMap::new(),
            consumed_deferred: Vec::new(),
            owed: Vec::new(),
            assigners: HashMap::new(),
            labels: HashMap::new(),
            media_jobs: Vec::new(),
            analytics: crate::analytics::Recorder::default(),
        }
    }

    /// Reads, set-based, what the events of a batch will read one by one: records their event ids
    /// in `applied_events` (one multi-row insert, which also says which ids are new), then loads the
    /// messages, contacts, open conversations, deferred updates and receipt candidates they name.
    /// Call it once before applying the same events with [`Applier::meta_event`], in order.
    pub async fn prefetch(&mut self, events: &[&MetaEvent]) -> Result<(), DbErr> {
        let mut routed = Vec::with_capacity(events.len());
        for &event in events {
            match &event.kind {
                None | Some(Kind::Handover(_) | Kind::Change(_) | Kind::TemplateStatus(_)) => continue,
                Some(_) => {}
            }
            if let Route::To(ch) = self.route(event).await? {
                routed.push((event, ch.id));
            }
        }
        // The first occurrence of an event id names the channel its row records.
        let mut channel_of: HashMap<String, String> = HashMap::with_capacity(routed.len());
        for (event, channel_id) in &routed {
            channel_of
                .entry(event.event_id.clone())
                .or_insert_with(|| channel_id.clone());
        }
        let ids: Vec<(String, String)> = channel_of.into_iter().collect();
        for chunk in ids.chunks(MAX_BINDS / 3) {
            let rows = chunk.iter().map(|(id, channel_id)| applied_event::ActiveModel {
                event_id: Set(id.clone()),
                applied_at_ms: Set(self.now_ms),
                channel_id: Set(channel_id.clone()),
            });
            let mut insert = applied_event::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(applied_event::Column::EventId)
                        .do_nothing()
                        .to_owned(),
                )
                .into_query();
            // RETURNING names exactly the rows this statement inserted: the ids new to the store.
            insert.returning_col(applied_event::Column::EventId);
            for row in self.db.query_all(&insert).await? {
                self.applied_fresh.insert(row.try_get::<String>("", "event_id")?);
            }
        }
        self.applied_prefetched.extend(ids.into_iter().map(|(id, _)| id));

        // Only new events read anything; duplicates stop at their event id.
        let mut message_refs_by_channel: HashMap<String, HashSet<String>> = HashMap::new();
        let mut contact_refs_by_channel: HashMap<String, HashSet<String>> = HashMap::new();
        let mut max_watermark = 0;
        for (event, channel_id) in &routed {
            if !self.applied_fresh.contains(&event.event_id) {
                continue;
            }
            message_refs_by_channel
                .entry(channel_id.clone())
                .or_default()
                .extend(message_refs(event));
            if let Some((contact, watermark)) = contact_ref(event) {
                contact_refs_by_channel
                    .entry(channel_id.clone())
                    .or_default()
                    .insert(contact.to_string());
                max_watermark = max_watermark.max(watermark.unwrap_or(0));
            }
        }

        for (channel_id, refs) in &message_refs_by_channel {
            let refs: Vec<String> = refs.iter().cloned().collect();
            for chunk in refs.chunks(IN_CHUNK) {
                let found = message::Entity::find()
                    .filter(message::Column::ChannelId.eq(channel_id.as_str()))
                    .filter(message::Column::ExternalId.is_in(chunk.iter().cloned()))
                    .all(self.db)
                    .await?;
                for m in found {
                    self.hold_message(m);
                }
                for r in chunk {
                    self.message_keys
                        .entry((channel_id.clone(), r.clone()))
                        .or_insert(None);
                }
            }
        }
        // Deferred updates waiting for the messages the batch may create.
        for (event, channel_id) in &routed {
            if !self.applied_fresh.contains(&event.event_id) {
                continue;
            }
            if let Some(external_id) = stored_external_id(event) {
                let key = (channel_id.clone(), external_id);
                if matches!(self.message_keys.get(&key), Some(None)) {
                    self.deferred_read.insert(key);
                }
            }
        }
        let mut deferred_targets: HashMap<&str, Vec<&str>> = HashMap::new();
        for (channel_id, target) in &self.deferred_read {
            deferred_targets.entry(channel_id).or_default().push(target);
        }
        let mut deferred_found = Vec::new();
        for (channel_id, targets) in deferred_targets {
            for chunk in targets.chunks(IN_CHUNK) {
                deferred_found.extend(
                    deferred_update::Entity::find()
                        .filter(deferred_update::Column::ChannelId.eq(channel_id))
                        .filter(deferred_update::Column::TargetExternalId.is_in(chunk.iter().copied()))
                        .all(self.db)
                        .await?,
                );
            }
        }
        for row in deferred_found {
            self.deferred
                .entry((row.channel_id.clone(), row.target_external_id.clone()))
                .or_default()
                .push(row);
        }

        let mut stored_contacts = Vec::new();
        for (channel_id, refs) in &contact_refs_by_channel {
            let refs: Vec<String> = refs.iter().cloned().collect();
            for chunk in refs.chunks(IN_CHUNK) {
                let found = contact::Entity::find()
                    .filter(contact::Column::ChannelId.eq(channel_id.as_str()))
                    .filter(contact::Column::ExternalId.is_in(chunk.iter().cloned()))
                    .all(self.db)
                    .await?;
                for c in found {
                    stored_contacts.push(c.id.clone());
                    self.hold_contact(c);
                }
                for r in chunk {
                    self.contact_keys
                        .entry((channel_id.clone(), r.clone()))
                        .or_insert(None);
                }
            }
        }
        for chunk in stored_contacts.chunks(IN_CHUNK) {
            let found = conversation::Entity::find()
                .filter(conversation::Column::OpenKey.is_in(chunk.iter().cloned()))
                .all(self.db)
                .await?;
            for c in found {
                self.hold_open_conversation(c);
            }
            for id in chunk {
                self.open_conversations.entry(id.clone()).or_insert(None);
            }
        }
        if max_watermark > 0 {
            // Below a contact's lower watermark every outbound message is already delivered or read
            // (receipts move them, and later echoes start there), so only newer ones are read.
            let floors: Vec<(String, i64)> = stored_contacts
                .iter()
                .filter_map(|id| self.contacts.index(id).map(|i| self.contacts.get(i)))
                .map(|c| (c.id.clone(), c.delivered_watermark_ms.min(c.read_watermark_ms)))
                .collect();
            for chunk in floors.chunks(IN_CHUNK / 3) {
                let mut newer = Condition::any();
                for (id, floor) in chunk {
                    newer = newer.add(
                        Condition::all()
                            .add(message::Column::ContactId.eq(id.as_str()))
                            .add(message::Column::SentAtMs.gt(*floor)),
                    );
                }
                let found = message::Entity::find()
                    .filter(newer)
                    .filter(message::Column::Direction.eq(MessageDirection::Outbound as i32))
                    .filter(message::Column::SentAtMs.lte(max_watermark))
                    .filter(message::Column::Status.is_in(receipt_candidate_states()))
                    .all(self.db)
                    .await?;
                for m in found {
                    self.hold_message(m);
                }
                for (id, _) in chunk {
                    self.outbound_read_upto.insert(id.clone(), max_watermark);
                }
            }
        }
        Ok(())
    }

    /// Applies one Meta event (idempotently), or parks it.
    pub async fn meta_event(&mut self, event: &MetaEvent) -> Result<Disposition, DbErr> {
        let Some(kind) = &event.kind else {
            tracing::warn!(event_id = %event.event_id, "meta event without a kind; ignored");
            return Ok(Disposition::Ignored);
        };
        match kind {
            // Conversation routing and feed moderation come in later issues; until then these are
            // acknowledged with a log line only (they stay replayable from the META stream).
            // Applied by automation's own consumer of the handover subjects
            // (`crate::automation::routing`), outside these batches.
            Kind::Handover(h) => {
                tracing::debug!(event_id = %event.event_id, account_id = %event.account_id,
                    handover_kind = h.kind, new_owner = %h.new_owner_app_id, "handover event left to inbox-routing");
                return Ok(Disposition::Ignored);
            }
            Kind::Change(c) => {
                tracing::info!(event_id = %event.event_id, account_id = %event.account_id,
                    field = %c.field, item = %c.item, verb = %c.verb, "feed change not recorded yet");
                return Ok(Disposition::Ignored);
            }
            // Issue 5: a WABA's template status; the WABA, not a channel, owns it (no routing, no
            // parking: a WABA not connected yet gets the current status from its first sync).
            Kind::TemplateStatus(t) => {
                let applied =
                    crate::templates::apply_status(self.db, t, event_time_ms(event), self.now_ms).await?;
                return Ok(if applied {
                    Disposition::Applied
                } else {
                    Disposition::Duplicate
                });
            }
            _ => {}
        }
        let channel = match self.route(event).await? {
            Route::To(channel) => channel,
            Route::Park => return self.park_pending(event).await,
            Route::Drop => {
                tracing::debug!(event_id = %event.event_id, account_id = %event.account_id,
                    "event from before its account's disconnect dropped");
                return Ok(Disposition::Dropped);
            }
        };
        if !self.mark_applied(&event.event_id, &channel.id).await? {
            return Ok(Disposition::Duplicate);
        }
        self.apply(&channel, event, kind).await
    }

    /// Upserts a channel (highest version wins); when it is connected, replays the events that
    /// waited for it; when it is disconnected, deletes its data (see the [module docs](self)).
    /// Returns the number of pending events replayed.
    pub async fn channel_event(
        &mut self,
        event: &ChannelEvent,
        workspace: &WorkspaceId,
    ) -> Result<usize, DbErr> {
        let existing = channel::Entity::find_by_id(event.channel_id.clone())
            .one(self.db)
            .await?;
        let disconnected = event.state == ChannelState::Disconnected as i32;
        let previous_state = existing.as_ref().map(|c| c.state);
        // The vault's time of the disconnect; ours when it sent none.
        let disconnected_at_ms = event
            .at
            .as_ref()
            .map(|t| t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000))
            .filter(|ms| *ms > 0)
            .unwrap_or(self.now_ms);
        let row = channel::ActiveModel {
            id: Set(event.channel_id.clone()),
            workspace_id: Set(workspace.as_str().to_string()),
            kind: Set(event.kind),
            // A tombstone keeps only a one-way key of the account (enough to refuse its late
            // events), not the account id itself.
            account_id: Set(if disconnected {
                tombstone_key(event.kind, &event.account_id)
            } else {
                event.account_id.clone()
            }),
            // The Page's or number's name is the connected account's data too.
            display_name: Set(if disconnected {
                String::new()
            } else {
                event.display_name.clone()
            }),
            state: Set(event.state),
            version: Set(event.version),
            updated_at_ms: Set(self.now_ms),
            // A reconnect of the same channel id keeps the earlier disconnect time.
            disconnected_at_ms: match (disconnected, &existing) {
                (true, _) => Set(disconnected_at_ms),
                (false, Some(_)) => NotSet,
                (false, None) => Set(0),
            },
        };
        match existing {
            Some(current) if current.version >= event.version => {
                tracing::debug!(channel_id = %event.channel_id, version = event.version,
                    stored = current.version, "stale channel event ignored");
                return Ok(0);
            }
            Some(_) => {
                row.update(self.db).await?;
            }
            None => {
                channel::Entity::insert(row)
                    .exec_without_returning(self.db)
                    .await?;
            }
        }
        self.channels.clear();
        // History, gaps and media: a backfill for a new connection; sync state and media go with
        // a disconnect.
        crate::history::on_channel_event(self.db, workspace.as_str(), event, previous_state, self.now_ms)
            .await?;
        if disconnected {
            let erased = self
                .erase_channel(&event.channel_id, event.kind, &event.account_id)
                .await?;
            let media =
                crate::media::forget_channel(self.db, workspace.as_str(), &event.channel_id, self.now_ms)
                    .await?;
            tracing::info!(channel_id = %event.channel_id, media, "channel disconnected: its media is being deleted");
            tracing::info!(channel_id = %event.channel_id, version = event.version,
                messages = erased.messages, labels = erased.labels, conversations = erased.conversations,
                contacts = erased.contacts, deferred_updates = erased.deferred_updates,
                applied_events = erased.applied_events, pending_events = erased.pending_events,
                "channel disconnected: its data was deleted");
            return Ok(0);
        }
        if event.state == ChannelState::Unspecified as i32 {
            return Ok(0);
        }
        // Issue 5: a WhatsApp number's templates are its WABA's.
        if event.kind == ChannelKind::Whatsapp as i32
            && event.state == ChannelState::Connected as i32
            && !event.parent_account_id.is_empty()
        {
            crate::templates::remember_waba(
                self.db,
                &event.channel_id,
                workspace.as_str(),
                &event.parent_account_id,
            )
            .await?;
        }
        self.replay_pending(event.kind, &event.account_id).await
    }

    /// Deletes every row of channel `channel_id`, set-based, and the pending events of its account.
    /// What this transaction created so far is written first (so the deletes see it) and its
    /// events for this channel are not emitted.
    async fn erase_channel(
        &mut self,
        channel_id: &str,
        kind: i32,
        account_id: &str,
    ) -> Result<Erased, DbErr> {
        self.flush().await?;
        self.owed.retain(|(owner, _)| owner != channel_id);
        let db = self.db;
        let messages = message::Entity::delete_many()
            .filter(message::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        read_marker::Entity::delete_many()
            .filter(read_marker::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?;
        let labels = conversation_label::Entity::delete_many()
            .filter(conversation_label::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        let conversations = conversation::Entity::delete_many()
            .filter(conversation::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        let contacts = contact::Entity::delete_many()
            .filter(contact::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        let deferred_updates = deferred_update::Entity::delete_many()
            .filter(deferred_update::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        // Automation and handoff (issue 5): the channel's per-conversation automation rows.
        crate::automation::state::erase_channel(db, channel_id).await?;
        let applied_events = applied_event::Entity::delete_many()
            .filter(applied_event::Column::ChannelId.eq(channel_id))
            .exec(db)
            .await?
            .rows_affected;
        // Parked events carry no channel; while the channel was attachable none of its account's
        // could have been parked, so these are the account's and go with it.
        let pending_events = pending_event::Entity::delete_many()
            .filter(pending_event::Column::ChannelKind.eq(kind))
            .filter(pending_event::Column::AccountId.eq(account_id))
            .exec(db)
            .await?
            .rows_affected;
        // Issue 5: the channel's WABA link (and its WABA's templates with its last channel) and
        // its analytics.
        crate::templates::forget_channel(db, channel_id).await?;
        crate::analytics::erase_channel(db, channel_id).await?;
        Ok(Erased {
            messages,
            labels,
            conversations,
            contacts,
            deferred_updates,
            applied_events,
            pending_events,
        })
    }

    async fn replay_pending(&mut self, kind: i32, account_id: &str) -> Result<usize, DbErr> {
        let pending = pending_event::Entity::find()
            .filter(pending_event::Column::ChannelKind.eq(kind))
            .filter(pending_event::Column::AccountId.eq(account_id))
            .order_by_asc(pending_event::Column::AtMs)
            .order_by_asc(pending_event::Column::EventId)
            .all(self.db)
            .await?;
        let count = pending.len();
        for row in pending {
            match MetaEvent::decode(row.payload.as_slice()) {
                Ok(event) => {
                    // The same path as a live event: a duplicate or an already-applied one is a no-op.
                    let disposition = self.meta_event(&event).await?;
                    tracing::debug!(event_id = %row.event_id, ?disposition, "pending event replayed");
                }
                Err(e) => {
                    tracing::error!(event_id = %row.event_id, error = %e, "stored pending event does not decode; dropped")
                }
            }
            pending_event::Entity::delete_by_id(row.event_id)
                .exec(self.db)
                .await?;
        }
        if count > 0 {
            tracing::info!(
                kind,
                account_id,
                count,
                "replayed events that waited for their channel"
            );
        }
        Ok(count)
    }

    async fn route(&mut self, event: &MetaEvent) -> Result<Route, DbErr> {
        let account = self.account(event.channel_kind, &event.account_id).await?;
        if account.disconnected_at_ms > 0 && event_time_ms(event) <= account.disconnected_at_ms {
            return Ok(Route::Drop);
        }
        Ok(match account.channel {
            Some(ch) => Route::To(ch),
            None => Route::Park,
        })
    }

    async fn account(&mut self, kind: i32, account_id: &str) -> Result<Account, DbErr> {
        let key = (kind, account_id.to_string());
        if let Some(cached) = self.channels.get(&key) {
            return Ok(cached.clone());
        }
        // Every channel the account ever had: one per connection, so a handful at most.
        let rows = channel::Entity::find()
            .filter(channel::Column::Kind.eq(kind))
            .filter(
                channel::Column::AccountId.is_in([account_id.to_string(), tombstone_key(kind, account_id)]),
            )
            .order_by_desc(channel::Column::UpdatedAtMs)
            .all(self.db)
            .await?;
        let disconnected_at_ms = rows.iter().map(|c| c.disconnected_at_ms).max().unwrap_or(0);
        // NEEDS_REAUTH still receives webhooks and still belongs to its workspace, so it stays
        // attachable; only DISCONNECTED (and unknown) channels stop taking events.
        let channel = rows.into_iter().find(|c| {
            c.state == ChannelState::Connected as i32 || c.state == ChannelState::NeedsReauth as i32
        });
        if let Some(ch) = &channel {
            self.channel_kinds.insert(ch.id.clone(), ch.kind);
        }
        let account = Account {
            channel,
            disconnected_at_ms,
        };
        self.channels.insert(key, account.clone());
        Ok(account)
    }

    async fn park_pending(&mut self, event: &MetaEvent) -> Result<Disposition, DbErr> {
        // An event applied while the channel was connected and redelivered after it disconnected
        // must not come back later as new.
        if applied_event::Entity::find_by_id(event.event_id.clone())
            .one(self.db)
            .await?
            .is_some()
        {
            return Ok(Disposition::Duplicate);
        }
        let row = pending_event::ActiveModel {
            event_id: Set(event.event_id.clone()),
            channel_kind: Set(event.channel_kind),
            account_id: Set(event.account_id.clone()),
            at_ms: Set(event_time_ms(event)),
            payload: Set(event.encode_to_vec()),
            stored_at_ms: Set(self.now_ms),
        };
        pending_event::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(self.db)
            .await?;
        Ok(Disposition::Pending)
    }

    /// Records the event id; false when it was already there.
    async fn mark_applied(&mut self, event_id: &str, channel_id: &str) -> Result<bool, DbErr> {
        if self.applied_prefetched.contains(event_id) {
            // The first occurrence in the batch takes the fresh mark; a second one is a duplicate.
            return Ok(self.applied_fresh.remove(event_id));
        }
        let row = applied_event::ActiveModel {
            event_id: Set(event_id.to_string()),
            applied_at_ms: Set(self.now_ms),
            channel_id: Set(channel_id.to_string()),
        };
        let result = applied_event::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(self.db)
            .await?;
        Ok(inserted(result))
    }

    async fn apply(
        &mut self,
        ch: &channel::Model,
        event: &MetaEvent,
        kind: &Kind,
    ) -> Result<Disposition, DbErr> {
        let cause = event.event_id.as_str();
        match kind {
            Kind::Message(m) => {
                if m.is_deleted {
                    // Instagram "unsend": the proto has no deleted flag yet; keep what we stored.
                    tracing::info!(event_id = cause, external_id = %m.external_id, "message deleted by the customer; kept");
                }
                // Automation and handoff (issue 5): a standby message is stored but never answered.
                if event.standby {
                    crate::automation::state::mark_standby(self.db, &ch.id, &m.external_id, m.sent_at_ms)
                        .await?;
                }
                let new = NewMessage {
                    external_id: m.external_id.clone(),
                    contact_external_id: &m.contact_id,
                    contact_name: &m.contact_name,
                    direction: MessageDirection::Inbound,
                    text: m.text.clone(),
                    attachments: &m.attachments,
                    sent_at_ms: m.sent_at_ms,
                    is_echo: false,
                    reply_to: m.reply_to_external_id.clone(),
                    payload: m.quick_reply_payload.clone(),
                    reconciled: event.reconciled,
                };
                self.store_message(ch, new, cause).await
            }
            Kind::Echo(e) if e.metadata.starts_with(OWN_METADATA_PREFIX) => {
                let own_id = &e.metadata[OWN_METADATA_PREFIX.len()..];
                match self.own_message(ch, own_id).await? {
                    Some(i) => self.own_echo(i, &e.external_id, cause).await,
                    // Not ours any more (deleted with its conversation): keep it as any echo.
                    None => self.store_echo(ch, e, cause, event.reconciled).await,
                }
            }
            Kind::Echo(e) => self.store_echo(ch, e, cause, event.reconciled).await,
            Kind::OutboundResult(r) => self.outbound_result(ch, r, cause).await,
            Kind::Postback(p) => {
                let new = NewMessage {
                    external_id: stored_external_id(event).unwrap_or_default(),
                    contact_external_id: &p.contact_id,
                    contact_name: "",
                    direction: MessageDirection::Inbound,
                    text: p.title.clone(),
                    attachments: &[],
                    sent_at_ms: p.at_ms,
                    is_echo: false,
                    reply_to: String::new(),
                    payload: p.payload.clone(),
                    reconciled: false,
                };
                self.store_message(ch, new, cause).await
            }
            Kind::Delivery(d) => {
                let Some(contact) = self.contact(ch, &d.contact_id, "").await? else {
                    return Ok(Disposition::Ignored);
                };
                if d.watermark_ms > 0 {
                    self.raise_watermark(contact, DeliveryState::Delivered, d.watermark_ms, cause)
                        .await?;
                }
                // Listed mids newer than the watermark (or without one) are delivered too; a mid not
                // stored yet is covered when its echo arrives under the stored watermark.
                for mid in &d.external_ids {
                    let Some(i) = self.find_message(&ch.id, mid).await? else {
                        continue;
                    };
                    let status = DeliveryState::from_i32(self.messages.get(i).status);
                    if let Some(next) = status.advance(DeliveryState::Delivered) {
                        self.save_message_status(i, next, cause);
                    }
                }
                Ok(Disposition::Applied)
            }
            Kind::Read(r) if r.watermark_ms > 0 => {
                let Some(contact) = self.contact(ch, &r.contact_id, "").await? else {
                    return Ok(Disposition::Ignored);
                };
                self.raise_watermark(contact, DeliveryState::Read, r.watermark_ms, cause)
                    .await?;
                Ok(Disposition::Applied)
            }
            Kind::Read(r) => self.update_or_defer(ch, &r.external_id, event).await,
            Kind::Reaction(r) => self.update_or_defer(ch, &r.target_external_id, event).await,
            Kind::Edit(e) => self.update_or_defer(ch, &e.external_id, event).await,
            Kind::WhatsappStatus(s) => self.update_or_defer(ch, &s.external_id, event).await,
            Kind::Handover(_) | Kind::Change(_) | Kind::TemplateStatus(_) => Ok(Disposition::Ignored),
        }
    }

    async fn store_echo(
        &mut self,
        ch: &channel::Model,
        e: &OutboundEcho,
        cause: &str,
        reconciled: bool,
    ) -> Result<Disposition, DbErr> {
        let new = NewMessage {
            external_id: e.external_id.clone(),
            contact_external_id: &e.contact_id,
            contact_name: "",
            direction: MessageDirection::Outbound,
            text: e.text.clone(),
            attachments: &e.attachments,
            sent_at_ms: e.sent_at_ms,
            is_echo: true,
            reply_to: String::new(),
            payload: String::new(),
            reconciled,
        };
        self.store_message(ch, new, cause).await
    }

    /// A message inbox sent itself (by its id), held for this batch.
    async fn own_message(&mut self, ch: &channel::Model, id: &str) -> Result<Option<usize>, DbErr> {
        if let Some(i) = self.messages.index(id) {
            return Ok(Some(i));
        }
        Ok(message::Entity::find_by_id(id.to_string())
            .filter(message::Column::ChannelId.eq(ch.id.as_str()))
            .one(self.db)
            .await?
            .map(|m| self.hold_message(m)))
    }

    /// Gives message `i` Meta's id (if it still has our placeholder), so receipts and statuses
    /// naming that id find it, and applies the ones that arrived before.
    async fn adopt_external_id(&mut self, i: usize, external_id: &str, cause: &str) -> Result<(), DbErr> {
        let current = self.messages.get(i).clone();
        if external_id.is_empty() || current.external_id == external_id {
            return Ok(());
        }
        if !current.external_id.starts_with(PLACEHOLDER_PREFIX) {
            tracing::warn!(message_id = %current.id, stored = %current.external_id, answered = external_id,
                "Meta answered a second id for a message; the first is kept");
            return Ok(());
        }
        self.message_keys
            .remove(&(current.channel_id.clone(), current.external_id.clone()));
        self.message_keys
            .insert((current.channel_id.clone(), external_id.to_string()), Some(i));
        let mut next = current;
        next.external_id = external_id.to_string();
        next.updated_at_ms = self.now_ms;
        let id = next.id.clone();
        self.messages.replace(i, next);
        self.effects.updated.touch(&id, cause);
        self.apply_deferred(i).await
    }

    /// The echo of a message we sent (it carries our metadata): the message itself, not a new one.
    async fn own_echo(&mut self, i: usize, external_id: &str, cause: &str) -> Result<Disposition, DbErr> {
        self.adopt_external_id(i, external_id, cause).await?;
        let mut next = self.messages.get(i).clone();
        // The echo proves Meta accepted it, even when the answer to our call was lost.
        let status = DeliveryState::from_i32(next.status);
        let confirmed = match status {
            DeliveryState::Failed if next.failure_reason == UNCONFIRMED => Some(DeliveryState::Sent),
            other => other.advance(DeliveryState::Sent),
        };
        if let Some(state) = confirmed {
            next.status = state.to_i32();
            if state == DeliveryState::Sent {
                next.error_code = 0;
                next.error_message.clear();
                next.failure_reason.clear();
                next.retryable = false;
            }
            next.updated_at_ms = self.now_ms;
            let id = next.id.clone();
            self.messages.replace(i, next);
            self.effects.updated.touch(&id, cause);
        }
        // Issue 5: the echo shows Meta took it (counted once, whatever confirms it first).
        self.record_out(i).await?;
        Ok(Disposition::Applied)
    }

    // ---- Issue 5: analytics facts of outbound messages ----

    /// A conversation by id, held for this batch.
    async fn conversation_of(&mut self, conversation_id: &str) -> Result<Option<usize>, DbErr> {
        if let Some(c) = self.conversations.index(conversation_id) {
            return Ok(Some(c));
        }
        Ok(conversation::Entity::find_by_id(conversation_id.to_string())
            .one(self.db)
            .await?
            .map(|c| self.conversations.add(conversation_id, c, RowState::Stored).0))
    }

    /// Counts message `i` out if Meta has taken it.
    async fn record_out(&mut self, i: usize) -> Result<(), DbErr> {
        let m = self.messages.get(i).clone();
        if matches!(
            DeliveryState::from_i32(m.status),
            DeliveryState::Pending | DeliveryState::Failed | DeliveryState::Unspecified
        ) {
            return Ok(());
        }
        if let Some(conv) = self.conversation_of(&m.conversation_id).await? {
            let c = self.conversations.get(conv).clone();
            self.analytics.message_out(self.db, &c, &m).await?;
        }
        Ok(())
    }

    /// Counts a failed attempt of message `i`.
    async fn record_failed(
        &mut self,
        i: usize,
        attempt: &str,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), DbErr> {
        let m = self.messages.get(i).clone();
        if let Some(conv) = self.conversation_of(&m.conversation_id).await? {
            let c = self.conversations.get(conv).clone();
            self.analytics.failed(&c, &m, attempt, reason, at_ms);
        }
        Ok(())
    }

    /// Meta's answer to a send of ours: the message gets its id and SENT, or FAILED with the
    /// reason; the first answer also counts the message in its conversation.
    async fn outbound_result(
        &mut self,
        ch: &channel::Model,
        r: &OutboundResult,
        cause: &str,
    ) -> Result<Disposition, DbErr> {
        let Some(i) = self.own_message(ch, &r.message_id).await? else {
            tracing::info!(message_id = %r.message_id, "result for a message no longer stored; ignored");
            return Ok(Disposition::Ignored);
        };
        if r.accepted {
            self.adopt_external_id(i, &r.external_id, cause).await?;
        }
        let mut next = self.messages.get(i).clone();
        let status = DeliveryState::from_i32(next.status);
        let mut failed_now = false;
        if r.accepted {
            if let Some(state) = status.advance(DeliveryState::Sent) {
                next.status = state.to_i32();
            }
        } else if next.external_id.starts_with(PLACEHOLDER_PREFIX) && status == DeliveryState::Pending {
            failed_now = true;
            // Only a message Meta never took can fail by our call's answer.
            next.status = DeliveryState::Failed.to_i32();
            next.error_code = i32::try_from(r.error_code).unwrap_or(i32::MAX);
            next.error_message = r.error_message.clone();
            next.failure_reason = r.failure_reason.clone();
            next.retryable = r.retryable;
        }
        if next != *self.messages.get(i) {
            next.updated_at_ms = self.now_ms;
            let id = next.id.clone();
            self.messages.replace(i, next);
            self.effects.updated.touch(&id, cause);
        }
        if r.attempt <= 1 {
            self.count_in_conversation(i, cause).await?;
        }
        // Issue 5: analytics facts.
        if r.accepted {
            self.record_out(i).await?;
        } else if failed_now {
            self.record_failed(i, &r.attempt.to_string(), &r.failure_reason, r.at_ms)
                .await?;
        }
        Ok(Disposition::Applied)
    }

    /// Adds message `i` to its conversation's count, latest activity and preview.
    async fn count_in_conversation(&mut self, i: usize, cause: &str) -> Result<(), DbErr> {
        let m = self.messages.get(i).clone();
        let conv = match self.conversations.index(&m.conversation_id) {
            Some(c) => c,
            None => match conversation::Entity::find_by_id(m.conversation_id.clone())
                .one(self.db)
                .await?
            {
                Some(c) => self.conversations.add(&m.conversation_id, c, RowState::Stored).0,
                None => return Ok(()),
            },
        };
        let attachments: Vec<convert::AttachmentRecord> =
            serde_json::from_str(&m.attachments_json).unwrap_or_default();
        let mut c = self.conversations.get(conv).clone();
        c.message_count += 1;
        if m.sent_at_ms >= c.last_activity_at_ms {
            c.last_activity_at_ms = m.sent_at_ms;
            c.last_message_preview = domain::preview(&m.text, attachments.first().map(|a| a.kind.as_str()));
        }
        c.updated_at_ms = self.now_ms;
        self.effects.conversations.touch(&c.id, cause);
        self.conversations.replace(conv, c);
        Ok(())
    }

    /// Holds a contact read from the store.
    fn hold_contact(&mut self, c: contact::Model) -> usize {
        let key = (c.channel_id.clone(), c.external_id.clone());
        let id = c.id.clone();
        let (i, _) = self.contacts.add(&id, c, RowState::Stored);
        self.contact_keys.insert(key, Some(i));
        i
    }

    /// Holds an open conversation read from the store.
    fn hold_open_conversation(&mut self, c: conversation::Model) -> usize {
        let contact_id = c.contact_id.clone();
        let id = c.id.clone();
        let (i, _) = self.conversations.add(&id, c, RowState::Stored);
        self.open_conversations.insert(contact_id, Some(i));
        i
    }

    /// Holds a message read from the store (or created: `state` New).
    fn hold_message(&mut self, m: message::Model) -> usize {
        self.add_message(m, RowState::Stored)
    }

    fn add_message(&mut self, m: message::Model, state: RowState) -> usize {
        let key = (m.channel_id.clone(), m.external_id.clone());
        let outbound = (m.direction == MessageDirection::Outbound as i32).then(|| m.contact_id.clone());
        let id = m.id.clone();
        let (i, added) = self.messages.add(&id, m, state);
        self.message_keys.insert(key, Some(i));
        if let (true, Some(contact_id)) = (added, outbound) {
            self.outbound.entry(contact_id).or_default().push(i);
        }
        i
    }

    async fn contact(
        &mut self,
        ch: &channel::Model,
        external_id: &str,
        name: &str,
    ) -> Result<Option<usize>, DbErr> {
        if external_id.is_empty() {
            tracing::warn!(channel_id = %ch.id, "event without a customer id; ignored");
            return Ok(None);
        }
        let key = (ch.id.clone(), external_id.to_string());
        let existing = match self.contact_keys.get(&key) {
            Some(known) => *known,
            None => {
                let found = contact::Entity::find()
                    .filter(contact::Column::ChannelId.eq(ch.id.as_str()))
                    .filter(contact::Column::ExternalId.eq(external_id))
                    .one(self.db)
                    .await?;
                found.map(|c| self.hold_contact(c))
            }
        };
        if let Some(i) = existing {
            let c = self.contacts.get(i);
            // A name the team set wins over Meta's profile name.
            if !name.is_empty() && !c.name_locked && c.display_name != name {
                let mut renamed = self.contacts.get(i).clone();
                renamed.display_name = name.to_string();
                self.contacts.replace(i, renamed);
            }
            return Ok(Some(i));
        }
        let created = contact::Model {
            id: new_id(),
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            external_id: external_id.to_string(),
            display_name: name.to_string(),
            delivered_watermark_ms: 0,
            read_watermark_ms: 0,
            created_at_ms: self.now_ms,
            person_id: String::new(),
            custom_attributes_json: "{}".into(),
            name_locked: false,
        };
        let id = created.id.clone();
        // A new contact has no messages in the store to move forward, nor an open conversation.
        self.outbound_read_upto.insert(id.clone(), i64::MAX);
        self.open_conversations.insert(id.clone(), None);
        let (i, _) = self.contacts.add(&id, created, RowState::New);
        self.contact_keys.insert(key, Some(i));
        Ok(Some(i))
    }

    async fn contact_by_id(&mut self, id: &str) -> Result<Option<usize>, DbErr> {
        if let Some(i) = self.contacts.index(id) {
            return Ok(Some(i));
        }
        Ok(contact::Entity::find_by_id(id.to_string())
            .one(self.db)
            .await?
            .map(|c| self.hold_contact(c)))
    }

    async fn open_conversation(&mut self, ch: &channel::Model, contact: usize) -> Result<usize, DbErr> {
        let contact_id = self.contacts.get(contact).id.clone();
        let known = match self.open_conversations.get(&contact_id) {
            Some(known) => *known,
            None => {
                let found = conversation::Entity::find()
                    .filter(conversation::Column::OpenKey.eq(contact_id.as_str()))
                    .one(self.db)
                    .await?;
                found.map(|c| self.hold_open_conversation(c))
            }
        };
        if let Some(i) = known {
            return Ok(i);
        }
        let created = conversation::Model {
            id: new_id(),
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            contact_id: contact_id.clone(),
            status: ConversationStatus::Open as i32,
            open_key: Some(contact_id.clone()),
            last_activity_at_ms: 0,
            last_message_preview: String::new(),
            message_count: 0,
            created_at_ms: self.now_ms,
            updated_at_ms: self.now_ms,
            assignee_id: String::new(),
            team_id: String::new(),
            snoozed_until_ms: 0,
        };
        let id = created.id.clone();
        let (i, _) = self.conversations.add(&id, created, RowState::New);
        self.open_conversations.insert(contact_id, Some(i));
        self.auto_assign(i).await?;
        Ok(i)
    }

    /// A customer's message reopens a RESOLVED or SNOOZED conversation: OPEN again, the snooze
    /// cleared, its assignee kept (or, when it has none, auto-assigned as a new one would be).
    async fn reopen(&mut self, conv: usize) -> Result<(), DbErr> {
        let c = self.conversations.get(conv);
        if !assignment::reopened_by_customer(c.status) {
            return Ok(());
        }
        let mut next = c.clone();
        next.status = ConversationStatus::Open as i32;
        next.snoozed_until_ms = 0;
        next.updated_at_ms = self.now_ms;
        let (ws, assignee) = (next.workspace_id.clone(), next.assignee_id.clone());
        self.conversations.replace(conv, next);
        if assignee.is_empty() {
            return self.auto_assign(conv).await;
        }
        // One more OPEN conversation for its agent, should this batch assign more.
        if let Some(Some(a)) = self.assigners.get_mut(&ws)
            && let Some(n) = a.open.get_mut(&assignee)
        {
            *n += 1;
        }
        Ok(())
    }

    /// Gives an OPEN, unassigned conversation to the next available agent under the cap, when the
    /// workspace has auto-assignment on.
    async fn auto_assign(&mut self, conv: usize) -> Result<(), DbErr> {
        let c = self.conversations.get(conv);
        if !c.assignee_id.is_empty() || c.status != ConversationStatus::Open as i32 {
            return Ok(());
        }
        let ws = c.workspace_id.clone();
        if !self.assigners.contains_key(&ws) {
            let assigner = self.read_assigner(&ws).await?;
            self.assigners.insert(ws.clone(), assigner);
        }
        let Some(Some(a)) = self.assigners.get_mut(&ws) else {
            return Ok(());
        };
        let picked = assignment::next_agent(
            &a.agents,
            &a.cursor,
            |agent| a.open.get(agent).copied().unwrap_or(0),
            a.cap,
        )
        .map(str::to_string);
        let Some(agent) = picked else {
            tracing::info!(workspace_id = %ws, agents = a.agents.len(),
                "no available agent under the cap; the conversation stays unassigned");
            return Ok(());
        };
        *a.open.entry(agent.clone()).or_default() += 1;
        a.cursor = agent.clone();
        a.moved = true;
        let mut next = self.conversations.get(conv).clone();
        next.assignee_id = agent;
        self.conversations.replace(conv, next);
        Ok(())
    }

    async fn read_assigner(&self, ws: &str) -> Result<Option<Assigner>, DbErr> {
        let Some(settings) = assignment_settings::Entity::find_by_id(ws.to_string())
            .one(self.db)
            .await?
            .filter(|s| s.auto_assign)
        else {
            return Ok(None);
        };
        let agents: Vec<String> = agent::Entity::find()
            .select_only()
            .column(agent::Column::AgentId)
            .filter(agent::Column::WorkspaceId.eq(ws))
            .filter(agent::Column::Available.eq(true))
            .order_by_asc(agent::Column::AgentId)
            .into_tuple()
            .all(self.db)
            .await?;
        let open: Vec<(String, i64)> = if agents.is_empty() {
            Vec::new()
        } else {
            conversation::Entity::find()
                .select_only()
                .column(conversation::Column::AssigneeId)
                .column_as(conversation::Column::Id.count(), "open")
                .filter(conversation::Column::WorkspaceId.eq(ws))
                .filter(conversation::Column::Status.eq(ConversationStatus::Open as i32))
                .filter(conversation::Column::AssigneeId.is_in(agents.iter().cloned()))
                .group_by(conversation::Column::AssigneeId)
                .into_tuple()
                .all(self.db)
                .await?
        };
        Ok(Some(Assigner {
            cap: settings.max_open_per_agent,
            cursor: settings.cursor_agent_id,
            moved: false,
            agents,
            open: open.into_iter().collect(),
        }))
    }

    async fn store_message(
        &mut self,
        ch: &channel::Model,
        new: NewMessage<'_>,
        cause: &str,
    ) -> Result<Disposition, DbErr> {
        if new.external_id.is_empty() {
            tracing::warn!(event_id = cause, "message without an id; ignored");
            return Ok(Disposition::Ignored);
        }
        // A message stored under another event id (Meta resends with a new envelope) stops here
        // before it creates a contact or conversation.
        if self.find_message(&ch.id, &new.external_id).await?.is_some() {
            return Ok(Disposition::Duplicate);
        }
        let Some(contact) = self
            .contact(ch, new.contact_external_id, new.contact_name)
            .await?
        else {
            return Ok(Disposition::Ignored);
        };
        let conv = self.open_conversation(ch, contact).await?;
        // Issue 5: a new conversation, or a resolved one a customer reopens, is an opening.
        let fresh = self.conversations.rows[conv].1 == RowState::New
            && self.conversations.get(conv).message_count == 0;
        let was_resolved = self.conversations.get(conv).status == ConversationStatus::Resolved as i32;
        let inbound = new.direction == MessageDirection::Inbound;
        if inbound {
            self.reopen(conv).await?;
        }
        let (contact_id, delivered_watermark_ms, read_watermark_ms) = {
            let c = self.contacts.get(contact);
            (c.id.clone(), c.delivered_watermark_ms, c.read_watermark_ms)
        };
        let status = match new.direction {
            MessageDirection::Outbound => {
                DeliveryState::initial_outbound(new.sent_at_ms, delivered_watermark_ms, read_watermark_ms)
            }
            _ => DeliveryState::Unspecified,
        };
        let preview = domain::preview(&new.text, new.attachments.first().map(|a| a.r#type.as_str()));
        // History, gaps and media: an inbound message's attachments are copied in the background.
        let (attachments_json, media_jobs) = if new.direction == MessageDirection::Inbound {
            let (records, jobs) = crate::media::domain::plan(new.attachments);
            (
                serde_json::to_string(&records).unwrap_or_else(|_| "[]".into()),
                jobs,
            )
        } else {
            (convert::attachments_to_json(new.attachments), Vec::new())
        };
        let stored = message::Model {
            id: new_id(),
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            conversation_id: self.conversations.get(conv).id.clone(),
            contact_id,
            external_id: new.external_id.clone(),
            direction: new.direction as i32,
            text: new.text,
            attachments_json,
            sent_at_ms: new.sent_at_ms,
            status: status.to_i32(),
            error_code: 0,
            error_message: String::new(),
            is_echo: new.is_echo,
            reactions_json: "[]".into(),
            edited: false,
            edit_seq: 0,
            edited_at_ms: 0,
            reply_to_external_id: new.reply_to,
            payload: new.payload,
            created_at_ms: self.now_ms,
            updated_at_ms: self.now_ms,
            author_kind: 0,
            author_id: String::new(),
            idempotency_key: None,
            failure_reason: String::new(),
            retryable: false,
            attempt: 0,
            reconciled: new.reconciled,
        };
        let message_id = stored.id.clone();
        self.media_jobs.extend(crate::media::jobs_for(
            &ch.workspace_id,
            &ch.id,
            &message_id,
            media_jobs,
            self.now_ms,
        ));
        let i = self.add_message(stored, RowState::New);
        self.effects.created.touch(&message_id, cause);

        let mut c = self.conversations.get(conv).clone();
        c.message_count += 1;
        // Conversations order by Meta's timestamps: an echo that arrives before the customer message
        // it answers must not make the older message the "latest".
        if new.sent_at_ms >= c.last_activity_at_ms {
            c.last_activity_at_ms = new.sent_at_ms;
            c.last_message_preview = preview;
        }
        c.updated_at_ms = self.now_ms;
        self.effects.conversations.touch(&c.id, cause);
        self.conversations.replace(conv, c);

        // Issue 5: analytics facts, in this transaction.
        let (c, m) = (self.conversations.get(conv).clone(), self.messages.get(i).clone());
        if fresh || (inbound && was_resolved) {
            self.analytics.opened(&c, m.sent_at_ms, inbound);
        }
        if inbound {
            self.analytics.message_in(&c, &m);
        } else {
            self.analytics.message_out(self.db, &c, &m).await?;
        }

        self.apply_deferred(i).await?;
        Ok(Disposition::Applied)
    }

    async fn find_message(&mut self, channel_id: &str, external_id: &str) -> Result<Option<usize>, DbErr> {
        let key = (channel_id.to_string(), external_id.to_string());
        if let Some(known) = self.message_keys.get(&key) {
            return Ok(*known);
        }
        let found = message::Entity::find()
            .filter(message::Column::ChannelId.eq(channel_id))
            .filter(message::Column::ExternalId.eq(external_id))
            .one(self.db)
            .await?;
        Ok(match found {
            Some(m) => Some(self.hold_message(m)),
            None => {
                self.message_keys.insert(key, None);
                None
            }
        })
    }

    async fn update_or_defer(
        &mut self,
        ch: &channel::Model,
        target: &str,
        event: &MetaEvent,
    ) -> Result<Disposition, DbErr> {
        if target.is_empty() {
            tracing::warn!(event_id = %event.event_id, "update without a target message id; ignored");
            return Ok(Disposition::Ignored);
        }
        match self.find_message(&ch.id, target).await? {
            Some(i) => {
                self.update_message(i, event).await?;
                Ok(Disposition::Applied)
            }
            None => {
                let row = deferred_update::Model {
                    event_id: event.event_id.clone(),
                    channel_id: ch.id.clone(),
                    target_external_id: target.to_string(),
                    at_ms: event_time_ms(event),
                    payload: event.encode_to_vec(),
                    stored_at_ms: self.now_ms,
                };
                // Kept in memory until `finish`: the message may still arrive in this batch.
                self.deferred
                    .entry((ch.id.clone(), target.to_string()))
                    .or_default()
                    .push(row.clone());
                self.new_deferred.insert(row.event_id.clone(), row);
                Ok(Disposition::Deferred)
            }
        }
    }

    /// Applies the updates that arrived before message `i`, in Meta's order.
    async fn apply_deferred(&mut self, i: usize) -> Result<(), DbErr> {
        let key = {
            let m = self.messages.get(i);
            (m.channel_id.clone(), m.external_id.clone())
        };
        let mut waiting = self.deferred.remove(&key).unwrap_or_default();
        if !self.deferred_read.contains(&key) {
            let stored = deferred_update::Entity::find()
                .filter(deferred_update::Column::ChannelId.eq(key.0.as_str()))
                .filter(deferred_update::Column::TargetExternalId.eq(key.1.as_str()))
                .all(self.db)
                .await?;
            let held: HashSet<String> = waiting.iter().map(|d| d.event_id.clone()).collect();
            waiting.extend(stored.into_iter().filter(|d| !held.contains(&d.event_id)));
            self.deferred_read.insert(key);
        }
        waiting.sort_by(|a, b| (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id)));
        for row in waiting {
            match MetaEvent::decode(row.payload.as_slice()) {
                Ok(event) => self.update_message(i, &event).await?,
                Err(e) => {
                    tracing::error!(event_id = %row.event_id, error = %e, "stored deferred update does not decode; dropped")
                }
            }
            // One made in this batch was never written; a stored one is deleted by `finish`.
            if self.new_deferred.remove(&row.event_id).is_none() {
                self.consumed_deferred.push(row.event_id);
            }
        }
        Ok(())
    }

    /// Applies a status, reaction, edit or read receipt to message `i`.
    async fn update_message(&mut self, i: usize, event: &MetaEvent) -> Result<(), DbErr> {
        let cause = event.event_id.as_str();
        let msg = self.messages.get(i);
        let mut next = msg.clone();
        let mut read_watermark = None;
        match &event.kind {
            Some(Kind::Reaction(r)) => {
                let mut reactions = Reactions::from_json(&msg.reactions_json);
                if reactions.apply(BY_CUSTOMER, r.added, &r.emoji, r.at_ms) {
                    next.reactions_json = reactions.to_json();
                }
            }
            Some(Kind::Edit(e))
                if domain::edit::supersedes(
                    msg.edit_seq,
                    msg.edited_at_ms,
                    i64::from(e.num_edit),
                    e.at_ms,
                ) =>
            {
                next.text = e.text.clone();
                next.edited = true;
                next.edit_seq = i64::from(e.num_edit);
                next.edited_at_ms = e.at_ms;
            }
            Some(Kind::WhatsappStatus(s)) => {
                let incoming = match WhatsAppStatusKind::try_from(s.status) {
                    Ok(WhatsAppStatusKind::Sent) => DeliveryState::Sent,
                    Ok(WhatsAppStatusKind::Delivered) => DeliveryState::Delivered,
                    // A played voice message has certainly been seen.
                    Ok(WhatsAppStatusKind::Read | WhatsAppStatusKind::Played) => DeliveryState::Read,
                    Ok(WhatsAppStatusKind::Failed) => DeliveryState::Failed,
                    Ok(WhatsAppStatusKind::Unspecified) | Err(_) => DeliveryState::Unspecified,
                };
                if let Some(state) = DeliveryState::from_i32(msg.status).advance(incoming) {
                    next.status = state.to_i32();
                    if state == DeliveryState::Failed {
                        next.error_code = s.error_code;
                        next.error_message = match (s.error_title.is_empty(), s.error_detail.is_empty()) {
                            (false, false) => format!("{}: {}", s.error_title, s.error_detail),
                            (false, true) => s.error_title.clone(),
                            _ => s.error_detail.clone(),
                        };
                    }
                }
            }
            // Instagram names the message seen; everything the business sent up to it was seen.
            Some(Kind::Read(_)) if msg.direction == MessageDirection::Outbound as i32 => {
                read_watermark = Some(msg.sent_at_ms);
            }
            _ => {}
        }
        // Issue 5: a WhatsApp `failed` status is a failed send too.
        let failed_by_status = match &event.kind {
            Some(Kind::WhatsappStatus(s))
                if next.status == DeliveryState::Failed.to_i32() && msg.status != next.status =>
            {
                let explained = scifer_send_gate::explain_send_failure(
                    scifer_send_gate::ChannelKind::WhatsApp,
                    i64::from(s.error_code),
                    None,
                );
                Some((explained.code.to_string(), s.at_ms))
            }
            _ => None,
        };
        if next != *msg {
            next.updated_at_ms = self.now_ms;
            let id = next.id.clone();
            self.messages.replace(i, next);
            self.effects.updated.touch(&id, cause);
        }
        if let Some((reason, at_ms)) = failed_by_status {
            self.record_failed(i, "status", &reason, at_ms).await?;
        }
        if let Some(watermark) = read_watermark {
            let contact_id = self.messages.get(i).contact_id.clone();
            if let Some(contact) = self.contact_by_id(&contact_id).await? {
                self.raise_watermark(contact, DeliveryState::Read, watermark, cause)
                    .await?;
            }
        }
        Ok(())
    }

    fn save_message_status(&mut self, i: usize, state: DeliveryState, cause: &str) {
        let mut msg = self.messages.get(i).clone();
        msg.status = state.to_i32();
        msg.updated_at_ms = self.now_ms;
        let id = msg.id.clone();
        self.messages.replace(i, msg);
        self.effects.updated.touch(&id, cause);
    }

    /// Records a thread-wide receipt and moves every outbound message at or before it forward.
    async fn raise_watermark(
        &mut self,
        contact: usize,
        state: DeliveryState,
        watermark_ms: i64,
        cause: &str,
    ) -> Result<(), DbErr> {
        let mut raised = self.contacts.get(contact).clone();
        let stored = match state {
            DeliveryState::Read => &mut raised.read_watermark_ms,
            _ => &mut raised.delivered_watermark_ms,
        };
        if watermark_ms <= *stored {
            return Ok(());
        }
        let floor = *stored;
        *stored = watermark_ms;
        let contact_id = raised.id.clone();
        self.contacts.replace(contact, raised);

        if self
            .outbound_read_upto
            .get(&contact_id)
            .is_none_or(|upto| *upto < watermark_ms)
        {
            let found = message::Entity::find()
                .filter(message::Column::ContactId.eq(contact_id.as_str()))
                .filter(message::Column::Direction.eq(MessageDirection::Outbound as i32))
                // Nothing at or below the previous watermark is left to move (see `prefetch`).
                .filter(message::Column::SentAtMs.gt(floor))
                .filter(message::Column::SentAtMs.lte(watermark_ms))
                .filter(message::Column::Status.is_in(receipt_candidate_states()))
                .all(self.db)
                .await?;
            for m in found {
                self.hold_message(m);
            }
            self.outbound_read_upto.insert(contact_id.clone(), watermark_ms);
        }
        let mut candidates: Vec<usize> = self
            .outbound
            .get(&contact_id)
            .map(|held| {
                held.iter()
                    .copied()
                    .filter(|&i| self.messages.get(i).sent_at_ms <= watermark_ms)
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort_by(|&a, &b| {
            let (a, b) = (self.messages.get(a), self.messages.get(b));
            (a.sent_at_ms, &a.id).cmp(&(b.sent_at_ms, &b.id))
        });
        for i in candidates {
            if let Some(next) = DeliveryState::from_i32(self.messages.get(i).status).advance(state) {
                self.save_message_status(i, next, cause);
            }
        }
        Ok(())
    }

    /// Writes the batch, set-based (new rows first, so that what refers to them finds them), then
    /// turns what changed into `InboxEvent`s from the rows in memory. Must be called before the
    /// commit; the events are published after it.
    ///
    /// A new row that loses its unique key to a concurrent writer (another replica on PostgreSQL)
    /// fails the batch, which is then redelivered and finds that writer's row.
    pub async fn finish(mut self) -> Result<Vec<Emission>, DbErr> {
        self.write().await?;
        self.read_labels().await?;
        let db = self.db;
        let mut emissions: Vec<Emission> = self.emissions().into_iter().map(|(_, e)| e).collect();
        // Automation and handoff (issue 5): who handles each announced conversation.
        crate::automation::state::fill_emissions(db, &mut emissions).await?;
        Ok(emissions)
    }

    /// The labels of the conversations to announce (one query; none for a batch that changed no
    /// conversation).
    async fn read_labels(&mut self) -> Result<(), DbErr> {
        self.labels = crate::store::labels_of(self.db, &self.effects.conversations.order).await?;
        Ok(())
    }

    /// Writes what is held so far and starts over with empty caches, keeping the events owed for
    /// what was written (each with its channel, so a disconnect later in the batch can drop them).
    async fn flush(&mut self) -> Result<(), DbErr> {
        self.write().await?;
        self.read_labels().await?;
        let mut done = std::mem::replace(self, Applier::new(self.db));
        self.applied_prefetched = std::mem::take(&mut done.applied_prefetched);
        self.applied_fresh = std::mem::take(&mut done.applied_fresh);
        self.owed = done.emissions();
        Ok(())
    }

    async fn write(&self) -> Result<(), DbErr> {
        let db = self.db;
        // Issue 5: the batch's analytics facts (nothing refers to them, so order does not matter).
        self.analytics.write(db).await?;
        insert_new::<contact::ActiveModel, _>(
            db,
            self.contacts.in_state(RowState::New),
            OnConflict::columns([contact::Column::ChannelId, contact::Column::ExternalId])
                .do_nothing()
                .to_owned(),
            "contact",
        )
        .await?;
        upsert::<contact::ActiveModel, _>(
            db,
            self.contacts.in_state(RowState::Changed),
            OnConflict::column(contact::Column::Id)
                .update_columns([
                    contact::Column::DisplayName,
                    contact::Column::DeliveredWatermarkMs,
                    contact::Column::ReadWatermarkMs,
                ])
                .to_owned(),
        )
        .await?;
        insert_new::<conversation::ActiveModel, _>(
            db,
            self.conversations.in_state(RowState::New),
            OnConflict::column(conversation::Column::OpenKey)
                .do_nothing()
                .to_owned(),
            "conversation",
        )
        .await?;
        upsert::<conversation::ActiveModel, _>(
            db,
            self.conversations.in_state(RowState::Changed),
            OnConflict::column(conversation::Column::Id)
                // Status and assignee too (a reopen, an auto-assignment): RPCs that write them
                // hold the engine's write lock, so what this batch read is still current.
                .update_columns([
                    conversation::Column::MessageCount,
                    conversation::Column::LastActivityAtMs,
                    conversation::Column::LastMessagePreview,
                    conversation::Column::UpdatedAtMs,
                    conversation::Column::Status,
                    conversation::Column::OpenKey,
                    conversation::Column::SnoozedUntilMs,
                    conversation::Column::AssigneeId,
                ])
                .to_owned(),
        )
        .await?;
        insert_new::<message::ActiveModel, _>(
            db,
            self.messages.in_state(RowState::New),
            OnConflict::columns([message::Column::ChannelId, message::Column::ExternalId])
                .do_nothing()
                .to_owned(),
            "message",
        )
        .await?;
        crate::media::insert_jobs(db, &self.media_jobs).await?;
        upsert::<message::ActiveModel, _>(
            db,
            self.messages.in_state(RowState::Changed),
            OnConflict::column(message::Column::Id)
                .update_columns([
                    message::Column::Text,
                    message::Column::Edited,
                    message::Column::EditSeq,
                    message::Column::EditedAtMs,
                    message::Column::ReactionsJson,
                    message::Column::Status,
                    message::Column::ErrorCode,
                    message::Column::ErrorMessage,
                    // A message we sent takes Meta's id, and a failure its reading, when they come.
                    message::Column::ExternalId,
                    message::Column::FailureReason,
                    message::Column::Retryable,
                    message::Column::UpdatedAtMs,
                ])
                .to_owned(),
        )
        .await?;
        // A redelivered update may already be waiting: DO NOTHING keeps the first copy.
        for chunk in self
            .new_deferred
            .values()
            .collect::<Vec<_>>()
            .chunks(MAX_BINDS / 6)
        {
            deferred_update::Entity::insert_many(chunk.iter().map(|d| (*d).clone().into_active_model()))
                .on_conflict(
                    OnConflict::column(deferred_update::Column::EventId)
                        .do_nothing()
                        .to_owned(),
                )
                .try_insert()
                .exec_without_returning(db)
                .await?;
        }
        for chunk in self.consumed_deferred.chunks(IN_CHUNK) {
            deferred_update::Entity::delete_many()
                .filter(deferred_update::Column::EventId.is_in(chunk.iter().cloned()))
                .exec(db)
                .await?;
        }
        for (ws, a) in &self.assigners {
            if let Some(a) = a.as_ref().filter(|a| a.moved) {
                assignment_settings::Entity::update_many()
                    .col_expr(
                        assignment_settings::Column::CursorAgentId,
                        sea_orm::sea_query::Expr::value(a.cursor.clone()),
                    )
                    .filter(assignment_settings::Column::WorkspaceId.eq(ws.as_str()))
                    .exec(db)
                    .await?;
            }
        }
        Ok(())
    }

    /// The events owed for what changed, each with the channel of its row.
    fn emissions(self) -> Vec<(String, Emission)> {
        let Effects {
            created,
            updated,
            conversations,
        } = self.effects;
        let mut emissions = self.owed;
        let message = |id: &String| self.messages.index(id).map(|i| self.messages.get(i));
        for id in &created.order {
            if let Some(m) = message(id) {
                emissions.push((
                    m.channel_id.clone(),
                    Emission {
                        cause: created.cause.get(id).cloned().unwrap_or_default(),
                        subject_kind: "message_created",
                        workspace_id: m.workspace_id.clone(),
                        msg_id: format!("inbox.message_created.{id}"),
                        event: inbox_event(
                            m,
                            inbox_event::Kind::MessageCreated(ev::MessageCreated {
                                message: Some(convert::message(m)),
                            }),
                        ),
                    },
                ));
            }
        }
        let created_set: HashSet<&String> = created.order.iter().collect();
        for id in updated.order.iter().filter(|id| !created_set.contains(id)) {
            if let (Some(m), Some(cause)) = (message(id), updated.cause.get(id)) {
                emissions.push((
                    m.channel_id.clone(),
                    Emission {
                        cause: cause.clone(),
                        subject_kind: "message_updated",
                        workspace_id: m.workspace_id.clone(),
                        msg_id: format!("inbox.message_updated.{id}.{cause}"),
                        event: inbox_event(
                            m,
                            inbox_event::Kind::MessageUpdated(ev::MessageUpdated {
                                message: Some(convert::message(m)),
                            }),
                        ),
                    },
                ));
            }
        }
        for id in &conversations.order {
            let Some(c) = self.conversations.index(id).map(|i| self.conversations.get(i)) else {
                continue;
            };
            let Some(cause) = conversations.cause.get(id) else {
                continue;
            };
            let kind = self
                .channel_kinds
                .get(&c.channel_id)
                .copied()
                .unwrap_or(ChannelKind::Unspecified as i32);
            let contact = self.contacts.index(&c.contact_id).map(|i| self.contacts.get(i));
            let mut view = convert::conversation(c, contact, kind);
            view.labels = self.labels.get(id).cloned().unwrap_or_default();
            emissions.push((
                c.channel_id.clone(),
                Emission {
                    cause: cause.clone(),
                    subject_kind: "conversation_updated",
                    workspace_id: c.workspace_id.clone(),
                    msg_id: format!("inbox.conversation_updated.{id}.{cause}"),
                    event: InboxEvent {
                        event_id: String::new(),
                        workspace_id: c.workspace_id.clone(),
                        at: Some(convert::timestamp(now_ms())),
                        kind: Some(inbox_event::Kind::ConversationUpdated(ev::ConversationUpdated {
                            conversation: Some(view),
                        })),
                    },
                },
            ));
        }
        // The event id doubles as the Nats-Msg-Id, so subscribers can deduplicate too.
        for (_, e) in &mut emissions {
            e.event.event_id = e.msg_id.clone();
        }
        emissions
    }
}

/// Deletes the events parked for accounts that were disconnected and have no attachable channel,
/// stored before `stored_before_ms`: after a disconnect Meta stops sending, so what was parked
/// afterwards waits only for a reconnect, and without one it would wait forever. One statement.
pub async fn expire_parked_after_disconnect<C: ConnectionTrait>(
    db: &C,
    stored_before_ms: i64,
) -> Result<u64, DbErr> {
    // The accounts with old parked events: a handful, so the tombstone keys are checked here
    // rather than in SQL (they are hashes the database cannot compute portably).
    let parked: Vec<(i32, String)> = pending_event::Entity::find()
        .select_only()
        .column(pending_event::Column::ChannelKind)
        .column(pending_event::Column::AccountId)
        .filter(pending_event::Column::StoredAtMs.lt(stored_before_ms))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut deleted = 0;
    for (kind, account_id) in parked {
        let channels = channel::Entity::find()
            .filter(channel::Column::Kind.eq(kind))
            .filter(channel::Column::AccountId.is_in([account_id.clone(), tombstone_key(kind, &account_id)]))
            .all(db)
            .await?;
        let disconnected = channels.iter().any(|c| c.disconnected_at_ms > 0);
        let attachable = channels.iter().any(|c| {
            c.state == ChannelState::Connected as i32 || c.state == ChannelState::NeedsReauth as i32
        });
        if disconnected && !attachable {
            deleted += pending_event::Entity::delete_many()
                .filter(pending_event::Column::ChannelKind.eq(kind))
                .filter(pending_event::Column::AccountId.eq(&account_id))
                .filter(pending_event::Column::StoredAtMs.lt(stored_before_ms))
                .exec(db)
                .await?
                .rows_affected;
        }
    }
    Ok(deleted)
}

/// Inserts new rows in multi-row statements; every one must land (see [`Applier::finish`]).
async fn insert_new<'m, A, C>(
    db: &C,
    models: impl Iterator<Item = &'m <A::Entity as EntityTrait>::Model>,
    on_conflict: OnConflict,
    what: &str,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Clone + 'm,
    C: ConnectionTrait,
{
    let models: Vec<_> = models.collect();
    let per_statement = (MAX_BINDS / <A::Entity as EntityTrait>::Column::iter().count()).max(1);
    for chunk in models.chunks(per_statement) {
        let result = A::Entity::insert_many(chunk.iter().map(|m| (*m).clone().into_active_model()))
            .on_conflict(on_conflict.clone())
            .try_insert()
            .exec_without_returning(db)
            .await?;
        let landed = match result {
            TryInsertResult::Inserted(n) => n,
            TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
        };
        if landed != chunk.len() as u64 {
            return Err(DbErr::Custom(format!(
                "{} of {} new {what} rows were stored concurrently by another writer; the batch will be retried",
                chunk.len() as u64 - landed,
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Writes changed rows back in multi-row `INSERT ... ON CONFLICT (id) DO UPDATE` statements.
async fn upsert<'m, A, C>(
    db: &C,
    models: impl Iterator<Item = &'m <A::Entity as EntityTrait>::Model>,
    on_conflict: OnConflict,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Clone + 'm,
    C: ConnectionTrait,
{
    let models: Vec<_> = models.collect();
    let per_statement = (MAX_BINDS / <A::Entity as EntityTrait>::Column::iter().count()).max(1);
    for chunk in models.chunks(per_statement) {
        A::Entity::insert_many(chunk.iter().map(|m| (*m).clone().into_active_model()))
            .on_conflict(on_conflict.clone())
            .try_insert()
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

pub(crate) fn inbox_event(m: &message::Model, kind: inbox_event::Kind) -> InboxEvent {
    InboxEvent {
        event_id: String::new(),
        workspace_id: m.workspace_id.clone(),
        at: Some(convert::timestamp(now_ms())),
        kind: Some(kind),
    }
}

fn inserted(result: sea_orm::TryInsertResult<u64>) -> bool {
    matches!(result, sea_orm::TryInsertResult::Inserted(n) if n > 0)
}

/// What a disconnected channel's tombstone keeps instead of its account id: `sha256:` and the hex
/// SHA-256 of `<kind>:<account id>`. Events of the account can still be matched against it; the
/// id itself is gone with the rest of the account's data.
pub fn tombstone_key(kind: i32, account_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{kind}:{account_id}").as_bytes());
    format!("sha256:{}", hex::encode(digest))
}
