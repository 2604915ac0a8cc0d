//! inbox: contacts, conversations and messages of each workspace, built from the Meta events on the
//! bus and served to the gateway over gRPC. Disconnecting a channel deletes all of its data (see
//! [`apply`]). Replies go out through the send gate and token-vault ([`send`]).
//!
//! The team works the inbox through the same API: status, assignment and auto-assignment
//! ([`workflow`], with the round robin in [`apply`] where conversations are created, and snoozes
//! woken by [`consumer::Engine::wake_snoozed`]), labels and internal notes ([`workflow`]), canned
//! responses ([`canned`]), read markers and unread counts ([`unread`]), search ([`search`]),
//! contact profiles ([`contacts`]) and AI-suggested replies ([`suggest`]). Writes to rows the
//! consumers also write go through the consumers' write lock (see [`consumer::Engine`]); every
//! change is announced as an `InboxEvent` after its commit.
//!
//! History, gaps and media: a backfill after a channel connects and a periodic reconciliation
//! with Meta's Conversations API ([`history`], published to the consumer as MetaEvents), and
//! inbox's own copy of every inbound attachment ([`media`]).

pub mod apply;
// Automation and handoff (issue 5).
pub mod automation;
pub mod canned;
pub mod config;
pub mod consumer;
pub mod contacts;
pub mod convert;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod search;
pub mod send;
mod startup;
pub mod store;
pub mod suggest;
pub mod unread;
pub mod views;
pub mod workflow;
// History, gaps and media.
pub mod history;
pub mod media;
pub mod vault;
// Issue 5: WhatsApp template sync, inbox analytics.
pub mod analytics;
pub mod clock;
pub mod templates;

pub use config::Config;
pub use startup::{Application, CHANNEL_CONSUMER, META_CONSUMER, StartupError};
