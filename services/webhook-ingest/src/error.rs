//! The service's one error type, with exactly one mapping to an HTTP status and one to a gRPC
//! status. What callers see is the `Display` text, which never carries secrets, MACs, bodies or
//! internal causes; causes are logged where the error is answered.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use scifer_meta::InvalidSignature;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("X-Hub-Signature-256 does not authenticate this body")]
    InvalidSignature(InvalidSignature),
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("webhook verification refused")]
    HandshakeRefused,
    #[error("cannot read the request body")]
    UnreadableBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The bus did not store (or did not confirm storing) a message in time. Retrying later is the
    /// remedy, which is what Meta does on a 503.
    #[error("the ingest log is unavailable; retry later")]
    Unavailable(#[source] BusError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a write to the bus failed; logged, never shown to callers.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Publish(#[from] scifer_events::PublishError),
    #[error("no acknowledgement within {0:?}")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Api(String),
}

impl Error {
    pub fn http_status(&self) -> StatusCode {
        match self {
            Error::MissingSignature => StatusCode::UNAUTHORIZED,
            Error::InvalidSignature(_) | Error::HandshakeRefused => StatusCode::FORBIDDEN,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnreadableBody(_) | Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn log(&self) {
        let chain = scifer_plumbing::error_chain(self);
        match self {
            Error::Unavailable(_) | Error::Internal(_) => tracing::error!(error = %chain, "request failed"),
            _ => tracing::info!(error = %chain, "request refused"),
        }
    }
}

impl From<scifer_meta::SignatureError> for Error {
    fn from(e: scifer_meta::SignatureError) -> Self {
        match e {
            scifer_meta::SignatureError::Missing => Error::MissingSignature,
            scifer_meta::SignatureError::Invalid(why) => Error::InvalidSignature(why),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        (
            self.http_status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.log();
        let message = e.to_string();
        match e {
            Error::MissingSignature => tonic::Status::unauthenticated(message),
            Error::InvalidSignature(_) | Error::HandshakeRefused => tonic::Status::permission_denied(message),
            Error::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            Error::UnreadableBody(_) | Error::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            Error::Unavailable(_) => tonic::Status::unavailable(message),
            Error::Internal(_) => tonic::Status::internal(message),
        }
    }
}
