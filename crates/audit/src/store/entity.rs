//! sea-orm entities. Times are Unix milliseconds in BIGINT columns, hashes lowercase hex, actor
//! kinds and outcomes their stable names (`ActorKind::as_str`, `Outcome::as_str`): the stored
//! strings are exactly what the chain hashes, so a row can be re-verified without this crate's
//! enums.

pub mod audit_record {
    use sea_orm::entity::prelude::*;

    use crate::chain::{self, BreakReason, ChainBroken};

    /// One audit record. Rows are only ever inserted, never updated or deleted.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_records")]
    pub struct Model {
        /// UUID v7, assigned when stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub workspace_id: String,
        /// 1, 2, 3, ... within the workspace; unique with `workspace_id`.
        pub sequence: i64,
        /// The `AuditEvent`'s id; unique, which makes appends idempotent.
        pub event_id: String,
        pub actor_kind: String,
        pub actor_id: String,
        pub action: String,
        pub target_kind: String,
        pub target_id: String,
        pub at_ms: i64,
        pub trace_id: String,
        pub outcome: String,
        pub detail: String,
        pub service: String,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The row as the chain sees it; a hash column that is not 64 hex digits breaks the chain.
        pub fn chain_record(&self) -> Result<chain::Record, ChainBroken> {
            let malformed = || ChainBroken {
                sequence: self.sequence,
                reason: BreakReason::MalformedHash,
            };
            Ok(chain::Record {
                workspace_id: self.workspace_id.clone(),
                sequence: self.sequence,
                event_id: self.event_id.clone(),
                actor_kind: self.actor_kind.clone(),
                actor_id: self.actor_id.clone(),
                action: self.action.clone(),
                target_kind: self.target_kind.clone(),
                target_id: self.target_id.clone(),
                at_ms: self.at_ms,
                trace_id: self.trace_id.clone(),
                outcome: self.outcome.clone(),
                detail: self.detail.clone(),
                service: self.service.clone(),
                prev_hash: parse_hash(&self.prev_hash).ok_or_else(malformed)?,
                hash: parse_hash(&self.hash).ok_or_else(malformed)?,
            })
        }

        pub(crate) fn from_chain(id: String, r: chain::Record) -> Self {
            Self {
                id,
                workspace_id: r.workspace_id,
                sequence: r.sequence,
                event_id: r.event_id,
                actor_kind: r.actor_kind,
                actor_id: r.actor_id,
                action: r.action,
                target_kind: r.target_kind,
                target_id: r.target_id,
                at_ms: r.at_ms,
                trace_id: r.trace_id,
                outcome: r.outcome,
                detail: r.detail,
                service: r.service,
                prev_hash: hex::encode(r.prev_hash),
                hash: hex::encode(r.hash),
            }
        }
    }

    pub(crate) fn parse_hash(hex_str: &str) -> Option<chain::Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).ok()?;
        Some(out)
    }
}

pub mod audit_head {
    use sea_orm::entity::prelude::*;

    /// The end of a workspace's chain, updated in the same transaction as every append. Appenders
    /// lock this row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has one writer), so concurrent
    /// appenders of one workspace take turns; verification compares it with the newest record.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        /// The last sequence appended (0 before the first).
        pub sequence: i64,
        /// Its hash, hex (the genesis hash before the first).
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
