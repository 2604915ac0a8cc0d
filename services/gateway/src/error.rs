//! The gateway's one error type and the one place it becomes a `tonic::Status`. Callers see a code
//! and a message meant for them; causes inside our system are logged here and never sent.

use std::time::Duration;

use prost::Message as _;
use tonic::{Code, Status};

use scifer_ids::InvalidWorkspaceId;

use crate::domain::{HashError, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    InvalidWorkspace(#[from] InvalidWorkspaceId),
    /// Inbox answered with a non-OK status.
    #[error("inbox answered {}: {}", .0.code(), .0.message())]
    InboxRejected(Status),
    /// No answer came back from inbox: connection refused, reset, protocol error.
    #[error("inbox is unreachable")]
    InboxUnreachable(#[source] Status),
    #[error("inbox did not answer within {0:?}")]
    InboxTimeout(std::time::Duration),
    /// token-vault answered with a non-OK status.
    #[error("token-vault answered {}: {}", .0.code(), .0.message())]
    VaultRejected(Status),
    /// No answer came back from token-vault.
    #[error("token-vault is unreachable")]
    VaultUnreachable(#[source] Status),
    #[error("token-vault did not answer within {0:?}")]
    VaultTimeout(std::time::Duration),
    /// `TOKEN_VAULT_CREDENTIAL` is not set: the gateway cannot call token-vault.
    #[error("TOKEN_VAULT_CREDENTIAL is not set; channel calls are refused")]
    VaultNotConfigured,
    /// The watch subscription could not be set up on the bus.
    #[error("cannot subscribe to inbox events")]
    Bus(#[source] async_nats::Error),
    #[error("the bus did not confirm the subscription within {0:?}")]
    BusTimeout(std::time::Duration),
    /// The subscription ended under the stream (the NATS client was closed).
    #[error("the bus subscription ended")]
    BusClosed,
    /// The watcher's buffer filled up: it reads slower than events arrive.
    #[error("the watch stream fell behind by more than {0} events")]
    WatchOverflow(usize),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A field of the request is malformed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The request body could not be read as a gRPC message.
    #[error("{0}")]
    BadRequestBody(&'static str),
    /// No session, or one that is unknown, revoked or expired. One message for all of them.
    #[error("missing, invalid or expired session")]
    Unauthenticated,
    /// Login with a wrong email or password (which one is not said).
    #[error("wrong email or password")]
    BadCredentials,
    #[error("current_password is wrong")]
    WrongCurrentPassword,
    /// Too many failed logins for the account or the client address.
    #[error("too many failed logins; retry in {} s", .retry_after.as_secs().max(1))]
    TooManyLogins { retry_after: Duration },
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The workspace does not exist or the caller is not a member: callers cannot tell which.
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    AlreadyExists(&'static str),
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// A path the permission table does not list: refused, since nobody decided who may call it.
    #[error("no permission entry for {0}")]
    NoPermissionEntry(String),
    /// A handler found no actor: the auth layer did not run in front of it.
    #[error("no authenticated actor on a request that needs one")]
    MissingActor,
    #[error("the gateway's store failed")]
    Store(#[from] sea_orm::DbErr),
    #[error("password hashing failed")]
    Hash(#[from] HashError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        let chain = scifer_plumbing::error_chain(&error);
        match error {
            GatewayError::InvalidWorkspace(e) => Status::invalid_argument(e.to_string()),
            GatewayError::InboxRejected(status) => inbox_status(status),
            GatewayError::InboxUnreachable(_) => {
                tracing::warn!(error = %chain, "inbox call failed");
                Status::unavailable("the inbox service is unavailable; try again later")
            }
            GatewayError::InboxTimeout(_) => {
                tracing::warn!(error = %chain, "inbox call timed out");
                Status::deadline_exceeded("the inbox service did not answer in time; try again later")
            }
            GatewayError::VaultRejected(status) => vault_status(status),
            GatewayError::VaultUnreachable(_) => {
                tracing::warn!(error = %chain, "token-vault call failed");
                Status::unavailable("the channel service is unavailable; try again later")
            }
            GatewayError::VaultTimeout(_) => {
                tracing::warn!(error = %chain, "token-vault call timed out");
                Status::deadline_exceeded("the channel service did not answer in time; try again later")
            }
            GatewayError::VaultNotConfigured => {
                tracing::error!(error = %chain, "refused a channel call");
                Status::failed_precondition("channel management is not set up on this server")
            }
            GatewayError::Bus(_) | GatewayError::BusTimeout(_) | GatewayError::BusClosed => {
                tracing::warn!(error = %chain, "watch stream failed");
                Status::unavailable("live inbox updates are unavailable; try again later")
            }
            GatewayError::WatchOverflow(_) => {
                tracing::info!(error = %chain, "ending a watch stream that fell behind");
                Status::resource_exhausted(
                    "the watch stream fell behind; reload the inbox and call WatchInbox again",
                )
            }
            GatewayError::ShuttingDown => {
                Status::unavailable("the gateway is shutting down; call WatchInbox again")
            }
            GatewayError::Invalid(e) => Status::invalid_argument(e.to_string()),
            GatewayError::BadRequestBody(message) => Status::invalid_argument(message),
            GatewayError::Unauthenticated | GatewayError::BadCredentials => {
                Status::unauthenticated(error.to_string())
            }
            GatewayError::WrongCurrentPassword => Status::invalid_argument(error.to_string()),
            GatewayError::TooManyLogins { retry_after } => too_many_logins(retry_after),
            GatewayError::PermissionDenied(message) => Status::permission_denied(message),
            GatewayError::WorkspaceNotFound => Status::not_found(error.to_string()),
            GatewayError::NotFound(message) => Status::not_found(message),
            GatewayError::AlreadyExists(message) => Status::already_exists(message),
            GatewayError::FailedPrecondition(message) => Status::failed_precondition(message),
            GatewayError::NoPermissionEntry(_) => {
                tracing::error!(error = %chain, "refused a call missing from the permission table");
                Status::permission_denied("this call is not permitted")
            }
            GatewayError::MissingActor
            | GatewayError::Store(_)
            | GatewayError::Hash(_)
            | GatewayError::Internal(_) => {
                tracing::error!(error = %chain, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// `google.rpc.Status` and `google.rpc.RetryInfo`, for the details of RESOURCE_EXHAUSTED: the
/// standard way gRPC clients learn how long to wait.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) retry_delay: Option<prost_types::Duration>,
}

pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

fn too_many_logins(retry_after: Duration) -> Status {
    let seconds = retry_after.as_secs().max(1);
    let message = format!("too many failed logins; retry in {seconds} s");
    let retry = RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    };
    let details = RpcStatus {
        code: Code::ResourceExhausted as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: RETRY_INFO_TYPE_URL.into(),
            value: retry.encode_to_vec(),
        }],
    };
    Status::with_details(Code::ResourceExhausted, message, details.encode_to_vec().into())
}

/// Whether a status code describes the caller's request (NOT_FOUND, INVALID_ARGUMENT, ...), so an
/// internal service's message for it is written for callers; the others describe a fault on our
/// side, whose message may hold internal detail.
fn describes_request(code: Code) -> bool {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::DeadlineExceeded => true,
        Code::Ok
        | Code::Unknown
        | Code::Internal
        | Code::DataLoss
        | Code::Unimplemented
        | Code::Unauthenticated
        | Code::Unavailable => false,
    }
}

/// Inbox's status as the caller sees it. The code always passes through unchanged. Codes that
/// describe the caller's request keep inbox's message; codes that describe a fault on our side get
/// a generic message, and inbox's own message is logged instead.
fn inbox_status(status: Status) -> Status {
    let code = status.code();
    if describes_request(code) {
        return Status::new(code, status.message());
    }
    tracing::warn!(code = ?code, message = status.message(), "inbox reported a failure");
    let message = match code {
        Code::Unavailable => "the inbox service is unavailable; try again later",
        _ => "the inbox service failed",
    };
    // OK as an error cannot come from tonic's client; should it ever, the caller must not read it
    // as success.
    let code = if code == Code::Ok { Code::Internal } else { code };
    Status::new(code, message)
}

/// token-vault's status as the caller sees it: as for inbox, except UNAUTHENTICATED. The vault
/// says that about the gateway's own service credential, not the caller's session: passing it on
/// would tell the frontend to log the user out, so it becomes INTERNAL, logged at error level for
/// the operator.
fn vault_status(status: Status) -> Status {
    let code = status.code();
    if describes_request(code) {
        return Status::new(code, status.message());
    }
    let (code, message) = match code {
        Code::Unauthenticated => {
            tracing::error!(
                message = status.message(),
                "token-vault refused the gateway's service identity; check TOKEN_VAULT_CREDENTIAL \
                 against the vault's SERVICE_CREDENTIALS"
            );
            return Status::internal("internal error");
        }
        Code::Unavailable => (code, "the channel service is unavailable; try again later"),
        Code::Ok => (Code::Internal, "the channel service failed"),
        _ => (code, "the channel service failed"),
    };
    tracing::warn!(code = ?status.code(), message = status.message(), "token-vault reported a failure");
    Status::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_from_inbox_keep_code_and_message() {
        let status: Status = GatewayError::InboxRejected(Status::not_found("conversation not found")).into();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "conversation not found");
    }

    #[test]
    fn inbox_faults_keep_their_code_but_not_their_detail() {
        let status: Status =
            GatewayError::InboxRejected(Status::internal("db password wrong at 10.0.0.3")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("10.0.0.3"));
    }

    #[test]
    fn request_errors_from_the_vault_keep_code_and_message() {
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::NotFound,
            Code::PermissionDenied,
        ] {
            let status: Status = GatewayError::VaultRejected(Status::new(code, "the vault says why")).into();
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "the vault says why");
        }
    }

    #[test]
    fn the_vault_refusing_the_gateways_credential_is_internal_not_unauthenticated() {
        let status: Status =
            GatewayError::VaultRejected(Status::unauthenticated("service credential missing or not valid"))
                .into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn vault_faults_keep_their_code_but_not_their_detail() {
        let status: Status =
            GatewayError::VaultRejected(Status::internal("kek v3 missing at 10.0.0.4")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("10.0.0.4"));
        let status: Status =
            GatewayError::VaultUnreachable(Status::unavailable("tcp connect error: 127.0.0.1:9084")).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("127.0.0.1"), "{}", status.message());
    }

    #[test]
    fn too_many_logins_carries_retry_info_in_the_details() {
        let status: Status = GatewayError::TooManyLogins {
            retry_after: Duration::from_secs(90),
        }
        .into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("90 s"), "{}", status.message());
        let details = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(details.details[0].type_url, RETRY_INFO_TYPE_URL);
        let retry = RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
        assert_eq!(retry.retry_delay.unwrap().seconds, 90);
    }

    #[test]
    fn transport_failures_become_unavailable_without_detail() {
        let status: Status =
            GatewayError::InboxUnreachable(Status::unavailable("tcp connect error: 127.0.0.1:9082")).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("127.0.0.1"), "{}", status.message());
    }
}
