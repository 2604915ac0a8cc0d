//! Applying Meta and channel events to the store, inside a transaction the caller owns (one per
//! consumer batch). Nothing here publishes: the changes are collected in [`Effects`] and turned into
//! `InboxEvent`s that the caller emits after its commit.

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use scifer_proto::{
    events::v1::{
        self as ev, ChannelEvent, ChannelKind, ChannelState, InboxEvent, MetaEvent, WhatsAppStatusKind,
        inbox_event, meta_event::Kind,
    },
    inbox::v1::{ConversationStatus, MessageDirection},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};

use crate::{
    convert,
    domain::{self, DeliveryState, Reactions, WorkspaceId, reactions::BY_CUSTOMER},
    store::entity::{applied_event, channel, contact, conversation, deferred_update, message, pending_event},
};

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

pub struct Applier<'a, C: ConnectionTrait> {
    db: &'a C,
    now_ms: i64,
    effects: Effects,
    /// Connected channel by (kind, account_id), looked up once per batch.
    channels: HashMap<(i32, String), Option<channel::Model>>,
    /// Contacts by (channel id, external id) and open conversations by contact id, read once per
    /// batch: a batch usually holds many events of the same few threads.
    contacts: HashMap<(String, String), contact::Model>,
    conversations: HashMap<String, conversation::Model>,
    /// Conversations whose counters changed; written once per batch by `flush`.
    dirty_conversations: Vec<String>,
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
}

