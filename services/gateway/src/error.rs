//! The gateway's one error type and the one place it becomes a `tonic::Status`. Callers see a code
//! and a message meant for them; causes inside our system are logged here and never sent.

use tonic::{Code, Status};

use scifer_ids::InvalidWorkspaceId;

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
            GatewayError::Internal(_) => {
                tracing::error!(error = %chain, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Inbox's status as the caller sees it. The code always passes through unchanged. Codes that
/// describe the caller's request (NOT_FOUND, INVALID_ARGUMENT, ...) keep inbox's message, which is
/// written for callers; codes that describe a fault on our side get a generic message, and inbox's
/// own message is logged instead, in case it holds internal detail.
fn inbox_status(status: Status) -> Status {
    let code = status.code();
    let describes_request = match code {
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
    };
    if describes_request {
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
    fn transport_failures_become_unavailable_without_detail() {
        let status: Status =
            GatewayError::InboxUnreachable(Status::unavailable("tcp connect error: 127.0.0.1:9082")).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("127.0.0.1"), "{}", status.message());
    }
}
