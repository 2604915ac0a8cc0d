//! Deleting a disconnected channel's data from the streams webhook-ingest owns.
//!
//! token-vault announces a disconnect with a `ChannelEvent` in state DISCONNECTED on
//! `<p>.channel.disconnected`. The durable consumer [`CONSUMER_NAME`] takes each one and deletes,
//! by sequence, every message that concerns the channel's account (its kind and account id: Page
//! id, Instagram account id or WhatsApp phone_number_id) and was received up to the moment the
//! disconnect was announced (the ChannelEvent's store time):
//!
//! * raw deliveries in INGEST (`<p>.ingest.raw.<channel>`) holding at least one item of that
//!   account, found by splitting the stored body with [`scifer_meta::split_delivery`] exactly as
//!   the splitter does. A delivery that also holds other accounts' items is deleted as well: its
//!   other items were split into META events long ago, and the privacy promise wins over being
//!   able to replay them from the ingest log;
//! * MetaEvents in META (`<p>.meta.<channel>.*`) of that kind and account;
//! * unhandled items (`<p>.meta.unhandled`) naming that account under the channel's object.
//!
//! Quarantined bodies (`<p>.ingest.quarantine`) are left alone: they are not JSON objects, so no
//! account can be read from them. WhatsApp items that name only the WABA (template or account
//! updates) are the business account's, not the number's, and stay too.
//!
//! The cutoff makes a purge safe to run again at any time: a redelivered ChannelEvent, or a new
//! consumer replaying the CHANNELS stream from its start, never touches what a later reconnect of
//! the same account brought in. Deliveries still in flight when the vault unsubscribed, stored
//! after the announcement, are not purged here; they age out with the streams' retention (and
//! inbox does not attach them to the disconnected channel).
//!
//! Each stream is read with an ephemeral pull consumer filtered to the channel's subjects, a
//! bounded number of bytes at a time, up to the end of the stream as it was when the scan began;
//! matches are deleted as the scan goes. The ChannelEvent is acknowledged only once every scan is
//! done (with progress acknowledgements meanwhile), so a crash half way repeats the purge.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, SystemTime},
};

use futures::{StreamExt, TryStreamExt};
use prost::Message as _;
use prost_types::Timestamp;
use scifer_events::{
    Bus, Delivered, Outcome, StreamKind,
    async_nats::jetstream::{
        self, AckKind,
        consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
        stream::{RawMessageErrorKind, Stream},
    },
};
use scifer_meta::webhook::{OBJECT_INSTAGRAM, OBJECT_PAGE, OBJECT_WHATSAPP};
use scifer_plumbing::CancellationToken;
use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState, MetaEvent, UnhandledMetaItem};

use crate::{
    error::BusError,
    replay::unix_nanos,
    splitter::{received_at, stored_at},
};

/// Durable name of the consumer of channel events on the CHANNELS stream.
pub const CONSUMER_NAME: &str = "ingest-channels";
/// How long a purge may go without a progress acknowledgement before the ChannelEvent is handed
/// out again; progress is acknowledged every third of it.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// How long a failed purge waits before the ChannelEvent is handed out again.
const RETRY_DELAY: Duration = Duration::from_secs(5);
/// Messages per pull while scanning (the byte budget usually binds first for raw deliveries).
const SCAN_BATCH: usize = 256;
/// How long a scan waits for the next message before it concludes the rest was removed meanwhile.
const SCAN_IDLE: Duration = Duration::from_secs(5);
/// Acknowledge (ack-all) the scan consumer every this many messages, far below its ack limit.
const SCAN_ACK_EVERY: u64 = 128;
/// Deletions in flight at once, and how many are collected before they are sent.
const DELETE_CONCURRENCY: usize = 32;
const DELETE_CHUNK: usize = 256;

/// One disconnected account and when the disconnect was announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub kind: ChannelKind,
    pub account_id: String,
    /// Unix nanoseconds: messages received at or before it are the disconnected channel's.
    pub cutoff: i128,
}

/// What a purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Raw deliveries deleted from INGEST.
    pub deliveries: u64,
    /// MetaEvents deleted from META.
    pub events: u64,
    /// Unhandled items deleted from META.
    pub unhandled: u64,
}

/// Cutoff by account id, for one channel kind.
type Accounts = HashMap<String, i128>;

