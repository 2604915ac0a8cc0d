//! The ingest log: the INGEST stream, where every signed raw delivery is appended once, byte for
//! byte, before Meta gets its 200. It is the service's only durable write on the hot path.

use std::time::Duration;

use bytes::Bytes;
use prost_types::Timestamp;
use scifer_events::{Bus, PublishError, Publisher, async_nats::HeaderMap};
use scifer_proto::events::v1::ChannelKind;

use crate::error::BusError;

/// Header holding the receipt time (RFC 3339, UTC) of a raw delivery. The stream's own timestamp is
/// the store time, a little later; the splitter and Replay use this one.
pub const RECEIVED_AT_HEADER: &str = "Scifer-Received-At";
/// `Scifer-Event-Type` of a raw delivery: Meta's JSON as received, not protobuf.
pub const RAW_DELIVERY_TYPE: &str = "meta.webhook.delivery";
/// `Scifer-Event-Type` of a quarantined body: signed by Meta, yet not a JSON object.
pub const QUARANTINED_TYPE: &str = "meta.webhook.quarantined";

/// Where in the ingest log a body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `ingest.raw.<channel>`, from the body's `object` (`other` when unknown or missing).
    Raw(Option<ChannelKind>),
    Quarantine,
}

/// Hex SHA-256 of a raw body: the delivery's id and its `Nats-Msg-Id`, so Meta's retries of the same
/// delivery collapse in the stream's duplicate window.
pub fn delivery_id(body: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, body))
}

#[derive(Clone)]
pub struct IngestLog {
    publisher: Publisher,
    bus: Bus,
    timeout: Duration,
}

impl IngestLog {
    pub fn new(publisher: Publisher, bus: Bus, timeout: Duration) -> Self {
        Self {
            publisher,
            bus,
            timeout,
        }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Appends `body` and waits for the stream's acknowledgement, for at most the publish timeout
    /// (sending included: while NATS is down the client may hold the message instead of failing).
    /// Only an `Ok` means the body is stored. A body sent but not confirmed in time may still be
    /// stored later; Meta's retry then carries the same `Nats-Msg-Id` and collapses into it.
    pub async fn append(
        &self,
        destination: Destination,
        delivery_id: &str,
        received_at: &Timestamp,
        body: Bytes,
    ) -> Result<(), BusError> {
        let (subject, event_type) = match destination {
            Destination::Raw(kind) => (self.bus.ingest_raw(kind), RAW_DELIVERY_TYPE),
            Destination::Quarantine => (self.bus.ingest_quarantine(), QUARANTINED_TYPE),
        };
        let mut headers = HeaderMap::new();
        headers.insert(RECEIVED_AT_HEADER, received_at.to_string().as_str());
        let write = async {
            let ack = self
                .publisher
                .send_with_headers(subject, delivery_id, event_type, headers, body)
                .await?;
            ack.await.map_err(PublishError::from)
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(e)) => Err(BusError::Publish(e)),
            Err(_elapsed) => Err(BusError::Timeout(self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_id_is_the_hex_sha256_of_the_exact_bytes() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            delivery_id(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(delivery_id(br#"{"a":"\/"}"#), delivery_id(br#"{"a":"/"}"#));
    }
}
