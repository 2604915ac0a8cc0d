//! Automation and handoff (issue 5): rules, settings and per-conversation state. Rows of their
//! own, never written back whole by the consumers' batches, so writing them needs no batch copy to
//! be reloaded; per-conversation rows carry the channel id so a disconnect deletes them.

pub mod automation_rule {
    use sea_orm::entity::prelude::*;

    /// One rule of a workspace, `scifer_automation::Rule` as validated JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "automation_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        /// Rules run in ascending position, then creation order.
        pub position: i32,
        pub rule_json: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod automation_settings {
    use sea_orm::entity::prelude::*;

    /// A workspace's automation settings; no row: defaults (always open, default limits, no
    /// webhook secret).
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "automation_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        /// `scifer_automation::BusinessHours` as JSON; '' for none.
        pub business_hours_json: String,
        pub max_replies_per_conversation: i32,
        pub rate_limit_window_secs: i32,
        /// The HMAC key of outgoing webhooks (hex); '' until rotated the first time.
        pub webhook_secret: String,
        pub updated_at_ms: i64,
    }

    // The secret stays out of logs.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("automation_settings::Model")
                .field("workspace_id", &self.workspace_id)
                .field("business_hours_json", &self.business_hours_json)
                .field("max_replies_per_conversation", &self.max_replies_per_conversation)
                .field("rate_limit_window_secs", &self.rate_limit_window_secs)
                .field("webhook_secret", &"***")
                .finish()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod conversation_automation {
    use sea_orm::entity::prelude::*;

    /// Who handles a conversation, and what Meta told us about its thread. No row: automation,
    /// owner unknown, no away message sent yet.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversation_automation")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        pub workspace_id: String,
        pub channel_id: String,
        /// `scifer.inbox.v1.HandlerKind`.
        pub handler: i32,
        /// Messenger/Instagram: the thread owner as the last handover event named it.
        pub thread_owner_app_id: String,
        /// When the away message last went out (Unix ms); 0: never.
        pub last_away_at_ms: i64,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod automation_idle {
    use sea_orm::entity::prelude::*;

    /// The idle stretch (the time of the last message that was not automation's) for which the
    /// idle rules of `minutes` last fired on a conversation: they fire once per stretch.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "automation_idle")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub minutes: i32,
        pub channel_id: String,
        pub stretch_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod standby_message {
    use sea_orm::entity::prelude::*;

    /// A customer message Meta delivered on `standby` (another app owned the thread): stored like
    /// any, but never answered by automation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "standby_messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub external_id: String,
        pub at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