#[derive(Clone)]
pub struct Purger {
    js: jetstream::Context,
    bus: Bus,
    /// Bytes per pull while scanning: at least the largest message the server accepts, or a pull
    /// could never deliver it.
    scan_bytes: usize,
    /// Shutdown: a purge in progress stops, and its ChannelEvent is redelivered later.
    stop: CancellationToken,
}

impl Purger {
    /// `max_message_bytes` is the server's `max_payload`.
    pub fn new(js: jetstream::Context, bus: Bus, max_message_bytes: usize, stop: CancellationToken) -> Self {
        Self {
            js,
            bus,
            scan_bytes: max_message_bytes.saturating_mul(2).max(1024 * 1024),
            stop,
        }
    }

    /// The consumer handler: one [`Outcome`] per ChannelEvent, in order. Disconnects are purged
    /// together (one scan of each stream for the whole batch) and acknowledged only after it.
    pub async fn handle_batch(&self, batch: Vec<Delivered>) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Ack; batch.len()];
        let mut disconnects = Vec::new();
        let mut pending = Vec::new();
        for (i, msg) in batch.iter().enumerate() {
            match disconnect_of(msg) {
                Ok(Some(d)) => {
                    disconnects.push(d);
                    pending.push(i);
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::error!(subject = %msg.subject, %reason, "channel event rejected");
                    outcomes[i] = Outcome::Reject;
                }
            }
        }
        if disconnects.is_empty() {
            return outcomes;
        }
        let purge = self.purge(&disconnects);
        tokio::pin!(purge);
        let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + ACK_WAIT / 3, ACK_WAIT / 3);
        let result = loop {
            tokio::select! {
                result = &mut purge => break result,
                () = self.stop.cancelled() => break Err(BusError::Api("stopped by shutdown".into())),
                _ = progress.tick() => {
                    for &i in &pending {
                        // Best effort: at worst the event is redelivered and the purge repeated.
                        let _ = batch[i].ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        match result {
            Ok(purged) => {
                for d in &disconnects {
                    tracing::info!(kind = ?d.kind, account_id = %d.account_id, "disconnected account purged");
                }
                tracing::info!(
                    accounts = disconnects.len(),
                    deliveries = purged.deliveries,
                    events = purged.events,
                    unhandled = purged.unhandled,
                    "deleted the disconnected accounts' messages from INGEST and META"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "purging disconnected accounts failed; will be retried");
                for i in pending {
                    outcomes[i] = Outcome::Retry(RETRY_DELAY);
                }
            }
        }
        outcomes
    }

    /// Deletes what the ingest log and the META stream hold for these accounts (see the
    /// [module docs](self)). Idempotent.
    pub async fn purge(&self, disconnects: &[Disconnect]) -> Result<Purged, BusError> {
        let mut by_kind: BTreeMap<i32, (ChannelKind, Accounts)> = BTreeMap::new();
        for d in disconnects {
            let (_, accounts) = by_kind
                .entry(d.kind as i32)
                .or_insert_with(|| (d.kind, Accounts::new()));
            let cutoff = accounts.entry(d.account_id.clone()).or_insert(d.cutoff);
            *cutoff = (*cutoff).max(d.cutoff);
        }
        let mut purged = Purged::default();
        // The ingest log first: a delivery deleted before the splitter reaches it yields no events.
        let ingest = self.stream(StreamKind::Ingest).await?;
        for (kind, accounts) in by_kind.values() {
            purged.deliveries += self
                .scan(&ingest, self.bus.ingest_raw_filter(Some(*kind)), |msg| {
                    delivery_concerns(&msg.payload, unix_nanos(&received_at(msg)), accounts)
                })
                .await?;
        }
        let meta = self.stream(StreamKind::Meta).await?;
        for (kind, accounts) in by_kind.values() {
            purged.events += self
                .scan(&meta, self.bus.meta_event(*kind, "*"), |msg| {
                    event_concerns(msg, *kind, accounts)
                })
                .await?;
        }
        purged.unhandled += self
            .scan(&meta, self.bus.meta_unhandled(), |msg| {
                unhandled_concerns(msg, &by_kind)
            })
            .await?;
        Ok(purged)
    }

    async fn stream(&self, kind: StreamKind) -> Result<Stream, BusError> {
        self.js
            .get_stream(self.bus.stream_name(kind))
            .await
            .map_err(|e| BusError::Api(e.to_string()))
    }

    /// Reads every message on `filter` up to the end of the stream as it is now, deleting those
    /// `concerns` picks; returns how many were deleted.
    async fn scan<F>(&self, stream: &Stream, filter: String, concerns: F) -> Result<u64, BusError>
    where
        F: FnMut(&Delivered) -> bool,
    {
        let config = pull::Config {
            filter_subject: filter,
            deliver_policy: DeliverPolicy::All,
            // Pull consumers need acks on 2.9 servers; ack-all lets one ack cover a stretch.
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(300),
            // Ephemeral: the server removes it if the purge dies half way.
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        };
        let consumer: PullConsumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::Api(e.to_string()))?;
        let name = consumer.cached_info().name.clone();
        let result = self.scan_with(stream, &consumer, concerns).await;
        if let Err(e) = stream.delete_consumer(&name).await {
            tracing::debug!(error = %e, "purge scan consumer not deleted; it expires on its own");
        }
        result
    }

    async fn scan_with<F>(
        &self,
        stream: &Stream,
        consumer: &PullConsumer,
        mut concerns: F,
    ) -> Result<u64, BusError>
    where
        F: FnMut(&Delivered) -> bool,
    {
        let api = |e: &dyn std::fmt::Display| BusError::Api(e.to_string());
        // The end of the stream when the scan began: what arrives later is not looked at.
        let mut remaining = consumer.cached_info().num_pending;
        if remaining == 0 {
            return Ok(0);
        }
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(SCAN_BATCH)
            .max_bytes_per_batch(self.scan_bytes)
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| api(&e))?;
        let mut doomed = Vec::new();
        let mut deleted = 0;
        let mut unacked = 0;
        while remaining > 0 {
            let msg = match tokio::time::timeout(SCAN_IDLE, messages.next()).await {
                Ok(Some(msg)) => msg.map_err(|e| api(&e))?,
                // Messages counted at the start were removed meanwhile (retention, another purge).
                Ok(None) | Err(_) => break,
            };
            remaining -= 1;
            let info = msg.info().map_err(|e| api(&e))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if concerns(&msg) {
                doomed.push(sequence);
                if doomed.len() >= DELETE_CHUNK {
                    deleted += delete_all(stream, std::mem::take(&mut doomed)).await?;
                }
            }
            unacked += 1;
            if unacked >= SCAN_ACK_EVERY || remaining == 0 || pending == 0 {
                msg.ack().await.map_err(|e| api(&e))?;
                unacked = 0;
            }
            if pending == 0 {
                break;
            }
        }
        deleted += delete_all(stream, doomed).await?;
        Ok(deleted)
    }
}

