//! webhook-ingest against a real nats-server per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod disconnect;
mod handshake;
mod helpers;
mod ingest;
mod replay;
mod splitter;
mod startup;
