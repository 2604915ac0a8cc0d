use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        context::{PublishAckFuture, PublishErrorKind},
        message::PublishMessage,
    },
};
use bytes::Bytes;

use crate::{EVENT_TYPE_HEADER, trace::inject_current_context};

/// Publishes protobuf events with a message id (so JetStream drops duplicates within its window) and
/// the current trace context.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker is unreachable or did not acknowledge in time: worth retrying later.
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
    /// The message was refused (too large, no stream for the subject): retrying will not help.
    #[error("the bus refused the message: {0}")]
    Refused(String),
}

impl From<async_nats::jetstream::context::PublishError> for PublishError {
    fn from(e: async_nats::jetstream::context::PublishError) -> Self {
        match e.kind() {
            PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe | PublishErrorKind::MaxAckPending => {
                Self::Unavailable(e.to_string())
            }
            PublishErrorKind::MaxPayloadExceeded
            | PublishErrorKind::StreamNotFound
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence => Self::Refused(e.to_string()),
            // Includes "no responders", which is what a missing stream or a server mid-restart says.
            PublishErrorKind::Other => Self::Unavailable(e.to_string()),
        }
    }
}

impl Publisher {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Sends one event and returns the future of its acknowledgement, so callers can pipeline.
    pub async fn send<M: prost::Name>(
        &self,
        subject: String,
        msg_id: &str,
        event: &M,
    ) -> Result<PublishAckFuture, PublishError> {
        self.send_bytes(
            subject,
            msg_id,
            &M::full_name(),
            Bytes::from(event.encode_to_vec()),
        )
        .await
    }

    /// Sends raw bytes with a message id and event-type header.
    pub async fn send_bytes(
        &self,
        subject: String,
        msg_id: &str,
        event_type: &str,
        payload: Bytes,
    ) -> Result<PublishAckFuture, PublishError> {
        self.send_with_headers(subject, msg_id, event_type, HeaderMap::new(), payload)
            .await
    }

    /// As [`Publisher::send_bytes`], with extra headers of the caller's.
    pub async fn send_with_headers(
        &self,
        subject: String,
        msg_id: &str,
        event_type: &str,
        mut headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishAckFuture, PublishError> {
        // The id goes into the header map itself: the builder's `headers()` replaces the whole map,
        // so a `message_id()` set before it would be silently dropped (and dedup with it).
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        headers.insert(EVENT_TYPE_HEADER, event_type);
        inject_current_context(&mut headers);
        let publish = PublishMessage::build().headers(headers).payload(payload);
        Ok(self.js.send_publish(subject, publish).await?)
    }

    /// Sends one event and waits until the stream has stored it.
    pub async fn publish<M: prost::Name>(
        &self,
        subject: String,
        msg_id: &str,
        event: &M,
    ) -> Result<(), PublishError> {
        self.send(subject, msg_id, event).await?.await?;
        Ok(())
    }
}
