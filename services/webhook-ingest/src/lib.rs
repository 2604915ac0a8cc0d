//! webhook-ingest: Meta's webhook callback. Each signed delivery is appended raw to the INGEST
//! stream (the ingest log) before Meta gets its 200; a splitter consumes the log and publishes one
//! event per item to the META stream. When token-vault announces that a channel was disconnected,
//! the [`purge`] consumer deletes that account's deliveries and events from both streams. See
//! README.md for the design and its numbers.

pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod purge;
pub mod replay;
pub mod splitter;
pub mod startup;
pub mod stats;

pub use startup::{Application, Config, HEADER_HEADROOM, StartupError};
