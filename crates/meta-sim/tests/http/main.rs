//! The simulator against real local HTTP servers: one binary, a module per feature.

// `allow-unwrap-in-tests` only covers #[test] fns; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod demo;
mod graph;
mod graph_app;
mod graph_inbox;
mod graph_send;
mod helpers;
mod retry;
mod sender;
mod verify;
