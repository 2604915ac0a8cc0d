//! The gateway's API tests: one binary, a fresh gateway, nats-server and inbox double per test.

// Helpers outside #[test] functions may fail loudly too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod account_settings;
mod audit;
mod channels;
mod health;
mod http;
// Automation and handoff (issue 5).
mod inbox_automation;
mod inbox_history;
mod inbox_reads;
mod inbox_sends;
mod inbox_suggest;
mod inbox_tools;
mod inbox_workflow;
// Issue 5: WhatsApp template sync, inbox analytics.
mod inbox_templates_analytics;
mod invitations;
mod members;
mod permission_matrix;
mod sessions;
mod shutdown;
mod watch;
