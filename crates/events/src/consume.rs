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
    /// The most messages handed to the handler at once (one store transaction).
    pub max_messages: usize,
    /// After the first message of a batch arrives, how long to wait for more before handling it.
    /// Zero (the default) takes only what is already buffered: batches then grow by themselves
    /// under load (messages pile up while the previous batch commits) and stay small, with no added
    /// latency, when traffic is light.
    pub linger: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_messages: 256,
            linger: Duration::ZERO,
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

/// Pulls from `consumer` continuously and hands batches to `handle` until `shutdown` is cancelled. A
/// batch in progress is finished and acknowledged before returning, so SIGTERM loses no work.
/// Messages are acknowledged only after the handler returns, i.e. after its store commit.
///
/// One long-lived pull (`Consumer::stream`) keeps messages flowing ahead of the handler; a batch is
/// the first message that arrives plus whatever else is already buffered (see
/// [`BatchOptions::linger`]). Unlike a loop of no-wait fetches, an idle consumer waits on the server
/// instead of polling it.
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
    'connect: while !shutdown.is_cancelled() {
        let opened = consumer
            .stream()
            .max_messages_per_batch(options.max_messages.max(1))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match opened {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull from the bus; retrying");
                if sleep_or_shutdown(&shutdown, &mut backoff).await {
                    break;
                }
                continue;
            }
        };
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => break 'connect,
                next = messages.next() => next,
            };
            let batch = match first {
                Some(Ok(msg)) => gather(msg, &mut messages, &options).await,
                Some(Err(e)) => {
                    // Missed heartbeats, a server restart or a deleted consumer: open a new pull.
                    tracing::warn!(error = %e, "pull from the bus interrupted; reopening");
                    if sleep_or_shutdown(&shutdown, &mut backoff).await {
                        break 'connect;
                    }
                    continue 'connect;
                }
                None => continue 'connect,
            };
            backoff = Duration::from_millis(100);
            let outcomes = handle(batch.clone()).await;
            for (msg, outcome) in batch.into_iter().zip(outcomes) {
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
}

/// The first message plus what else is ready (or arrives within the linger), up to the maximum.
async fn gather(first: Delivered, messages: &mut pull::Stream, options: &BatchOptions) -> Batch {
    let mut batch = Vec::with_capacity(options.max_messages);
    batch.push(first);
    let deadline = tokio::time::Instant::now() + options.linger;
    while batch.len() < options.max_messages {
        let next = if options.linger.is_zero() {
            match futures::FutureExt::now_or_never(messages.next()) {
                Some(next) => next,
                None => break,
            }
        } else {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        };
        match next {
            Some(Ok(msg)) => batch.push(msg),
            // An error or the end of the pull surfaces again on the next `next()`.
            _ => break,
        }
    }
    batch
}

/// Sleeps with exponential backoff; true when shutdown came first.
async fn sleep_or_shutdown(shutdown: &CancellationToken, backoff: &mut Duration) -> bool {
    let stopped = tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(*backoff) => false,
    };
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    stopped
}
