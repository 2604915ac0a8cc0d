//! sea-orm entities. Timestamps are Unix milliseconds in BIGINT columns: Meta's own unit, ordered and
//! compared the same way on SQLite and PostgreSQL. Ids are UUID v7 strings (time-ordered).

pub mod channel {
    use sea_orm::entity::prelude::*;

    /// The inbox's copy of a workspace channel, fed by `ChannelEvent`s (highest version wins).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "channels")]
    pub struct Model {
        /// The channel id token-vault assigned.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        /// `scifer.events.v1.ChannelKind`.
        pub kind: i32,
        /// Page id, Instagram account id or WhatsApp phone_number_id.
        pub account_id: String,
        pub display_name: String,
        /// `scifer.events.v1.ChannelState`.
        pub state: i32,
        pub version: i64,
        pub updated_at_ms: i64,
        /// When the channel was last disconnected (Unix ms, 0 if never). Its data is deleted then;
        /// the row stays as a tombstone so a late, lower version cannot bring the channel back, and
        /// events of its account from at or before this time are dropped (see `crate::apply`).
        pub disconnected_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contact {
    use sea_orm::entity::prelude::*;

    /// A customer as one channel knows them (PSID, IGSID or WhatsApp id).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub external_id: String,
        pub display_name: String,
        /// Messenger receipts are watermarks over the whole thread; they are kept here so an echo
        /// that arrives after its receipt starts with the right status.
        pub delivered_watermark_ms: i64,
        pub read_watermark_ms: i64,
        pub created_at_ms: i64,
        /// The person this contact is, shared by the contacts merged with it; '' until merged
        /// (the contact is then its own person).
        pub person_id: String,
        /// JSON object of string attributes set by the team.
        pub custom_attributes_json: String,
        /// The team set the name: Meta's profile name no longer overwrites it.
        pub name_locked: bool,
    }

