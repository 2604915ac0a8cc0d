//! The splitter: turns each stored raw delivery into one bus event per item.
//!
//! It runs as the durable pull consumer [`CONSUMER_NAME`] on the INGEST stream, so a delivery that
//! was acknowledged to Meta but not split yet (the process died right after answering 200) is split
//! when any instance comes back. Replay reuses [`Splitter::split_batch`] on older messages.

use std::{
    future::IntoFuture,
    sync::Arc,
    time::{Duration, SystemTime},
};

use futures::future::try_join_all;
use prost_types::Timestamp;
use scifer_events::{Delivered, Outcome, PublishError, async_nats::jetstream::context::PublishAckFuture};
use scifer_proto::events::v1::{ChannelKind, MetaEvent, meta_event::Kind};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    error::BusError,
    ingest::{Destination, IngestLog, RECEIVED_AT_HEADER, delivery_id},
    stats::Stats,
};

/// Durable name of the splitter's consumer on the INGEST stream.
pub const CONSUMER_NAME: &str = "ingest-splitter";
/// How long a failed delivery waits before the stream hands it out again.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Splitter {
    log: IngestLog,
    stats: Arc<Stats>,
}

/// What splitting one raw message produced, once every publish was acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    pub events: u64,
    pub unhandled: u64,
    /// The message could not be split and went to quarantine instead.
    pub quarantined: bool,
}

/// A raw message whose publishes are sent and whose acknowledgements are pending.
struct InFlight {
    acks: Vec<PublishAckFuture>,
    published: Published,
}

impl Splitter {
    pub fn new(log: IngestLog, stats: Arc<Stats>) -> Self {
        Self { log, stats }
    }

    /// The consumer handler: one [`Outcome`] per message, in order.
    pub async fn handle_batch(&self, batch: Vec<Delivered>) -> Vec<Outcome> {
        self.split_batch(&batch)
            .await
            .into_iter()
            .map(|result| match result {
                Ok(_) => Outcome::Ack,
                // The whole delivery is split again later; event ids make the republish a no-op.
                Err(_) => Outcome::Retry(RETRY_DELAY),
            })
            .collect()
    }

    /// Splits and publishes every message of `batch`, pipelined: all publishes of the batch are
    /// sent before any acknowledgement is awaited, then each message's are awaited (bounded by the
    /// publish timeout). One result per message, in order.
    pub async fn split_batch(&self, batch: &[Delivered]) -> Vec<Result<Published, BusError>> {
        let mut in_flight = Vec::with_capacity(batch.len());
        for msg in batch {
            let span = tracing::info_span!(
                "split",
                subject = %msg.subject,
                delivery_id = tracing::field::Empty,
                events = tracing::field::Empty,
            );
            // Continue the trace of the webhook request that stored this delivery.
            let _ = span.set_parent(scifer_events::parent_context(msg.headers.as_ref()));
            let sent = self.send(msg).instrument(span).await;
            in_flight.push(sent);
        }
        let deadline = tokio::time::Instant::now() + self.log.timeout();
        let mut results = Vec::with_capacity(in_flight.len());
        for sent in in_flight {
            let result = match sent {
                Ok(InFlight { acks, published }) => {
                    match tokio::time::timeout_at(
                        deadline,
                        try_join_all(acks.into_iter().map(IntoFuture::into_future)),
                    )
                    .await
                    {
                        Ok(Ok(_)) => {
                            self.stats.record_published(published.events, published.unhandled);
                            Ok(published)
                        }
                        Ok(Err(e)) => Err(BusError::Publish(PublishError::from(e))),
                        Err(_) => Err(BusError::Timeout(self.log.timeout())),
                    }
                }
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                tracing::warn!(error = %e, "publishing a split delivery failed; it will be retried");
            }
            results.push(result);
        }
        results
    }

