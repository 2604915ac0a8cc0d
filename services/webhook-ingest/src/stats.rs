//! Operational counters, kept in the process (they restart at zero with it): they describe this
//! process's traffic for `Stats` and dashboards, while the data itself lives in the streams.

use std::sync::atomic::{AtomicU64, Ordering};

use scifer_proto::ingest::v1::StatsResponse;

use crate::error::Error;

#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    quarantined: AtomicU64,
    missing_signature: AtomicU64,
    bad_signature: AtomicU64,
    too_large: AtomicU64,
    unavailable: AtomicU64,
    events_published: AtomicU64,
    unhandled_items: AtomicU64,
}

/// What the hot path did with a delivery it answered 200 for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// In the ingest log under `ingest.raw.<channel>`.
    Accepted,
    /// Signed but not a JSON object: kept under `ingest.quarantine` for a human to look at.
    Quarantined,
}

impl Stats {
    /// Counts the outcome of one POST.
    pub fn record_delivery(&self, outcome: &Result<Stored, Error>) {
        let counter = match outcome {
            Ok(Stored::Accepted) => &self.accepted,
            Ok(Stored::Quarantined) => &self.quarantined,
            Err(Error::MissingSignature) => &self.missing_signature,
            Err(Error::InvalidSignature(_)) => &self.bad_signature,
            Err(Error::TooLarge { .. }) => &self.too_large,
            Err(Error::Unavailable(_)) => &self.unavailable,
            // Not a rejection by reason that Stats reports (unreadable bodies are client
            // disconnects, the rest cannot happen on this path).
            Err(
                Error::HandshakeRefused
                | Error::UnreadableBody(_)
                | Error::InvalidArgument(_)
                | Error::Internal(_),
            ) => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_published(&self, events: u64, unhandled: u64) {
        self.events_published.fetch_add(events, Ordering::Relaxed);
        self.unhandled_items.fetch_add(unhandled, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsResponse {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsResponse {
            deliveries_accepted: get(&self.accepted),
            deliveries_quarantined: get(&self.quarantined),
            rejected_missing_signature: get(&self.missing_signature),
            rejected_bad_signature: get(&self.bad_signature),
            rejected_too_large: get(&self.too_large),
            unavailable: get(&self.unavailable),
            events_published: get(&self.events_published),
            unhandled_items: get(&self.unhandled_items),
        }
    }
}
