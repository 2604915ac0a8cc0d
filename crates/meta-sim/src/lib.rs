//! Scifer's offline stand-in for Meta (Messenger, Instagram, WhatsApp Cloud API).
//!
//! - [`webhooks`]: payload builders in Meta's exact shapes, Meta-style serialization
//!   (ASCII-only, `\/`) and signing, and an HTTP sender with Meta's retries plus the
//!   misbehaviours tests need (bad signatures, duplicates, reordering, oversized bodies).
//! - [`demo`]: the demo world's ids and customers, and the traffic `make run` plays.
//! - [`graph`]: the Graph API surface (OAuth dialog and tokens, debug_token, Pages and
//!   Instagram accounts, subscribed_apps, WhatsApp Business Accounts, Send APIs with messaging
//!   windows, templates, Conversations API, media, thread control) over a simulated world, with
//!   error and rate-limit injection, and the webhooks that follow sends (echoes, receipts,
//!   WhatsApp statuses) delivered through [`webhooks`].
//! - [`cli`] / [`app`]: the `scifer-meta-sim` binary's parsing and commands.
//!
//! This crate deliberately does not depend on `scifer-meta` (the receiver): it serializes and
//! signs on its own so that a bug on either side shows up in tests.

pub mod app;
pub mod cli;
pub mod demo;
pub mod graph;
pub mod http_client;
pub mod ids;
pub mod secret;
pub mod webhooks;

pub use secret::AppSecret;
