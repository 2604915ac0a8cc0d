//! Calling an internal service (inbox, token-vault): one deadline around the call, and the one
//! rule that tells a status the service sent from one the client made up.

use std::{future::Future, time::Duration};

use tonic::Status;

/// How an internal call failed.
#[derive(Debug)]
pub enum Failure {
    /// The service answered with a non-OK status.
    Rejected(Status),
    /// No answer came back: connection refused, reset, protocol error.
    Unreachable(Status),
    /// No answer within the deadline.
    TimedOut,
}

/// Awaits `call` for at most `timeout`.
pub async fn call<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(Failure::TimedOut),
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(classify(status)),
    }
}

/// A status the service sent carries no source; one the client made up carries the error behind
/// it: the channel enforcing our `grpc-timeout` (a timeout, like ours around the call), or a
/// transport failure (refused, reset, h2 protocol error).
pub fn classify(status: Status) -> Failure {
    let mut cause = std::error::Error::source(&status);
    if cause.is_none() {
        return Failure::Rejected(status);
    }
    while let Some(error) = cause {
        if error.is::<tonic::TimeoutExpired>() {
            return Failure::TimedOut;
        }
        cause = error.source();
    }
    Failure::Unreachable(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_the_service_sent_is_a_rejection() {
        let failure = classify(Status::not_found("conversation not found"));
        assert!(matches!(failure, Failure::Rejected(s) if s.code() == tonic::Code::NotFound));
    }

    #[test]
    fn the_channel_enforcing_grpc_timeout_is_a_timeout() {
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(matches!(classify(status), Failure::TimedOut));
    }

    #[test]
    fn a_transport_failure_is_unreachable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(refused));
        assert!(matches!(classify(status), Failure::Unreachable(_)));
    }
}
