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
        /// The contact id while the conversation is open, NULL once closed: a unique column, so the
        /// store itself guarantees one open conversation per contact (NULLs never collide).
        pub open_key: Option<String>,
        /// Meta's timestamp of the newest message, not the time it arrived here.
        pub last_activity_at_ms: i64,
        pub last_message_preview: String,
        pub message_count: i64,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
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
