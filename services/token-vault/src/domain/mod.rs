//! Pure rules of the vault, testable without I/O: who may call what, which scopes and webhook
//! fields each channel kind needs, how an egress action becomes a Graph request, and how Meta's
//! errors change a channel's state.

pub mod caller;
pub mod egress;
pub mod scopes;
pub mod state;
