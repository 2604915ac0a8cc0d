//! The bus. Every subject and stream name comes from [`Bus`], so a deployment (or a test) changes
//! its prefix in one place; events are protobuf (`scifer-proto`) published with `Nats-Msg-Id` so
//! JetStream collapses duplicates, and with the W3C trace context in the headers so one trace spans
//! webhook → bus → consumers.

mod consume;
mod publish;
mod subjects;
mod trace;

pub use consume::{Batch, BatchOptions, Delivered, Outcome, consume_batches, decode, durable_consumer};
pub use publish::{PublishError, Publisher};
pub use subjects::{Bus, EnsureStreamError, InvalidPrefix, StreamKind};
pub use trace::{inject_current_context, parent_context};

pub use async_nats;

/// Header naming the protobuf message type of the payload, e.g. `scifer.events.v1.MetaEvent`.
pub const EVENT_TYPE_HEADER: &str = "Scifer-Event-Type";

/// Connects to NATS, naming the server in the error (the usual failure is a server that is down).
pub async fn connect(url: &str) -> Result<async_nats::Client, ConnectError> {
    async_nats::ConnectOptions::new()
        .name(env_service_name())
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| ConnectError {
            url: url.to_string(),
            reason: e.to_string(),
        })
}

fn env_service_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "scifer".into())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}