    impl Model {
        /// The person this contact is.
        pub fn person(&self) -> &str {
            if self.person_id.is_empty() {
                &self.id
            } else {
                &self.person_id
            }
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod conversation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub contact_id: String,
        /// `scifer.inbox.v1.ConversationStatus`.
        pub status: i32,
        /// The contact id: a unique column, so the store itself guarantees one current
        /// conversation per contact. It stays set whatever the status: a resolved or snoozed
        /// conversation is reopened by the customer's next message rather than replaced (as
        /// Chatwoot does), so the history stays in one place with its assignee. (NULL on no row
        /// written today; NULLs never collide.)
        pub open_key: Option<String>,
        /// Meta's timestamp of the newest message, not the time it arrived here.
        pub last_activity_at_ms: i64,
        pub last_message_preview: String,
        pub message_count: i64,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        /// The agent's user id; '' when unassigned.
        pub assignee_id: String,
        /// '' when no team.
        pub team_id: String,
        /// While SNOOZED: when it reopens (Unix ms); 0 otherwise.
        pub snoozed_until_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub conversation_id: String,
        pub contact_id: String,
        /// mid or wamid; unique per channel, which is what makes redelivery harmless.
        pub external_id: String,
        /// `scifer.inbox.v1.MessageDirection`.
        pub direction: i32,
        pub text: String,
        /// JSON array of `scifer.inbox.v1.Attachment` fields.
        pub attachments_json: String,
        pub sent_at_ms: i64,
        /// `scifer.inbox.v1.DeliveryStatus`.
        pub status: i32,
        pub error_code: i32,
        pub error_message: String,
        pub is_echo: bool,
        /// JSON form of `domain::Reactions` (with tombstones).
        pub reactions_json: String,
        pub edited: bool,
        /// Meta's `num_edit` and timestamp of the edit applied, so older edits never win.
        pub edit_seq: i64,
        pub edited_at_ms: i64,
        pub reply_to_external_id: String,
        pub payload: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        /// `scifer.inbox.v1.AuthorKind` of a message sent through Scifer; 0 otherwise.
        pub author_kind: i32,
        pub author_id: String,
        /// The client's key for a message sent through Scifer (unique per workspace).
        pub idempotency_key: Option<String>,
        /// The send gate's reason code for a failure, and whether retrying can help.
        pub failure_reason: String,
        pub retryable: bool,
        /// Sends made for this message (1 + retries); 0 for messages not sent through Scifer.
        pub attempt: i32,
        /// History, gaps and media: stored from Meta's Conversations API (backfill or
        /// reconciliation), not from a webhook.
        pub reconciled: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod applied_event {
    use sea_orm::entity::prelude::*;

    /// Every MetaEvent applied (or parked waiting for its message), by event id: the idempotency key
    /// for events with no natural key of their own (receipts, reactions, edits).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "applied_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub applied_at_ms: i64,
        /// The channel it was applied to, so a disconnect deletes these rows too (event ids hold
        /// Meta's message and customer ids). '' on rows older than that rule.
        pub channel_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pending_event {
    use sea_orm::entity::prelude::*;

    /// A MetaEvent for an account that no connected channel maps yet; replayed when one does.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pending_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub channel_kind: i32,
        pub account_id: String,
        /// Meta's timestamp: pending events replay in this order.
        pub at_ms: i64,
        /// The encoded `MetaEvent`.
        pub payload: Vec<u8>,
        pub stored_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deferred_update {
    use sea_orm::entity::prelude::*;

    /// A status, reaction, edit or read receipt for a message not stored yet; applied when it arrives.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deferred_updates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub channel_id: String,
        pub target_external_id: String,
        pub at_ms: i64,
        /// The encoded `MetaEvent`.
        pub payload: Vec<u8>,
        pub stored_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod assignment_settings {
    use sea_orm::entity::prelude::*;

    /// A workspace's auto-assignment settings; no row: auto-assignment is off.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assignment_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        pub auto_assign: bool,
        /// 0: no cap.
        pub max_open_per_agent: i32,
        /// The agent the round robin gave the last conversation to; written by the consumer only.
        pub cursor_agent_id: String,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod agent {
    use sea_orm::entity::prelude::*;

    /// An agent's availability for auto-assignment in one workspace.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub agent_id: String,
        pub available: bool,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod conversation_label {
    use sea_orm::entity::prelude::*;

    /// One label on one conversation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversation_labels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub label: String,
        pub workspace_id: String,
        /// The conversation's channel, so a disconnect deletes these with the rest of its data.
        pub channel_id: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod canned_response {
    use sea_orm::entity::prelude::*;

    /// A workspace's saved reply; the short code is unique per workspace.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "canned_responses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub short_code: String,
        pub content: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod read_marker {
    use sea_orm::entity::prelude::*;

    /// How far one user has read one conversation: the (sent_at_ms, id) of the newest message they
    /// have seen, the order messages are shown in.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "read_markers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub agent_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        pub workspace_id: String,
        /// The conversation's channel, so a disconnect deletes these with the rest of its data.
        pub channel_id: String,
        pub read_sent_at_ms: i64,
        pub read_message_id: String,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// --- History, gaps and media ---

pub mod channel_sync {
    use sea_orm::entity::prelude::*;

    /// A Messenger or Instagram channel's history sync with Meta's Conversations API.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "channel_sync")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel_id: String,
        pub workspace_id: String,
        /// Set in the transaction that saw the channel connect; cleared by a successful backfill.
        pub backfill_pending: bool,
        /// When the channel last connected; a run that started before it does not clear
        /// `backfill_pending`.
        pub backfill_requested_at_ms: i64,
        pub backfilled_at_ms: i64,
        pub last_run_at_ms: i64,
        /// "backfill" or "reconcile"; '' before the first run.
        pub last_run_kind: String,
        pub last_success_at_ms: i64,
        /// The newest message time Meta showed us.
        pub high_water_ms: i64,
        pub conversations_seen: i32,
        pub messages_seen: i32,
        pub messages_published: i32,
        /// Why the last run stopped; '' after a success. Never holds a token.
        pub last_error: String,
        /// No run before this time (Meta's retry-after, or the next periodic run).
        pub not_before_ms: i64,
        pub runs: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod media_file {
    use sea_orm::entity::prelude::*;

    /// inbox's copy of one attachment of an inbound message: a job for the media worker until
    /// it is stored, failed or expired.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media_files")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub message_id: String,
        pub attachment_index: i32,
        /// "url" (Messenger/Instagram CDN URL) or "whatsapp" (a media id fetched through the vault).
        pub source_kind: String,
        pub source: String,
        /// `scifer.inbox.v1.MediaState`.
        pub state: i32,
        pub attempts: i32,
        pub next_attempt_at_ms: i64,
        pub failure: String,
        /// Where the bytes are in the media store (`<workspace>/<channel>/<sha256>`); '' until stored.
        pub storage_key: String,
        pub sha256: String,
        pub size_bytes: i64,
        pub content_type: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod media_purge {
    use sea_orm::entity::prelude::*;

    /// A disconnected channel's media prefix, written in the disconnect's transaction and
    /// deleted by the media worker once the objects under it are gone.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media_purges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub prefix: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---- WhatsApp template sync (issue 5) --------------------------------------------------------

pub mod template_waba {
    use sea_orm::entity::prelude::*;

    /// The WABA of each connected WhatsApp channel (from `ChannelEvent.parent_account_id`): its
    /// templates are the WABA's, shared by every phone number of it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "template_wabas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel_id: String,
        pub workspace_id: String,
        pub waba_id: String,
        /// When the WABA's list was last read through this channel; 0 = due (just connected).
        pub synced_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod whatsapp_template {
    use sea_orm::entity::prelude::*;

    /// One template of a WABA in one language, as Graph lists it and status webhooks change it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "whatsapp_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub waba_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub language: String,
        pub template_id: String,
        /// Meta's word: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
        pub status: String,
        pub category: String,
        pub components_json: String,
        pub reason: String,
        /// Meta's time of the status (a webhook's entry time, or when a sync read it): an older
        /// status never overwrites a newer one.
        pub status_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---- Inbox analytics (issue 5) ---------------------------------------------------------------

pub mod analytics_fact {
    use sea_orm::entity::prelude::*;

    /// The append-only activity log the analytics are computed from (see `crate::analytics`).
    /// Written in the transaction of the fact itself; the id is derived from the fact, so a replay
    /// inserts nothing twice.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_facts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub conversation_id: String,
        /// Whom the fact counts for ('' = nobody).
        pub agent_id: String,
        /// `crate::analytics::FactKind` as its word.
        pub kind: String,
        /// `AuthorKind` of an outbound message (0 otherwise).
        pub author_kind: i32,
        pub at_ms: i64,
        /// First-response or resolution time (0 otherwise, or when unknown).
        pub duration_ms: i64,
        /// A failure's reason ('' otherwise).
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod analytics_cycle {
    use sea_orm::entity::prelude::*;

    /// The current open period of a conversation: when it was opened and whether its first
    /// response was counted yet.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_cycles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        pub workspace_id: String,
        pub channel_id: String,
        pub opened_at_ms: i64,
        /// The customer message that opened it (0 when the business opened it: no first response
        /// is measured then).
        pub awaiting_since_ms: i64,
        pub responded: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
