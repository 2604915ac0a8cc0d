//! sea-orm entities. Times are Unix milliseconds; ids are UUID v7 strings.

pub mod data_key {
    use sea_orm::entity::prelude::*;

    /// A workspace's data key, wrapped under a KEK. The newest version seals new tokens; older
    /// versions stay until the rotation job has re-sealed every token that used them.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "data_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub kek_version: i32,
        pub wrapped: Vec<u8>,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod channel {
    use sea_orm::entity::prelude::*;

    /// A connected Meta account: Page (Messenger), Instagram account, or WhatsApp phone number.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "channels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        /// `scifer.events.v1.ChannelKind`.
        pub kind: i32,
        pub account_id: String,
        /// The Page of an Instagram account; the WABA of a phone number; empty for a Page.
        pub parent_account_id: String,
        pub display_name: String,
        /// `scifer.events.v1.ChannelState`.
        pub state: i32,
        pub state_reason: String,
        /// Monotonic; carried by every ChannelEvent so consumers keep the newest.
        pub version: i64,
        /// Granted scopes at the last check, comma-separated.
        pub scopes: String,
        pub token_expires_at_ms: Option<i64>,
        pub last_checked_at_ms: Option<i64>,
        pub connected_at_ms: i64,
        pub connected_by: String,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod token {
    use sea_orm::entity::prelude::*;

    /// One channel's access token, sealed under its workspace's data key. The associated data
    /// binds workspace, channel, kind and this row's id, so a blob copied elsewhere cannot be
    /// opened.
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        pub channel_id: String,
        /// "page", "system_user".
        pub kind: String,
        pub sealed: Vec<u8>,
        pub data_key_version: i32,
        pub created_at_ms: i64,
    }

    // Sealed bytes are not secret, but they are noise in logs.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("token::Model")
                .field("id", &self.id)
                .field("channel_id", &self.channel_id)
                .field("kind", &self.kind)
                .field("data_key_version", &self.data_key_version)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod connect_session {
    use sea_orm::entity::prelude::*;

    /// One Facebook Login attempt: the hashed `state` (single use, short-lived), then the sealed
    /// long-lived user token until the user has picked the Pages to connect.
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "connect_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Hex SHA-256 of the `state` sent to Meta; the state itself is never stored.
        #[sea_orm(unique)]
        pub state_hash: String,
        pub workspace_id: String,
        pub user_id: String,
        pub redirect_uri: String,
        pub expires_at_ms: i64,
        pub state_used: bool,
        pub user_token_sealed: Option<Vec<u8>>,
        pub data_key_version: Option<i32>,
        pub created_at_ms: i64,
    }

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("connect_session::Model")
                .field("id", &self.id)
                .field("workspace_id", &self.workspace_id)
                .field("state_used", &self.state_used)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// An event written in the same transaction as the change it announces; the relay publishes
    /// it (JetStream deduplicates on `msg_id`) and then deletes the row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subject: String,
        pub msg_id: String,
        pub event_type: String,
        pub payload: Vec<u8>,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
