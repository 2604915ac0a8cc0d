use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{PullConsumer, pull},
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// What a handler decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed (or found already processed): acknowledge.
    Ack,
    /// Could not be processed now (a dependency is down): redeliver after the delay.
    Retry(Duration),
    /// Can never be processed (undecodable): terminate redelivery. The handler logs why.
    Reject,
}

/// A fetched message, as the handler sees it.
pub type Delivered = jetstream::Message;

/// One fetch worth of messages; the handler returns one [`Outcome`] per message, in order.
pub type Batch = Vec<Delivered>;

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub max_messages: usize,
    /// How long one fetch waits for messages before returning what it has.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_messages: 256,
            max_wait: Duration::from_millis(200),
        }
    }
}

/// Decodes a protobuf payload.
pub fn decode<M: prost::Message + Default>(msg: &Delivered) -> Result<M, prost::DecodeError> {
    M::decode(msg.payload.as_ref())
}

/// Gets or creates a durable pull consumer.
pub async fn durable_consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
    filter_subject: String,
    ack_wait: Duration,
) -> Result<PullConsumer, async_nats::Error> {
    let config = pull::Config {
        durable_name: Some(name.to_string()),
        filter_subject,
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: 10_000,
        ..Default::default()
    };
    Ok(stream.get_or_create_consumer(name, config).await?)
}

/// Fetches batches from `consumer` and hands each to `handle` until `shutdown` is cancelled. A batch
/// in progress is finished and acknowledged before returning, so SIGTERM loses no work. Messages are
/// acknowledged only after the handler returns, i.e. after its store commit.
pub async fn consume_batches<F, Fut>(
    consumer: PullConsumer,
    options: BatchOptions,
    shutdown: CancellationToken,
    mut handle: F,
) where
    F: FnMut(Batch) -> Fut,
    Fut: std::future::Future<Output = Vec<Outcome>>,
{
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let fetched = tokio::select! {
            () = shutdown.cancelled() => break,
            fetched = fetch(&consumer, &options) => fetched,
        };
        let batch = match fetched {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                batch
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetch from the bus failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let acks: Vec<(Delivered, Outcome)> = {
            let outcomes = handle(batch.clone()).await;
            batch.into_iter().zip(outcomes).collect()
        };
        for (msg, outcome) in acks {
            let kind = match outcome {
                Outcome::Ack => AckKind::Ack,
                Outcome::Retry(delay) => AckKind::Nak(Some(delay)),
                Outcome::Reject => AckKind::Term,
            };
            if let Err(e) = msg.ack_with(kind).await {
                // The message will be redelivered after ack_wait; handlers are idempotent.
                tracing::warn!(error = %e, subject = %msg.subject, "acknowledgement failed");
            }
        }
    }
}

async fn fetch(consumer: &PullConsumer, options: &BatchOptions) -> Result<Batch, async_nats::Error> {
    let mut messages = consumer
        .fetch()
        .max_messages(options.max_messages)
        .expires(options.max_wait)
        .messages()
        .await?;
    let mut batch = Vec::with_capacity(options.max_messages);
    while let Some(msg) = messages.next().await {
        batch.push(msg?);
    }
    Ok(batch)
}
