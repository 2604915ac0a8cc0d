//! The vault's one error type and the one place it becomes a `tonic::Status`. Messages name what
//! went wrong for the caller; they never carry a token, a key or Meta's raw request.

use tonic::{Code, Status};

use crate::domain::egress::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("channel not found")]
    ChannelNotFound,
    /// The connect link was forged, expired, used twice or belongs to someone else; one answer for
    /// all so a caller learns nothing from probing.
    #[error("the connect session is unknown, expired or already used; start connecting again")]
    ConnectSession,
    #[error("channel needs reconnecting ({0})")]
    NeedsReauth(String),
    /// A token failed a connect-time check (wrong type, missing scope, other app).
    #[error("{0}")]
    TokenRefused(String),
    #[error("{0}")]
    AlreadyConnectedElsewhere(String),
    /// Meta refused a call made during connect or disconnect.
    #[error("Meta refused the request: {0}")]
    Meta(String),
    #[error("the Graph API is unreachable: {0}")]
    GraphUnavailable(String),
    #[error("caller `{0}` may not use this RPC")]
    CallerNotAllowed(String),
    #[error(transparent)]
    Unauthenticated(Box<Status>),
    /// A sealed value did not open: tampering, a wrong or retired key. Deliberately vague.
    #[error("stored key material could not be used")]
    Crypto,
    #[error("the vault's store failed")]
    Store(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<PlanError> for VaultError {
    fn from(e: PlanError) -> Self {
        VaultError::InvalidArgument(e.to_string())
    }
}

impl From<scifer_ids::InvalidWorkspaceId> for VaultError {
    fn from(e: scifer_ids::InvalidWorkspaceId) -> Self {
        VaultError::InvalidArgument(e.to_string())
    }
}

impl From<scifer_vault_crypto::CryptoError> for VaultError {
    fn from(_: scifer_vault_crypto::CryptoError) -> Self {
        VaultError::Crypto
    }
}

impl From<VaultError> for Status {
    fn from(e: VaultError) -> Self {
        let code = match &e {
            VaultError::InvalidArgument(_) | VaultError::ConnectSession | VaultError::TokenRefused(_) => {
                Code::InvalidArgument
            }
            VaultError::ChannelNotFound => Code::NotFound,
            VaultError::NeedsReauth(_) => Code::FailedPrecondition,
            VaultError::AlreadyConnectedElsewhere(_) => Code::AlreadyExists,
            VaultError::Meta(_) => Code::FailedPrecondition,
            VaultError::GraphUnavailable(_) => Code::Unavailable,
            VaultError::CallerNotAllowed(_) => Code::PermissionDenied,
            VaultError::Unauthenticated(status) => return *status.clone(),
            VaultError::Crypto | VaultError::Store(_) | VaultError::Internal(_) => {
                tracing::error!(error = %scifer_plumbing::error_chain(&e), "internal error");
                return Status::internal("internal error");
            }
        };
        Status::new(code, e.to_string())
    }
}