impl<'a, C: ConnectionTrait> Applier<'a, C> {
    pub fn new(db: &'a C) -> Self {
        Self {
            db,
            now_ms: now_ms(),
            effects: Effects::default(),
            channels: HashMap::new(),
            contacts: HashMap::new(),
            conversations: HashMap::new(),
            dirty_conversations: Vec::new(),
        }
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
            Kind::Handover(h) => {
                tracing::info!(event_id = %event.event_id, account_id = %event.account_id,
                    handover_kind = h.kind, new_owner = %h.new_owner_app_id, "handover event not recorded yet");
                return Ok(Disposition::Ignored);
            }
            Kind::Change(c) => {
                tracing::info!(event_id = %event.event_id, account_id = %event.account_id,
                    field = %c.field, item = %c.item, verb = %c.verb, "feed change not recorded yet");
                return Ok(Disposition::Ignored);
            }
            _ => {}
        }
        let Some(channel) = self
            .connected_channel(event.channel_kind, &event.account_id)
            .await?
        else {
            return self.park_pending(event).await;
        };
        if !self.mark_applied(&event.event_id).await? {
            return Ok(Disposition::Duplicate);
        }
        self.apply(&channel, event, kind).await
    }

    /// Upserts a channel (highest version wins); when it is connected, replays the events that
    /// waited for it. Returns the number of pending events replayed.
    pub async fn channel_event(
        &mut self,
        event: &ChannelEvent,
        workspace: &WorkspaceId,
    ) -> Result<usize, DbErr> {
        let existing = channel::Entity::find_by_id(event.channel_id.clone())
            .one(self.db)
            .await?;
        let row = channel::ActiveModel {
            id: Set(event.channel_id.clone()),
            workspace_id: Set(workspace.as_str().to_string()),
            kind: Set(event.kind),
            account_id: Set(event.account_id.clone()),
            display_name: Set(event.display_name.clone()),
            state: Set(event.state),
            version: Set(event.version),
            updated_at_ms: Set(self.now_ms),
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
        if event.state == ChannelState::Disconnected as i32 || event.state == ChannelState::Unspecified as i32
        {
            return Ok(0);
        }
        self.replay_pending(event.kind, &event.account_id).await
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

    async fn connected_channel(
        &mut self,
        kind: i32,
        account_id: &str,
    ) -> Result<Option<channel::Model>, DbErr> {
        let key = (kind, account_id.to_string());
        if let Some(cached) = self.channels.get(&key) {
            return Ok(cached.clone());
        }
        // NEEDS_REAUTH still receives webhooks and still belongs to its workspace, so it stays
        // attachable; only DISCONNECTED (and unknown) channels stop taking events.
        let found = channel::Entity::find()
            .filter(channel::Column::Kind.eq(kind))
            .filter(channel::Column::AccountId.eq(account_id))
            .filter(
                channel::Column::State
                    .is_in([ChannelState::Connected as i32, ChannelState::NeedsReauth as i32]),
            )
            .order_by_desc(channel::Column::UpdatedAtMs)
            .one(self.db)
            .await?;
        self.channels.insert(key, found.clone());
        Ok(found)
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
    async fn mark_applied(&mut self, event_id: &str) -> Result<bool, DbErr> {
        let row = applied_event::ActiveModel {
            event_id: Set(event_id.to_string()),
            applied_at_ms: Set(self.now_ms),
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
                };
                self.store_message(ch, new, cause).await
            }
            Kind::Echo(e) => {
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
                };
                self.store_message(ch, new, cause).await
            }
            Kind::Postback(p) => {
                // Postbacks from before v11.0 carry no mid; the event id is stable for them.
                let external_id = if p.external_id.is_empty() {
                    format!("postback:{cause}")
                } else {
                    p.external_id.clone()
                };
                let new = NewMessage {
                    external_id,
                    contact_external_id: &p.contact_id,
                    contact_name: "",
                    direction: MessageDirection::Inbound,
                    text: p.title.clone(),
                    attachments: &[],
                    sent_at_ms: p.at_ms,
                    is_echo: false,
                    reply_to: String::new(),
                    payload: p.payload.clone(),
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
                    let Some(mut msg) = self.find_message(&ch.id, mid).await? else {
                        continue;
                    };
                    if let Some(next) = DeliveryState::from_i32(msg.status).advance(DeliveryState::Delivered)
                    {
                        msg.status = next.to_i32();
                        self.save_message_status(&msg, cause).await?;
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
            Kind::Handover(_) | Kind::Change(_) => Ok(Disposition::Ignored),
        }
    }

    async fn contact(
        &mut self,
        ch: &channel::Model,
        external_id: &str,
        name: &str,
    ) -> Result<Option<contact::Model>, DbErr> {
        if external_id.is_empty() {
            tracing::warn!(channel_id = %ch.id, "event without a customer id; ignored");
            return Ok(None);
        }
        let key = (ch.id.clone(), external_id.to_string());
        let find = || {
            contact::Entity::find()
                .filter(contact::Column::ChannelId.eq(ch.id.as_str()))
                .filter(contact::Column::ExternalId.eq(external_id))
        };
        let existing = match self.contacts.get(&key) {
            Some(cached) => Some(cached.clone()),
            None => find().one(self.db).await?,
        };
        if let Some(existing) = existing {
            let current = if !name.is_empty() && existing.display_name != name {
                let mut row: contact::ActiveModel = existing.into();
                row.display_name = Set(name.to_string());
                row.update(self.db).await?
            } else {
                existing
            };
            self.contacts.insert(key, current.clone());
            return Ok(Some(current));
        }
        let row = contact::ActiveModel {
            id: Set(new_id()),
            workspace_id: Set(ch.workspace_id.clone()),
            channel_id: Set(ch.id.clone()),
            external_id: Set(external_id.to_string()),
            display_name: Set(name.to_string()),
            delivered_watermark_ms: Set(0),
            read_watermark_ms: Set(0),
            created_at_ms: Set(self.now_ms),
        };
        // DO NOTHING then re-read: another replica may have created the contact concurrently.
        contact::Entity::insert(row)
            .on_conflict_do_nothing_on([contact::Column::ChannelId, contact::Column::ExternalId])
            .exec_without_returning(self.db)
            .await?;
        let stored = find().one(self.db).await?;
        if let Some(c) = &stored {
            self.contacts.insert(key, c.clone());
        }
        Ok(stored)
    }

    async fn open_conversation(
        &mut self,
        ch: &channel::Model,
        contact: &contact::Model,
    ) -> Result<Option<conversation::Model>, DbErr> {
        if let Some(cached) = self.conversations.get(&contact.id) {
            return Ok(Some(cached.clone()));
        }
        let find =
            || conversation::Entity::find().filter(conversation::Column::OpenKey.eq(contact.id.as_str()));
        if let Some(existing) = find().one(self.db).await? {
            self.conversations.insert(contact.id.clone(), existing.clone());
            return Ok(Some(existing));
        }
        let row = conversation::ActiveModel {
            id: Set(new_id()),
            workspace_id: Set(ch.workspace_id.clone()),
            channel_id: Set(ch.id.clone()),
            contact_id: Set(contact.id.clone()),
            status: Set(ConversationStatus::Open as i32),
            open_key: Set(Some(contact.id.clone())),
            last_activity_at_ms: Set(0),
            last_message_preview: Set(String::new()),
            message_count: Set(0),
            created_at_ms: Set(self.now_ms),
            updated_at_ms: Set(self.now_ms),
        };
        conversation::Entity::insert(row)
            .on_conflict_do_nothing_on([conversation::Column::OpenKey])
            .exec_without_returning(self.db)
            .await?;
        let stored = find().one(self.db).await?;
        if let Some(c) = &stored {
            self.conversations.insert(contact.id.clone(), c.clone());
        }
        Ok(stored)
    }

    /// Writes the conversations whose counters changed in this batch.
    async fn flush(&mut self) -> Result<(), DbErr> {
        for contact_id in std::mem::take(&mut self.dirty_conversations) {
            if let Some(c) = self.conversations.get(&contact_id) {
                let mut row: conversation::ActiveModel = c.clone().into();
                row.message_count = Set(c.message_count);
                row.last_activity_at_ms = Set(c.last_activity_at_ms);
                row.last_message_preview = Set(c.last_message_preview.clone());
                row.updated_at_ms = Set(c.updated_at_ms);
                row.update(self.db).await?;
            }
        }
        Ok(())
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
        let Some(conv) = self.open_conversation(ch, &contact).await? else {
            return Err(DbErr::RecordNotFound("conversation just created".into()));
        };
        let status = match new.direction {
            MessageDirection::Outbound => DeliveryState::initial_outbound(
                new.sent_at_ms,
                contact.delivered_watermark_ms,
                contact.read_watermark_ms,
            ),
            _ => DeliveryState::Unspecified,
        };
        let preview = domain::preview(&new.text, new.attachments.first().map(|a| a.r#type.as_str()));
        let stored = message::Model {
            id: new_id(),
            workspace_id: ch.workspace_id.clone(),
            channel_id: ch.id.clone(),
            conversation_id: conv.id.clone(),
            contact_id: contact.id.clone(),
            external_id: new.external_id.clone(),
            direction: new.direction as i32,
            text: new.text,
            attachments_json: convert::attachments_to_json(new.attachments),
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
        };
        let row = stored.clone().into_active_model().reset_all();
        let result = message::Entity::insert(row)
            .on_conflict_do_nothing_on([message::Column::ChannelId, message::Column::ExternalId])
            .exec_without_returning(self.db)
            .await?;
        if !inserted(result) {
            return Ok(Disposition::Duplicate);
        }
        self.effects.created.touch(&stored.id, cause);

        let mut conv = conv;
        conv.message_count += 1;
        // Conversations order by Meta's timestamps: an echo that arrives before the customer message
        // it answers must not make the older message the "latest".
        if new.sent_at_ms >= conv.last_activity_at_ms {
            conv.last_activity_at_ms = new.sent_at_ms;
            conv.last_message_preview = preview;
        }
        conv.updated_at_ms = self.now_ms;
        self.effects.conversations.touch(&conv.id, cause);
        if !self.dirty_conversations.contains(&contact.id) {
            self.dirty_conversations.push(contact.id.clone());
        }
        self.conversations.insert(contact.id.clone(), conv);

        self.apply_deferred(stored).await?;
        Ok(Disposition::Applied)
    }

    async fn find_message(
        &self,
        channel_id: &str,
        external_id: &str,
    ) -> Result<Option<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::ChannelId.eq(channel_id))
            .filter(message::Column::ExternalId.eq(external_id))
            .one(self.db)
            .await
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
            Some(msg) => {
                self.update_message(msg, event).await?;
                Ok(Disposition::Applied)
            }
            None => {
                let row = deferred_update::ActiveModel {
                    event_id: Set(event.event_id.clone()),
                    channel_id: Set(ch.id.clone()),
                    target_external_id: Set(target.to_string()),
                    at_ms: Set(event_time_ms(event)),
                    payload: Set(event.encode_to_vec()),
                    stored_at_ms: Set(self.now_ms),
                };
                deferred_update::Entity::insert(row)
                    .on_conflict_do_nothing()
                    .exec_without_returning(self.db)
                    .await?;
                Ok(Disposition::Deferred)
            }
        }
    }

    /// Applies the updates that arrived before `msg`, in Meta's order.
    async fn apply_deferred(&mut self, msg: message::Model) -> Result<(), DbErr> {
        let deferred = deferred_update::Entity::find()
            .filter(deferred_update::Column::ChannelId.eq(msg.channel_id.as_str()))
            .filter(deferred_update::Column::TargetExternalId.eq(msg.external_id.as_str()))
            .order_by_asc(deferred_update::Column::AtMs)
            .order_by_asc(deferred_update::Column::EventId)
            .all(self.db)
            .await?;
        let mut current = msg;
        for row in deferred {
            match MetaEvent::decode(row.payload.as_slice()) {
                Ok(event) => current = self.update_message(current, &event).await?,
                Err(e) => {
                    tracing::error!(event_id = %row.event_id, error = %e, "stored deferred update does not decode; dropped")
                }
            }
            deferred_update::Entity::delete_by_id(row.event_id)
                .exec(self.db)
                .await?;
        }
        Ok(())
    }

    /// Applies a status, reaction, edit or read receipt to a stored message; returns its new state.
    async fn update_message(
        &mut self,
        msg: message::Model,
        event: &MetaEvent,
    ) -> Result<message::Model, DbErr> {
        let cause = event.event_id.as_str();
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
        if next != msg {
            next.updated_at_ms = self.now_ms;
            let mut row: message::ActiveModel = msg.into();
            row.text = Set(next.text.clone());
            row.edited = Set(next.edited);
            row.edit_seq = Set(next.edit_seq);
            row.edited_at_ms = Set(next.edited_at_ms);
            row.reactions_json = Set(next.reactions_json.clone());
            row.status = Set(next.status);
            row.error_code = Set(next.error_code);
            row.error_message = Set(next.error_message.clone());
            row.updated_at_ms = Set(next.updated_at_ms);
            row.update(self.db).await?;
            self.effects.updated.touch(&next.id, cause);
        }
        if let Some(watermark) = read_watermark {
            if let Some(contact) = contact::Entity::find_by_id(next.contact_id.clone())
                .one(self.db)
                .await?
            {
                self.raise_watermark(contact, DeliveryState::Read, watermark, cause)
                    .await?;
            }
            if let Some(reread) = message::Entity::find_by_id(next.id.clone()).one(self.db).await? {
                return Ok(reread);
            }
        }
        Ok(next)
    }

    async fn save_message_status(&mut self, msg: &message::Model, cause: &str) -> Result<(), DbErr> {
        let mut row: message::ActiveModel = msg.clone().into();
        row.status = Set(msg.status);
        row.updated_at_ms = Set(self.now_ms);
        row.update(self.db).await?;
        self.effects.updated.touch(&msg.id, cause);
        Ok(())
    }

    /// Records a thread-wide receipt and moves every outbound message at or before it forward.
    async fn raise_watermark(
        &mut self,
        contact: contact::Model,
        state: DeliveryState,
        watermark_ms: i64,
        cause: &str,
    ) -> Result<(), DbErr> {
        let (stored, raised) = match state {
            DeliveryState::Read => (contact.read_watermark_ms, contact::Column::ReadWatermarkMs),
            _ => (
                contact.delivered_watermark_ms,
                contact::Column::DeliveredWatermarkMs,
            ),
        };
        if watermark_ms <= stored {
            return Ok(());
        }
        let contact_id = contact.id.clone();
        let mut row: contact::ActiveModel = contact.into();
        match raised {
            contact::Column::ReadWatermarkMs => row.read_watermark_ms = Set(watermark_ms),
            _ => row.delivered_watermark_ms = Set(watermark_ms),
        }
        let updated = row.update(self.db).await?;
        self.contacts
            .insert((updated.channel_id.clone(), updated.external_id.clone()), updated);

        let candidates = message::Entity::find()
            .filter(message::Column::ContactId.eq(contact_id.as_str()))
            .filter(message::Column::Direction.eq(MessageDirection::Outbound as i32))
            .filter(message::Column::SentAtMs.lte(watermark_ms))
            .filter(message::Column::Status.is_in([
                DeliveryState::Pending.to_i32(),
                DeliveryState::Sent.to_i32(),
                DeliveryState::Delivered.to_i32(),
                DeliveryState::Failed.to_i32(),
            ]))
            .all(self.db)
            .await?;
        for mut msg in candidates {
            if let Some(next) = DeliveryState::from_i32(msg.status).advance(state) {
                msg.status = next.to_i32();
                self.save_message_status(&msg, cause).await?;
            }
        }
        Ok(())
    }

    /// Writes the batch's conversation changes, then loads the final state of everything touched and
    /// turns it into `InboxEvent`s. Must be called before the commit (it writes and reads through the
    /// same transaction); the events are published after it.
    pub async fn finish(mut self) -> Result<Vec<Emission>, DbErr> {
        self.flush().await?;
        let Effects {
            created,
            updated,
            conversations,
        } = self.effects;
        let mut emissions = Vec::new();
        let created_set: HashSet<&String> = created.order.iter().collect();
        let message_ids: Vec<String> = created
            .order
            .iter()
            .chain(updated.order.iter().filter(|id| !created_set.contains(id)))
            .cloned()
            .collect();
        let messages: HashMap<String, message::Model> = load_in_chunks(self.db, message_ids, |ids| {
            message::Entity::find().filter(message::Column::Id.is_in(ids))
        })
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();

        for id in &created.order {
            if let Some(m) = messages.get(id) {
                emissions.push(Emission {
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
                });
            }
        }
        for id in updated.order.iter().filter(|id| !created_set.contains(id)) {
            if let (Some(m), Some(cause)) = (messages.get(id), updated.cause.get(id)) {
                emissions.push(Emission {
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
                });
            }
        }

        let convs = load_in_chunks(self.db, conversations.order.clone(), |ids| {
            conversation::Entity::find().filter(conversation::Column::Id.is_in(ids))
        })
        .await?;
        let contact_ids: Vec<String> = convs.iter().map(|c| c.contact_id.clone()).collect();
        let contacts: HashMap<String, contact::Model> = load_in_chunks(self.db, contact_ids, |ids| {
            contact::Entity::find().filter(contact::Column::Id.is_in(ids))
        })
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        let channel_ids: Vec<String> = convs.iter().map(|c| c.channel_id.clone()).collect();
        let kinds: HashMap<String, i32> = load_in_chunks(self.db, channel_ids, |ids| {
            channel::Entity::find().filter(channel::Column::Id.is_in(ids))
        })
        .await?
        .into_iter()
        .map(|c| (c.id, c.kind))
        .collect();
        let by_id: HashMap<&String, &conversation::Model> = convs.iter().map(|c| (&c.id, c)).collect();
        for id in &conversations.order {
            if let (Some(c), Some(cause)) = (by_id.get(id), conversations.cause.get(id)) {
                let kind = kinds
                    .get(&c.channel_id)
                    .copied()
                    .unwrap_or(ChannelKind::Unspecified as i32);
                emissions.push(Emission {
                    cause: cause.clone(),
                    subject_kind: "conversation_updated",
                    workspace_id: c.workspace_id.clone(),
                    msg_id: format!("inbox.conversation_updated.{id}.{cause}"),
                    event: InboxEvent {
                        event_id: format!("inbox.conversation_updated.{id}.{cause}"),
                        workspace_id: c.workspace_id.clone(),
                        at: Some(convert::timestamp(now_ms())),
                        kind: Some(inbox_event::Kind::ConversationUpdated(ev::ConversationUpdated {
                            conversation: Some(convert::conversation(c, contacts.get(&c.contact_id), kind)),
                        })),
                    },
                });
            }
        }
        // The event id doubles as the Nats-Msg-Id, so subscribers can deduplicate too.
        for e in &mut emissions {
            e.event.event_id = e.msg_id.clone();
        }
        Ok(emissions)
    }
}

fn inbox_event(m: &message::Model, kind: inbox_event::Kind) -> InboxEvent {
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

/// `IN (...)` lists stay under SQLite's and PostgreSQL's bind-parameter limits.
async fn load_in_chunks<C, E, F>(db: &C, ids: Vec<String>, query: F) -> Result<Vec<E::Model>, DbErr>
where
    C: ConnectionTrait,
    E: EntityTrait,
    F: Fn(Vec<String>) -> sea_orm::Select<E>,
{
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        out.extend(query(chunk.to_vec()).all(db).await?);
    }
    Ok(out)
}
