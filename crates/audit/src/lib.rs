//! The audit log. Services record privileged actions (logins, member changes, token use, sent
//! messages, deletions, ...) as `scifer.events.v1.AuditEvent`s on the bus with [`emit`]; the gateway
//! stores them with [`consumer`] into its own database ([`store`]), where each workspace's records
//! are append-only and hash-chained ([`chain`]), so a changed, removed or reordered record is
//! detected by [`store::verify_workspace`].
//!
//! No audit field may ever hold a secret: passwords, session or invitation tokens, access tokens,
//! API keys. Record the id of what a secret belongs to instead.

pub mod action;
pub mod chain;
pub mod consumer;
pub mod emit;
mod entry;
pub mod store;

pub use chain::{BreakReason, ChainBroken, ChainReport};
pub use emit::{Audit, AuditEmitter, EmitError};
pub use entry::{Actor, ActorKind, AuditEntry, InvalidEntry, MAX_DETAIL_LEN, MAX_ID_LEN, Outcome, Target};

/// The chain of events that belong to no workspace (sign-up, login and failed login of an
/// account). Generated workspace ids (UUIDs) never start with `_`, so no workspace can take it;
/// only operators read it.
pub const GLOBAL_WORKSPACE: &str = "_global";