    /// Splits one raw message and sends its events without waiting for acknowledgements.
    async fn send(&self, msg: &Delivered) -> Result<InFlight, BusError> {
        let id = delivery_id(&msg.payload);
        tracing::Span::current().record("delivery_id", id.as_str());
        let received_at = received_at(msg);
        let split = match scifer_meta::split_delivery(&msg.payload, &id, received_at) {
            Ok(split) => split,
            Err(malformed) => {
                // The hot path only stores bodies that pass the same check, so this is a message
                // written by something else (or an older build). Keep it where a human looks.
                tracing::error!(delivery_id = %id, reason = %malformed, "stored delivery cannot be split; quarantining");
                self.log
                    .append(Destination::Quarantine, &id, &received_at, msg.payload.clone())
                    .await?;
                return Ok(InFlight {
                    acks: Vec::new(),
                    published: Published {
                        quarantined: true,
                        ..Published::default()
                    },
                });
            }
        };
        tracing::Span::current().record("events", split.events.len() + split.unhandled.len());
        let publisher = self.log.publisher();
        let bus = self.log.bus();
        let mut acks = Vec::with_capacity(split.events.len() + split.unhandled.len());
        for event in &split.events {
            let subject = bus.meta_event(channel_of(event), kind_token(event));
            acks.push(publisher.send(subject, &event.event_id, event).await?);
        }
        for item in &split.unhandled {
            acks.push(publisher.send(bus.meta_unhandled(), &item.event_id, item).await?);
        }
        Ok(InFlight {
            acks,
            published: Published {
                events: split.events.len() as u64,
                unhandled: split.unhandled.len() as u64,
                quarantined: false,
            },
        })
    }
}

/// The receipt time the hot path recorded, else the stream's store time (a message written
/// without the header), else now.
pub fn received_at(msg: &Delivered) -> Timestamp {
    let from_header = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(RECEIVED_AT_HEADER))
        .and_then(|v| v.as_str().parse::<Timestamp>().ok());
    from_header
        .or_else(|| stored_at(msg))
        .unwrap_or_else(|| Timestamp::from(SystemTime::now()))
}

/// When the stream stored the message.
pub fn stored_at(msg: &Delivered) -> Option<Timestamp> {
    let nanos = msg.info().ok()?.published.unix_timestamp_nanos();
    Some(Timestamp {
        seconds: i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?,
        nanos: i32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?,
    })
}

fn channel_of(event: &MetaEvent) -> ChannelKind {
    ChannelKind::try_from(event.channel_kind).unwrap_or(ChannelKind::Unspecified)
}

/// The last subject token of a MetaEvent: what consumers filter on.
pub fn kind_token(event: &MetaEvent) -> &'static str {
    match &event.kind {
        Some(Kind::Message(_)) => "message",
        Some(Kind::Echo(_)) => "echo",
        Some(Kind::Delivery(_)) => "delivery",
        Some(Kind::Read(_)) => "read",
        Some(Kind::Reaction(_)) => "reaction",
        Some(Kind::Edit(_)) => "edit",
        Some(Kind::Postback(_)) => "postback",
        Some(Kind::WhatsappStatus(_)) => "status",
        Some(Kind::Handover(_)) => "handover",
        Some(Kind::Change(_)) => "change",
        // Published by inbox, never split from a delivery; named here so the match stays whole.
        Some(Kind::OutboundResult(_)) => "outbound_result",
        // WhatsApp template sync (issue 5): `<prefix>.meta.whatsapp.template_status`.
        Some(Kind::TemplateStatus(_)) => "template_status",
        // split_delivery always sets a kind; an event without one still gets a subject.
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use scifer_proto::events::v1::{InboundMessage, OutboundEcho, WhatsAppStatus};

    use super::*;

    #[test]
    fn subjects_name_the_event_kind() {
        let with = |kind| MetaEvent {
            kind: Some(kind),
            ..MetaEvent::default()
        };
        assert_eq!(
            kind_token(&with(Kind::Message(InboundMessage::default()))),
            "message"
        );
        assert_eq!(kind_token(&with(Kind::Echo(OutboundEcho::default()))), "echo");
        assert_eq!(
            kind_token(&with(Kind::WhatsappStatus(WhatsAppStatus::default()))),
            "status"
        );
        assert_eq!(
            kind_token(&with(Kind::TemplateStatus(Default::default()))),
            "template_status"
        );
        assert_eq!(kind_token(&MetaEvent::default()), "unknown");
    }
}