/// Deletes messages by sequence, a few at a time; one already gone counts as done, not deleted.
async fn delete_all(stream: &Stream, sequences: Vec<u64>) -> Result<u64, BusError> {
    futures::stream::iter(sequences)
        .map(|sequence| delete_one(stream, sequence))
        .buffer_unordered(DELETE_CONCURRENCY)
        .try_fold(0, |n, deleted| async move { Ok(n + u64::from(deleted)) })
        .await
}

async fn delete_one(stream: &Stream, sequence: u64) -> Result<bool, BusError> {
    match stream.delete_message(sequence).await {
        Ok(_) => Ok(true),
        // Another purge (or the stream's retention) may have removed it first.
        Err(e) => match stream.get_raw_message(sequence).await {
            Err(gone) if matches!(gone.kind(), RawMessageErrorKind::NoMessageFound) => Ok(false),
            _ => Err(BusError::Api(format!("deleting message {sequence}: {e}"))),
        },
    }
}

/// The disconnect a channel event announces; `None` for every other state.
fn disconnect_of(msg: &Delivered) -> Result<Option<Disconnect>, String> {
    let event = scifer_events::decode::<ChannelEvent>(msg).map_err(|e| format!("undecodable: {e}"))?;
    if event.state != ChannelState::Disconnected as i32 {
        return Ok(None);
    }
    let kind = match ChannelKind::try_from(event.kind) {
        Ok(kind @ (ChannelKind::Messenger | ChannelKind::Instagram | ChannelKind::Whatsapp)) => kind,
        Ok(ChannelKind::Unspecified) | Err(_) => {
            return Err(format!("channel {} has no channel kind", event.channel_id));
        }
    };
    if event.account_id.is_empty() {
        return Err(format!("channel {} has no account id", event.channel_id));
    }
    // When the bus stored the announcement; the vault's own time if that is unknown.
    let announced = stored_at(msg)
        .or(event.at)
        .unwrap_or_else(|| Timestamp::from(SystemTime::now()));
    Ok(Some(Disconnect {
        kind,
        account_id: event.account_id,
        cutoff: unix_nanos(&announced),
    }))
}

