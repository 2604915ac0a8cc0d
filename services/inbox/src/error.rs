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
    #[error("canned response not found")]
    CannedResponseNotFound,
    #[error("contact not found")]
    ContactNotFound,
    #[error("{0}")]
    AlreadyExists(&'static str),
    /// The request is valid but the state does not allow it (a limit reached).
    #[error("{0}")]
    Precondition(&'static str),
    #[error("{0}")]
    NotRetryable(&'static str),
    /// What the gateway's guard on the request does not allow this caller.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The call must come from a person (`x-scifer-actor: user:<id>`, set by the gateway).
    #[error("missing or invalid x-scifer-actor metadata")]
    MissingActor,
    /// No credential for token-vault is configured.
    #[error("sending is not set up on this server")]
    SendingNotConfigured,
    /// No suggestion: the provider is not configured, unreachable, or refused.
    #[error(transparent)]
    Ai(scifer_ai::AiError),
    /// A channel id not of this workspace (or disconnected).
    #[error("channel not found")]
    ChannelNotFound,
    #[error("internal error")]
    Internal(#[from] sea_orm::DbErr),
    // Automation and handoff (issue 5).
    #[error("rule not found")]
    RuleNotFound,
    /// Meta (or token-vault on the way) did not pass or take the thread; nothing changed.
    #[error("{0}")]
    ThreadControl(String),
    // --- History, gaps and media ---
    #[error("attachment not found")]
    AttachmentNotFound,
    /// The attachment has no stored copy (yet): pending, failed or expired.
    #[error("{0}")]
    MediaNotStored(String),
    /// The media storage failed; the cause is logged, never returned.
    #[error("media storage error")]
    MediaStorage(#[source] object_store::Error),
}

impl From<crate::domain::InvalidPageToken> for InboxError {
    fn from(_: crate::domain::InvalidPageToken) -> Self {
        Self::InvalidPageToken
    }
}
