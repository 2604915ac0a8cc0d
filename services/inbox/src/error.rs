//! The inbox's one error type. It becomes a `tonic::Status` in exactly one place (`grpc.rs`).

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The gateway always sets `x-scifer-workspace-id`; a call without a valid one did not come
    /// through it, so it is treated as unauthenticated.
    #[error("missing or invalid x-scifer-workspace-id metadata")]
    MissingWorkspace,
    /// Also what an id from another workspace gets, so ids cannot be probed across workspaces.
    #[error("conversation not found")]
    ConversationNotFound,
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("invalid status filter")]
    InvalidStatus,
    #[error("{0}")]
    Invalid(String),
    #[error("message not found")]
    MessageNotFound,
    #[error("{0}")]
    NotRetryable(&'static str),
    /// No credential for token-vault is configured.
    #[error("sending is not set up on this server")]
    SendingNotConfigured,
    #[error("internal error")]
    Internal(#[from] sea_orm::DbErr),
}

impl From<crate::domain::InvalidPageToken> for InboxError {
    fn from(_: crate::domain::InvalidPageToken) -> Self {
        Self::InvalidPageToken
    }
}