fn received_before_cutoff(accounts: &Accounts, account_id: &str, received: i128) -> bool {
    accounts.get(account_id).is_some_and(|cutoff| received <= *cutoff)
}

/// Whether a raw delivery received at `received` holds any item of these accounts.
fn delivery_concerns(body: &[u8], received: i128, accounts: &Accounts) -> bool {
    // The split needs no real id or time to name the accounts.
    match scifer_meta::split_delivery(body, "", Timestamp::default()) {
        Ok(split) => split
            .events
            .iter()
            .map(|e| e.account_id.as_str())
            .chain(split.unhandled.iter().map(|u| u.account_id.as_str()))
            .any(|account| received_before_cutoff(accounts, account, received)),
        // Not a JSON object: nothing in it can be attributed (the hot path never stores one here).
        Err(_) => false,
    }
}

/// The delivery's receipt time an event carries, else when the bus stored it.
fn event_received(received_at: Option<&Timestamp>, msg: &Delivered) -> i128 {
    received_at
        .copied()
        .or_else(|| stored_at(msg))
        .map_or(i128::MAX, |t| unix_nanos(&t))
}

fn event_concerns(msg: &Delivered, kind: ChannelKind, accounts: &Accounts) -> bool {
    match MetaEvent::decode(msg.payload.as_ref()) {
        Ok(event) => {
            event.channel_kind == kind as i32
                && received_before_cutoff(
                    accounts,
                    &event.account_id,
                    event_received(event.received_at.as_ref(), msg),
                )
        }
        Err(e) => {
            tracing::warn!(subject = %msg.subject, error = %e, "undecodable META event left in place");
            false
        }
    }
}

fn unhandled_concerns(msg: &Delivered, by_kind: &BTreeMap<i32, (ChannelKind, Accounts)>) -> bool {
    let item = match UnhandledMetaItem::decode(msg.payload.as_ref()) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(subject = %msg.subject, error = %e, "undecodable unhandled item left in place");
            return false;
        }
    };
    let kind = match item.object.as_str() {
        OBJECT_PAGE => ChannelKind::Messenger,
        OBJECT_INSTAGRAM => ChannelKind::Instagram,
        OBJECT_WHATSAPP => ChannelKind::Whatsapp,
        _ => return false,
    };
    by_kind.get(&(kind as i32)).is_some_and(|(_, accounts)| {
        received_before_cutoff(
            accounts,
            &item.account_id,
            event_received(item.received_at.as_ref(), msg),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(ids: &[&str]) -> Accounts {
        ids.iter().map(|id| ((*id).to_string(), 100)).collect()
    }

    #[test]
    fn a_delivery_concerns_every_account_it_names() {
        let two_pages = br#"{"object":"page","entry":[
            {"id":"111","time":1,"messaging":[{"sender":{"id":"P1"},"recipient":{"id":"111"},"timestamp":1,"message":{"mid":"m_1","text":"a"}}]},
            {"id":"222","time":1,"messaging":[{"sender":{"id":"P2"},"recipient":{"id":"222"},"timestamp":1,"message":{"mid":"m_2","text":"b"}}]}]}"#;
        assert!(delivery_concerns(two_pages, 50, &accounts(&["111"])));
        assert!(delivery_concerns(two_pages, 50, &accounts(&["222"])));
        assert!(!delivery_concerns(two_pages, 50, &accounts(&["333"])));
        // Received after the disconnect was announced: not the disconnected channel's.
        assert!(!delivery_concerns(two_pages, 101, &accounts(&["111"])));
    }

    #[test]
    fn a_whatsapp_delivery_concerns_its_phone_number_not_its_waba() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1555","phone_number_id":"PN1"},"messages":[{"from":"1555000","id":"wamid.X","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        assert!(delivery_concerns(body, 0, &accounts(&["PN1"])));
        assert!(!delivery_concerns(body, 0, &accounts(&["WABA1"])));
        // An unknown item of the number is its data too.
        let unhandled = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"PN1"},"errors":[{"code":131000,"title":"x"}]}}]}]}"#;
        assert!(delivery_concerns(unhandled, 0, &accounts(&["PN1"])));
    }

    #[test]
    fn a_body_that_is_not_an_object_concerns_nobody() {
        assert!(!delivery_concerns(b"[1,2]", 0, &accounts(&["111"])));
    }
}
