//! End-to-end: Meta (the simulator) → webhook-ingest → JetStream → inbox → gateway → a gRPC-web
//! client, with the real binaries. Each test gets its own nats-server, database and workspace.

// Test helpers fail loudly: an unwrap in a harness is an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod channels;
mod helpers;
mod pipeline;
mod replies;
mod resilience;
// Issue 5: WhatsApp template sync.
mod templates;
// Issue 5: automation rules and handoff with thread control.
mod automation;
