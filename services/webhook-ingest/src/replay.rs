//! Replay: re-split raw deliveries already in the ingest log, e.g. after a splitter bug was fixed or
//! a downstream stream lost data. Events keep their ids, so consumers that have them change nothing.

use std::time::Duration;

use futures::StreamExt;
use prost_types::Timestamp;
use scifer_events::{
    StreamKind,
    async_nats::jetstream::{
        self,
        consumer::{AckPolicy, DeliverPolicy, pull},
    },
};
use scifer_proto::events::v1::ChannelKind;

use crate::{
    error::{BusError, Error},
    splitter::{Splitter, received_at, stored_at},
};

const FETCH_BATCH: usize = 256;
/// How far past `to` the scan goes in store time: a delivery received just before `to` is stored a
/// moment later (at most about the publish timeout, or Meta got a 503 and its retry collapsed
/// into the stored copy).
const STORE_LAG: Duration = Duration::from_secs(1);

/// Which deliveries to replay: received in `[from, to)` (open ends when absent), of one channel
/// kind or of all.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub channel: Option<ChannelKind>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    pub deliveries: u64,
    /// MetaEvents plus unhandled items republished.
    pub events: u64,
}

pub struct Replayer {
    pub js: jetstream::Context,
    pub splitter: Splitter,
    pub bus: scifer_events::Bus,
    pub publish_timeout: Duration,
}

impl Replayer {
    pub async fn replay(&self, range: ReplayRange) -> Result<ReplayCounts, Error> {
        let from = range.from.as_ref().map(unix_nanos);
        let to = range.to.as_ref().map(unix_nanos);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(Error::InvalidArgument("`from` must be before `to`".into()));
        }
        let stop_after = to.map(|to| to + (self.publish_timeout + STORE_LAG).as_nanos() as i128);

        let stream = self
            .js
            .get_stream(self.bus.stream_name(StreamKind::Ingest))
            .await
            .map_err(|e| Error::Unavailable(BusError::Api(e.to_string())))?;
        let config = pull::Config {
            // Store time is never earlier than receipt time, so starting at `from` in store time
            // misses no delivery received at or after `from`.
            deliver_policy: match &range.from {
                Some(from) => deliver_by_start_time(from)?,
                None => DeliverPolicy::All,
            },
            filter_subject: self.bus.ingest_raw_filter(range.channel),
            // Explicit acks (2.9 servers refuse pull consumers without them), acked as we go.
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(300),
            // Ephemeral: the server removes it if this call dies half way.
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        };
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| Error::Unavailable(BusError::Api(e.to_string())))?;
        let name = consumer.cached_info().name.clone();
        // The end of the log when the call started: deliveries arriving meanwhile are not replayed.
        let mut remaining = consumer.cached_info().num_pending;
        let result = self
            .scan(&mut consumer, &mut remaining, from, to, stop_after)
            .await;
        if let Err(e) = stream.delete_consumer(&name).await {
            tracing::debug!(error = %e, "replay consumer not deleted; it expires on its own");
        }
        result
    }

    async fn scan(
        &self,
        consumer: &mut jetstream::consumer::PullConsumer,
        remaining: &mut u64,
        from: Option<i128>,
        to: Option<i128>,
        stop_after: Option<i128>,
    ) -> Result<ReplayCounts, Error> {
        let mut counts = ReplayCounts::default();
        while *remaining > 0 {
            let want = usize::try_from(*remaining)
                .unwrap_or(FETCH_BATCH)
                .min(FETCH_BATCH);
            let mut fetched = consumer
                .fetch()
                .max_messages(want)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .map_err(|e| Error::Unavailable(BusError::Api(e.to_string())))?;
            let mut batch = Vec::with_capacity(want);
            while let Some(msg) = fetched.next().await {
                batch.push(msg.map_err(|e| Error::Unavailable(BusError::Api(e.to_string())))?);
            }
            if batch.is_empty() {
                // Messages aged out or were purged since the count was taken.
                break;
            }
            *remaining = remaining.saturating_sub(batch.len() as u64);
            let mut past_end = false;
            let mut selected = Vec::with_capacity(batch.len());
            for msg in &batch {
                let stored = stored_at(msg).as_ref().map(unix_nanos);
                if let (Some(stored), Some(stop)) = (stored, stop_after)
                    && stored >= stop
                {
                    past_end = true;
                    break;
                }
                let received = unix_nanos(&received_at(msg));
                if from.is_none_or(|f| received >= f) && to.is_none_or(|t| received < t) {
                    selected.push(msg.clone());
                }
            }
            for result in self.splitter.split_batch(&selected).await {
                let published = result.map_err(Error::Unavailable)?;
                counts.deliveries += 1;
                counts.events += published.events + published.unhandled;
            }
            for msg in &batch {
                // Best effort: the consumer is deleted at the end anyway.
                let _ = msg.ack().await;
            }
            if past_end {
                break;
            }
        }
        Ok(counts)
    }
}

/// Unix nanoseconds of a protobuf timestamp.
pub(crate) fn unix_nanos(ts: &Timestamp) -> i128 {
    i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos)
}

/// async-nats takes the start time as a `time::OffsetDateTime` and does not re-export the `time`
/// crate; its serde form (RFC 3339) builds the same policy without adding that dependency.
fn deliver_by_start_time(from: &Timestamp) -> Result<DeliverPolicy, Error> {
    serde_json::from_value(serde_json::json!({
        "deliver_policy": "by_start_time",
        "opt_start_time": from.to_string(),
    }))
    .map_err(|e| Error::InvalidArgument(format!("unusable `from` time: {e}")))
}
