//! The inbox API: events in on the bus, conversations out over gRPC and as InboxEvents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod assignment;
// Automation and handoff (issue 5).
mod automation;
mod canned;
mod contacts;
mod conversations;
mod delivery;
mod disconnect;
mod idempotency;
mod inbox_events;
mod labels_notes;
mod pending;
mod send;
mod suggest;
mod unread_search;
mod workspaces;
// History, gaps and media.
mod history;
mod media;
// Issue 5: WhatsApp template sync, inbox analytics.
mod analytics;
mod templates;
